//! The decision cache: verified outcomes keyed by repository, image digest and policy content
//! hash, so a changed policy never reuses an old answer.
//!
//! Only outcomes of completed verification are cached: a pass for the positive TTL, a failure
//! for the (short) negative TTL so a freshly signed image is admitted soon. Errors are never
//! cached. Concurrent misses for one key share one verification (`moka`'s
//! `or_try_insert_with`). Tag → digest answers have their own short TTL, which bounds how long
//! a moved tag goes unseen.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;

use crate::decision::{EvalError, Judgement, Outcome};
use crate::images::Digest;

/// Sizes and lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    pub positive_ttl: Duration,
    pub negative_ttl: Duration,
    pub tag_ttl: Duration,
    /// Most cached decisions.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            positive_ttl: Duration::from_secs(600),
            negative_ttl: Duration::from_secs(30),
            tag_ttl: Duration::from_secs(15),
            max_entries: 20_000,
        }
    }
}

/// What a decision is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DecisionKey {
    /// Normalised repository (`registry.acme.io/api`): signatures live beside the image.
    pub repository: String,
    pub digest: Digest,
    /// The policy's content hash.
    pub policy: [u8; 32],
}

struct OutcomeExpiry {
    positive: Duration,
    negative: Duration,
}

impl Expiry<DecisionKey, Arc<Judgement>> for OutcomeExpiry {
    fn expire_after_create(&self, _: &DecisionKey, value: &Arc<Judgement>, _: Instant) -> Option<Duration> {
        Some(match value.outcome {
            Outcome::Passed { .. } => self.positive,
            _ => self.negative,
        })
    }
}

/// Both caches.
#[derive(Clone)]
pub struct Caches {
    decisions: Cache<DecisionKey, Arc<Judgement>>,
    tags: Cache<String, Digest>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("decisions", &self.decisions.entry_count())
            .field("tags", &self.tags.entry_count())
            .finish()
    }
}

impl Caches {
    pub fn new(config: CacheConfig) -> Self {
        let decisions = Cache::builder()
            .max_capacity(config.max_entries)
            .expire_after(OutcomeExpiry { positive: config.positive_ttl, negative: config.negative_ttl })
            .build();
        let tags = Cache::builder().max_capacity(config.max_entries).time_to_live(config.tag_ttl).build();
        Caches { decisions, tags }
    }

    /// The cached outcome for `key`, or `verify`'s, which is cached unless it is an error.
    /// Returns whether it was a hit.
    pub async fn decision<F>(&self, key: DecisionKey, verify: F) -> (Result<Arc<Judgement>, EvalError>, bool)
    where
        F: std::future::Future<Output = Result<Judgement, EvalError>>,
    {
        let entry = self.decisions.entry(key).or_try_insert_with(async { verify.await.map(Arc::new) }).await;
        match entry {
            Ok(e) => {
                let hit = !e.is_fresh();
                (Ok(e.into_value()), hit)
            }
            Err(e) => (Err((*e).clone()), false),
        }
    }

    /// The cached outcome for `key`, if there is one; never verifies.
    pub async fn cached_decision(&self, key: &DecisionKey) -> Option<Arc<Judgement>> {
        self.decisions.get(key).await
    }

    /// The cached digest of a tag reference, if there is one; never resolves.
    pub async fn cached_tag(&self, reference: &str) -> Option<Digest> {
        self.tags.get(reference).await
    }

    /// The cached digest of a tag reference, or `resolve`'s.
    pub async fn tag<F, E>(&self, reference: String, resolve: F) -> Result<Digest, E>
    where
        F: std::future::Future<Output = Result<Digest, E>>,
        E: Clone + Send + Sync + 'static,
    {
        self.tags.try_get_with(reference, resolve).await.map_err(|e| (*e).clone())
    }

    /// How many decisions are cached (approximate; for benchmarks and metrics).
    pub fn decision_count(&self) -> u64 {
        self.decisions.entry_count()
    }

    /// Drops everything (a policy reload makes old keys unreachable anyway; this frees memory).
    pub fn clear(&self) {
        self.decisions.invalidate_all();
        self.tags.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Finding;
    use crate::evidence::RegistryError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(policy: u8) -> DecisionKey {
        DecisionKey { repository: "r.io/a".into(), digest: Digest::of(b"x"), policy: [policy; 32] }
    }

    fn pass() -> Judgement {
        Outcome::Passed { verified_by: vec!["k".into()] }.into()
    }

    #[tokio::test]
    async fn keys_differ_by_policy_hash_and_digest() {
        let c = Caches::new(CacheConfig::default());
        let (_, hit) = c.decision(key(1), async { Ok(pass()) }).await;
        assert!(!hit);
        let (_, hit) = c.decision(key(1), async { Ok(pass()) }).await;
        assert!(hit);
        let (_, hit) = c.decision(key(2), async { Ok(pass()) }).await;
        assert!(!hit, "another policy hash must not reuse the decision");
        let mut other = key(1);
        other.digest = Digest::of(b"y");
        let (_, hit) = c.decision(other, async { Ok(pass()) }).await;
        assert!(!hit, "another digest must not reuse the decision");
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let c = Caches::new(CacheConfig::default());
        let err = EvalError::Registry(RegistryError::Timeout { host: "r.io".into(), timeout: Duration::from_secs(1) });
        let (r, _) = c.decision(key(1), async { Err(err.clone()) }).await;
        assert_eq!(r.unwrap_err(), err);
        let (r, hit) = c.decision(key(1), async { Ok(pass()) }).await;
        assert!(!hit);
        assert_eq!(*r.unwrap(), pass());
    }

    #[tokio::test]
    async fn failures_expire_after_the_negative_ttl() {
        let c = Caches::new(CacheConfig { negative_ttl: Duration::from_millis(50), ..Default::default() });
        let fail: Judgement = Outcome::Failed(vec![Finding::DigestRequired]).into();
        c.decision(key(1), async { Ok(fail.clone()) }).await.0.unwrap();
        assert!(c.decision(key(1), async { Ok(pass()) }).await.1);
        tokio::time::sleep(Duration::from_millis(120)).await;
        let (r, hit) = c.decision(key(1), async { Ok(pass()) }).await;
        assert!(!hit);
        assert_eq!(*r.unwrap(), pass());
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_verification() {
        let c = Caches::new(CacheConfig::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (c, calls) = (c.clone(), calls.clone());
                tokio::spawn(async move {
                    c.decision(key(1), async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(pass())
                    })
                    .await
                    .0
                    .unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
