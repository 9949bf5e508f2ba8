//! Whether the policies in force are kept current: [`PolicyHealth`], which `/readyz` and
//! `/healthz` read, and [`supervise`], which restarts the policy watcher when it ends or panics.

use std::sync::Arc;
use std::time::Duration;

/// How long watching may fail (the API server restarting, a network blip) before the replica
/// reports not ready.
pub const READY_GRACE: Duration = Duration::from_secs(10);

/// How long the policy source may stay unhealthy before the replica reports not live.
pub const LIVE_GRACE: Duration = Duration::from_secs(120);

/// Whether the policies in force are being kept current, for `/readyz`, `/healthz` and the logs.
#[derive(Debug, Clone, Default)]
pub struct PolicyHealth(Arc<std::sync::Mutex<Option<Problem>>>);

#[derive(Debug, Clone)]
struct Problem {
    since: std::time::Instant,
    why: String,
    /// The watcher itself stopped: nothing keeps the policies current until it is restarted.
    stopped: bool,
}

impl PolicyHealth {
    fn set(&self, f: impl FnOnce(&mut Option<Problem>)) {
        let mut state = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state);
    }

    /// Policies were listed and put in force.
    pub fn synced(&self) {
        self.set(|p| *p = None);
    }

    /// An event arrived: watching works again (a stopped watcher stays stopped until it syncs).
    pub(crate) fn watching(&self) {
        self.set(|p| {
            if p.as_ref().is_some_and(|p| !p.stopped) {
                *p = None;
            }
        });
    }

    /// Watching failed; the first failure's time is kept.
    pub fn watch_failed(&self, why: String) {
        self.set(|p| match p {
            Some(problem) => problem.why = why,
            None => *p = Some(Problem { since: std::time::Instant::now(), why, stopped: false }),
        });
    }

    /// The watcher stopped (ended, or panicked).
    pub fn stopped(&self, why: String) {
        self.set(|p| {
            let since = p.as_ref().map_or_else(std::time::Instant::now, |p| p.since);
            *p = Some(Problem { since, why, stopped: true });
        });
    }

    /// `Err(why)` when the policies in force may be stale: the watcher stopped, or watching has
    /// failed for longer than [`READY_GRACE`].
    pub fn ready(&self) -> Result<(), String> {
        self.check(READY_GRACE, true)
    }

    /// `Err(why)` when the policy source has been unhealthy for longer than [`LIVE_GRACE`].
    pub fn live(&self) -> Result<(), String> {
        self.check(LIVE_GRACE, false)
    }

    fn check(&self, grace: Duration, stopped_at_once: bool) -> Result<(), String> {
        let state = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*state {
            Some(p) if (p.stopped && stopped_at_once) || p.since.elapsed() > grace => Err(format!(
                "{} for {}s: {}",
                if p.stopped {
                    "the ClusterImagePolicy watcher is restarting"
                } else {
                    "watching ClusterImagePolicies fails"
                },
                p.since.elapsed().as_secs(),
                p.why
            )),
            _ => Ok(()),
        }
    }
}

/// Runs the watcher `run` makes, and whenever it ends or panics, says so and runs a new one,
/// after a delay that doubles from 1 s to 30 s (back to 1 s once one has run for a minute).
pub async fn supervise<F, Fut>(health: PolicyHealth, mut run: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut delay = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        let why = match tokio::spawn(run()).await {
            Ok(()) => "the watch ended".to_owned(),
            Err(e) if e.is_panic() => {
                format!("it panicked ({})", crate::policy::panic_message(e.into_panic().as_ref()))
            }
            Err(e) => e.to_string(),
        };
        if started.elapsed() > Duration::from_secs(60) {
            delay = Duration::from_secs(1);
        }
        tracing::error!(error = %why, retry_in_s = delay.as_secs(), "the ClusterImagePolicy watcher stopped; not ready until it has listed the policies again");
        health.stopped(why);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Issue 9, case 3: a watcher that panics is reported (not ready at once), started again,
    /// and once the new one has listed the policies the replica is ready again.
    #[tokio::test]
    async fn a_panicking_watcher_is_restarted_and_reported_meanwhile() {
        let health = PolicyHealth::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (h, r) = (health.clone(), runs.clone());
        let supervisor = tokio::spawn(supervise(health.clone(), move || {
            let (h, r) = (h.clone(), r.clone());
            async move {
                if r.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("cannot convert float seconds to Duration");
                }
                h.synced();
                std::future::pending::<()>().await;
            }
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let why = health.ready().unwrap_err();
        assert!(why.contains("the ClusterImagePolicy watcher is restarting"), "{why}");
        assert!(why.contains("it panicked (cannot convert float seconds to Duration)"), "{why}");
        assert!(health.live().is_ok(), "live until it has failed for {LIVE_GRACE:?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "started again");
        assert_eq!(health.ready(), Ok(()));
        supervisor.abort();
    }

    #[test]
    fn watch_errors_make_the_replica_unready_after_a_grace_and_unlive_after_longer() {
        let health = PolicyHealth::default();
        let age = |by: Duration| {
            health.set(|p| {
                if let Some(p) = p {
                    p.since = p.since.checked_sub(by).unwrap_or(p.since);
                }
            })
        };
        health.watch_failed("connection refused".into());
        assert_eq!(health.ready(), Ok(()), "a blip is tolerated");
        age(READY_GRACE + Duration::from_secs(1));
        let why = health.ready().unwrap_err();
        assert!(why.contains("watching ClusterImagePolicies fails") && why.contains("connection refused"), "{why}");
        assert!(health.live().is_ok());
        age(LIVE_GRACE);
        assert!(health.live().is_err());
        health.watching();
        assert_eq!(health.ready(), Ok(()), "an event clears a watch failure");
        health.stopped("the watch ended".into());
        health.watching();
        assert!(health.ready().is_err(), "a stopped watcher stays unready until it has synced");
        health.synced();
        assert_eq!(health.ready(), Ok(()));
    }
}
