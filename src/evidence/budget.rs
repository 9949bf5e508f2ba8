//! Memory budgets for what registries send.
//!
//! A registry chooses what trustgate reads, and anyone who can push to a governed repository
//! chooses what the registry holds. So every body read from a registry is charged, before it
//! is buffered, against three budgets ([`MemoryLimits`]):
//!
//! - the **image**'s: all evidence of one image together (an image's bytes that do not fit are
//!   reported unread, naming the budget);
//! - the **review**'s: all images of one AdmissionReview (or one CLI run) at once;
//! - the **process**'s: every review in flight, background verifications included.
//!
//! A charge that does not fit the review's or the process's budget *now* waits for bytes to be
//! returned, then fails with [`RegistryError::Busy`]: an overload of trustgate's own, never
//! mistaken for "not signed", never cached. A single read larger than a budget fails at once
//! with [`RegistryError::TooLarge`]. Waiting cannot deadlock for long: an image that holds
//! nothing waits up to [`MemoryLimits::wait`], but one that already holds budget waits at most
//! [`MemoryLimits::wait_holding`] (two images each holding half and waiting for the other's
//! half give up, and free it, within that); and waiters are woken whenever bytes come back
//! rather than served in order, so a small read never waits behind a large one.
//!
//! Start at [`MemoryBudget`]: the engine holds one, makes a [`ReviewBudget`] per review and a
//! [`Charge`] per image; the registry client charges reads to it and gets [`Held`] bytes back,
//! released when dropped (a manifest once parsed) or [kept](Charge::keep) as long as the
//! image's evaluation (evidence that is verified later).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::RegistryError;

/// How much memory registry answers may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// All evidence of one image (bytes).
    pub image_bytes: usize,
    /// All evidence held at once for one review (bytes).
    pub review_bytes: usize,
    /// All evidence held at once by the process (bytes).
    pub process_bytes: usize,
    /// How long a read waits for budget held by others before it gives up.
    pub wait: Duration,
    /// How long it waits when its image already holds budget (and so may be what others wait for).
    pub wait_holding: Duration,
}

impl Default for MemoryLimits {
    /// Sized for the chart's 256 MiB memory limit: at most 96 MiB of registry answers in
    /// memory at once, which verification may briefly double.
    fn default() -> Self {
        MemoryLimits {
            image_bytes: 48 << 20,
            review_bytes: 48 << 20,
            process_bytes: 96 << 20,
            wait: Duration::from_secs(5),
            wait_holding: Duration::from_millis(250),
        }
    }
}

/// Budgets are kept in KiB so a semaphore's permit counts stay small.
const UNIT: usize = 1024;

fn units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

fn mib(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// A budget: its units, and a wake-up for whoever waits when some come back.
#[derive(Debug, Clone)]
struct Pool {
    units: Arc<Semaphore>,
    returned: Arc<Notify>,
    size: u32,
}

impl Pool {
    fn new(bytes: usize) -> Pool {
        let size = units(bytes);
        Pool { units: Arc::new(Semaphore::new(size as usize)), returned: Arc::new(Notify::new()), size }
    }

    /// `n` units, retried whenever units come back, until `deadline`. Not served in order:
    /// whoever fits when units come back goes first.
    async fn take(&self, n: u32, deadline: tokio::time::Instant) -> Option<Taken> {
        loop {
            // Registered before the attempt, so units returned in between are not missed.
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            if let Ok(permit) = self.units.clone().try_acquire_many_owned(n) {
                return Some(Taken { permit: Some(permit), returned: self.returned.clone() });
            }
            tokio::time::timeout_at(deadline, returned).await.ok()?;
        }
    }
}

/// Units taken from a pool; given back, and waiters woken, when dropped.
#[derive(Debug)]
struct Taken {
    permit: Option<OwnedSemaphorePermit>,
    returned: Arc<Notify>,
}

impl Taken {
    fn merge(&mut self, mut other: Taken) {
        match (self.permit.as_mut(), other.permit.take()) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, theirs) => self.permit = theirs,
            (Some(_), None) => {}
        }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        // The units first, then the wake-up, so a waiter that wakes finds them.
        if let Some(permit) = self.permit.take() {
            let some = permit.num_permits() > 0;
            drop(permit);
            if some {
                self.returned.notify_waiters();
            }
        }
    }
}

/// The process's budget, shared by every review.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    limits: MemoryLimits,
    process: Pool,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget::new(MemoryLimits::default())
    }
}

impl MemoryBudget {
    pub fn new(limits: MemoryLimits) -> Self {
        MemoryBudget { limits, process: Pool::new(limits.process_bytes) }
    }

    pub fn limits(&self) -> MemoryLimits {
        self.limits
    }

    /// A budget for one review.
    pub fn review(&self) -> Arc<ReviewBudget> {
        Arc::new(ReviewBudget {
            limits: self.limits,
            process: self.process.clone(),
            review: Pool::new(self.limits.review_bytes),
        })
    }

    /// Bytes charged and not yet returned, across the process (a multiple of 1 KiB).
    pub fn in_use(&self) -> usize {
        (self.process.size as usize).saturating_sub(self.process.units.available_permits()).saturating_mul(UNIT)
    }
}

/// One review's budget; its images' charges draw on it and on the process's.
#[derive(Debug)]
pub struct ReviewBudget {
    limits: MemoryLimits,
    process: Pool,
    review: Pool,
}

impl ReviewBudget {
    /// A charge for one image's evidence.
    pub fn image(self: &Arc<Self>) -> Charge {
        Charge {
            review: self.clone(),
            image_left: Arc::new(AtomicUsize::new(self.limits.image_bytes)),
            holding: Arc::new(AtomicUsize::new(0)),
            kept: Mutex::default(),
        }
    }
}

/// What one image's reads have cost; what is [kept](Charge::keep) is returned when the charge
/// is dropped.
#[derive(Debug)]
pub struct Charge {
    review: Arc<ReviewBudget>,
    image_left: Arc<AtomicUsize>,
    /// Bytes this image holds of the review's and the process's budgets right now.
    holding: Arc<AtomicUsize>,
    kept: Mutex<Vec<Held>>,
}

impl Charge {
    /// A charge with its own review and process budgets of `limits` (the CLI, tests).
    pub fn standalone(limits: MemoryLimits) -> Charge {
        MemoryBudget::new(limits).review().image()
    }

    /// Takes `bytes` from the image's, the review's and the process's budgets, waiting for
    /// bytes others hold (see the module). `what` ("a sigstore bundle") and `host` name the
    /// read in errors.
    pub async fn take(&self, bytes: usize, what: &str, host: &str) -> Result<Held, RegistryError> {
        let limits = self.review.limits;
        let too_large = |limit: String| RegistryError::TooLarge {
            host: host.to_owned(),
            what: format!("{what} of {}", mib(bytes)),
            limit,
        };
        if self.image_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(bytes)).is_err() {
            return Err(too_large(format!("{} of evidence per image", mib(limits.image_bytes))));
        }
        // From here on, dropping `held` returns what was taken.
        let mut held = Held {
            bytes,
            image_left: self.image_left.clone(),
            holding: self.holding.clone(),
            counted: false,
            review: None,
            process: None,
        };
        let n = units(bytes);
        if n > self.review.review.size {
            return Err(too_large(format!("{} of evidence per review", mib(limits.review_bytes))));
        }
        if n > self.review.process.size {
            return Err(too_large(format!("{} of evidence for all reviews", mib(limits.process_bytes))));
        }
        // An image holding budget already waits only briefly: it may be what others wait for.
        let wait = if self.holding.load(Ordering::SeqCst) > 0 { limits.wait_holding } else { limits.wait };
        let deadline = tokio::time::Instant::now() + wait;
        let busy = |budget: String| RegistryError::Busy { budget, waited: wait };
        held.review = Some(
            self.review
                .review
                .take(n, deadline)
                .await
                .ok_or_else(|| busy(format!("{} of evidence per review", mib(limits.review_bytes))))?,
        );
        held.process = Some(
            self.review
                .process
                .take(n, deadline)
                .await
                .ok_or_else(|| busy(format!("{} of evidence for all reviews", mib(limits.process_bytes))))?,
        );
        self.holding.fetch_add(bytes, Ordering::SeqCst);
        held.counted = true;
        Ok(held)
    }

    /// Keeps `held` until this charge is dropped (the bytes stay in memory until the image's
    /// evidence has been verified).
    pub fn keep(&self, held: Held) {
        match self.kept.lock() {
            Ok(mut kept) => kept.push(held),
            // A poisoned lock: returned now; the budget is only ever more generous for it.
            Err(_) => drop(held),
        }
    }
}

/// Bytes taken from the budgets; returned when dropped.
#[derive(Debug)]
pub struct Held {
    bytes: usize,
    image_left: Arc<AtomicUsize>,
    holding: Arc<AtomicUsize>,
    /// Whether `bytes` were added to `holding` (once both pools gave them).
    counted: bool,
    review: Option<Taken>,
    process: Option<Taken>,
}

impl Held {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// One guard for both (both from [`Charge::take`] of one charge).
    pub fn merge(&mut self, mut other: Held) {
        self.bytes = self.bytes.saturating_add(std::mem::take(&mut other.bytes));
        if other.counted {
            // `other`'s bytes are now counted as this guard's.
            other.counted = false;
            self.counted = true;
        }
        for (mine, theirs) in [(&mut self.review, other.review.take()), (&mut self.process, other.process.take())] {
            match (mine.as_mut(), theirs) {
                (Some(m), Some(t)) => m.merge(t),
                (None, Some(t)) => *mine = Some(t),
                (_, None) => {}
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.counted {
            self.holding.fetch_sub(self.bytes, Ordering::SeqCst);
        }
        self.image_left.fetch_add(self.bytes, Ordering::SeqCst);
        // The units go back (and waiters wake) as `review` and `process` drop.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> MemoryLimits {
        MemoryLimits {
            image_bytes: 4 << 20,
            review_bytes: 6 << 20,
            process_bytes: 8 << 20,
            wait: Duration::from_millis(50),
            wait_holding: Duration::from_millis(10),
        }
    }

    #[tokio::test]
    async fn an_image_never_takes_more_than_its_budget() {
        let budget = MemoryBudget::new(limits());
        let review = budget.review();
        let image = review.image();
        let a = image.take(3 << 20, "a sigstore bundle", "r.io").await.unwrap();
        let e = image.take(2 << 20, "a sigstore bundle", "r.io").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "registry r.io sent a sigstore bundle of 2 MiB over trustgate's cap of 4 MiB of evidence per image"
        );
        assert_eq!(budget.in_use(), 3 << 20);
        drop(a);
        assert_eq!(budget.in_use(), 0);
        image.keep(image.take(4 << 20, "an attestation", "r.io").await.unwrap());
        assert_eq!(budget.in_use(), 4 << 20);
        drop(image);
        assert_eq!(budget.in_use(), 0, "dropping the charge returns what it kept");
    }

    #[tokio::test]
    async fn a_review_waits_for_bytes_to_come_back_then_gives_up() {
        let budget = MemoryBudget::new(limits());
        let review = budget.review();
        let (one, two) = (review.image(), review.image());
        let held = one.take(4 << 20, "an attestation", "r.io").await.unwrap();
        // 4 + 4 > 6 MiB for the review: the second waits, and gets its bytes once they are back.
        let waiting = tokio::spawn(async move { two.take(4 << 20, "an attestation", "r.io").await.map(|h| h.bytes()) });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        assert_eq!(waiting.await.unwrap().unwrap(), 4 << 20);
        // Held for longer than the wait: busy, naming the budget.
        let three = review.image();
        let _held = three.take(4 << 20, "an attestation", "r.io").await.unwrap();
        let e = review.image().take(4 << 20, "an attestation", "r.io").await.unwrap_err();
        assert_eq!(e.kind(), "evidence-budget-busy");
        assert!(e.to_string().contains("6 MiB of evidence per review"), "{e}");
    }

    /// Two images each holding half of the review's budget and each wanting more: served in
    /// order, they would wait for each other until the long wait ran out. One that holds
    /// budget gives up after the short wait; and a small read never waits behind a large one.
    #[tokio::test]
    async fn holders_do_not_wait_for_each_other() {
        let budget = MemoryBudget::new(MemoryLimits { wait: Duration::from_secs(30), ..limits() });
        let review = budget.review();
        let (a, b) = (review.image(), review.image());
        let held_a = a.take(3 << 20, "an attestation", "r.io").await.unwrap();
        let held_b = b.take(3 << 20, "an attestation", "r.io").await.unwrap();
        let started = std::time::Instant::now();
        let e = a.take(1 << 20, "an attestation", "r.io").await.unwrap_err();
        assert_eq!(e.kind(), "evidence-budget-busy");
        assert!(started.elapsed() < Duration::from_secs(5), "gave up after the short wait: {:?}", started.elapsed());
        // Someone holding nothing waits for a large read; a small one that fits still goes.
        let c = review.image();
        let waiting =
            tokio::spawn(async move { c.take(4 << 20, "a sigstore bundle", "r.io").await.map(|h| h.bytes()) });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held_a);
        let small = review.image().take(1 << 20, "a manifest", "r.io").await.unwrap();
        assert_eq!(small.bytes(), 1 << 20);
        drop(small);
        drop(held_b);
        assert_eq!(waiting.await.unwrap().unwrap(), 4 << 20);
    }

    #[tokio::test]
    async fn all_reviews_share_the_process_budget() {
        let budget = MemoryBudget::new(limits());
        let (a, b) = (budget.review().image(), budget.review().image());
        let _x = a.take(4 << 20, "an attestation", "r.io").await.unwrap();
        let _y = b.take(4 << 20, "an attestation", "r.io").await.unwrap();
        let c = budget.review().image();
        let e = c.take(1 << 20, "an attestation", "r.io").await.unwrap_err();
        assert!(e.to_string().contains("8 MiB of evidence for all reviews"), "{e}");
        let e = c.take(7 << 20, "an attestation", "r.io").await.unwrap_err();
        assert_eq!(e.kind(), "registry-response-too-large", "more than a review may ever hold: {e}");
    }

    #[tokio::test]
    async fn merged_guards_return_everything() {
        let budget = MemoryBudget::new(limits());
        let image = budget.review().image();
        let mut a = image.take(1000, "a manifest", "r.io").await.unwrap();
        a.merge(image.take(3000, "a manifest", "r.io").await.unwrap());
        assert_eq!(a.bytes(), 4000);
        assert_eq!(budget.in_use(), 4 * 1024, "1 KiB and 3 KiB units");
        assert_eq!(image.holding.load(Ordering::SeqCst), 4000);
        drop(a);
        assert_eq!(budget.in_use(), 0);
        assert_eq!(image.holding.load(Ordering::SeqCst), 0);
    }
}
