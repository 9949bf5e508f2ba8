//! The pipeline for a set of images: images → policy match → evidence → decision. The webhook
//! and the CLI both call [`Engine::evaluate`], so they give the same answer.
//!
//! Each distinct image is first decided from the caches alone, without waiting on anything: a
//! cached review never queues behind registry work. Only images the caches cannot decide get
//! a task, at most [`Bounds::images_per_review`] of one review at a time and
//! [`Bounds::verifications`] in the whole process. When the admission deadline passes the
//! review is answered at once: images whose verification is running are denied as not
//! evaluated in time and finish in the background, filling the cache for the API server's
//! retry; images not started yet are never started. Nothing unfinished is ever admitted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cache::{Caches, DecisionKey};
use crate::decision::{
    decide, judge, Decision, EvalError, Evidence, Finding, ImageProblem, ImageResult, Outcome, PolicyResult, Unmatched,
};
use crate::evidence::budget::ReviewBudget;
use crate::evidence::bundle;
use crate::evidence::AttestationLayer;
use crate::evidence::{BundleLayer, Credentials, Fetch, MemoryBudget, MemoryLimits, Registry, SignatureLayer};
use crate::images::{Digest, ImageRef, WorkloadImage};
use crate::metrics::Metrics;
use crate::policy::{Labels, Policy, PolicySet, PolicyStore};

/// How much verification work the engine starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Images of one review verified at once; the rest wait their turn (and, past the
    /// deadline, are never started).
    pub images_per_review: usize,
    /// Image verifications running in the whole process, background ones included.
    pub verifications: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { images_per_review: 16, verifications: 256 }
    }
}

/// Evaluates images against the policies in force.
pub struct Engine {
    policies: PolicyStore,
    registry: Arc<dyn Registry>,
    caches: Caches,
    unmatched: Unmatched,
    metrics: Arc<Metrics>,
    bounds: Bounds,
    /// One permit per running image verification.
    verifications: Arc<Semaphore>,
    /// What registry answers may cost, per image, per review and in all.
    memory: MemoryBudget,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policies", &self.policies.current().policies().len())
            .field("unmatched", &self.unmatched)
            .field("bounds", &self.bounds)
            .finish()
    }
}

/// Whether an image may be evaluated with registry reads, or only from the caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// From the caches alone: `None` when something is not cached.
    CacheOnly,
    /// Whatever it takes.
    Registry,
}

impl Engine {
    /// An engine reading the policies `policies` holds (a [`PolicySet`] for a fixed set, or a
    /// [`PolicyStore`] a policy source publishes to).
    pub fn new(
        policies: impl Into<PolicyStore>,
        registry: Arc<dyn Registry>,
        caches: Caches,
        unmatched: Unmatched,
        metrics: Arc<Metrics>,
    ) -> Self {
        let bounds = Bounds::default();
        Engine {
            policies: policies.into(),
            registry,
            caches,
            unmatched,
            metrics,
            bounds,
            verifications: Arc::new(Semaphore::new(bounds.verifications)),
            memory: MemoryBudget::default(),
        }
    }

    /// The same engine with other [`MemoryLimits`].
    pub fn with_memory(mut self, limits: MemoryLimits) -> Self {
        self.memory = MemoryBudget::new(limits);
        self
    }

    /// The process's budget for registry answers (for tests and metrics).
    pub fn memory(&self) -> &MemoryBudget {
        &self.memory
    }

    /// The same engine with other [`Bounds`] (each at least 1).
    pub fn with_bounds(mut self, bounds: Bounds) -> Self {
        let bounds =
            Bounds { images_per_review: bounds.images_per_review.max(1), verifications: bounds.verifications.max(1) };
        self.bounds = bounds;
        self.verifications = Arc::new(Semaphore::new(bounds.verifications));
        self
    }

    /// The policies in force.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.current()
    }

    /// The decision caches (for benchmarks and metrics).
    pub fn caches(&self) -> &Caches {
        &self.caches
    }

    /// Image verifications running now, background ones included (for tests and metrics).
    pub fn verifications_running(&self) -> usize {
        self.bounds.verifications.saturating_sub(self.verifications.available_permits())
    }

    /// Evaluates every image of a workload in a namespace with `labels`; images still being
    /// verified at `deadline` fail with [`EvalError::Deadline`].
    pub async fn evaluate(self: &Arc<Self>, images: &[WorkloadImage], labels: &Labels, deadline: Instant) -> Decision {
        self.evaluate_with(images, labels, Arc::default(), deadline).await
    }

    /// [`Engine::evaluate`] with the credentials of the workload's pull secrets.
    pub async fn evaluate_with(
        self: &Arc<Self>,
        images: &[WorkloadImage],
        labels: &Labels,
        pull: Arc<Credentials>,
        deadline: Instant,
    ) -> Decision {
        let policies = self.policies.current();
        let review = self.memory.review();
        // Whole milliseconds: the budget is for people to read.
        let left = deadline.saturating_duration_since(Instant::now());
        let budget = Duration::from_millis(
            u64::try_from(left.as_nanos().saturating_add(500_000) / 1_000_000).unwrap_or(u64::MAX),
        );
        // A workload with 10,000 containers of one image verifies that image once. Whatever the
        // caches decide is decided here, before any task is started.
        let mut evaluated: HashMap<&str, ReferenceResult> = HashMap::new();
        let mut queue: VecDeque<&str> = VecDeque::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for image in images {
            let reference = image.image.as_str();
            if !seen.insert(reference) {
                continue;
            }
            match self.evaluate_image(reference, &policies, labels, &pull, &review, Reads::CacheOnly).await {
                Some(eval) => {
                    evaluated.insert(reference, eval);
                }
                None => queue.push_back(reference),
            }
        }
        let mut running = futures::stream::FuturesUnordered::new();
        let mut started: Vec<&str> = Vec::new();
        let mut finished: HashSet<&str> = HashSet::new();
        'review: loop {
            while running.len() < self.bounds.images_per_review {
                let Some(&reference) = queue.front() else { break };
                // A turn among the process's verifications, waiting no longer than the deadline.
                let permit = match tokio::time::timeout_at(deadline, self.verifications.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    _ => break 'review,
                };
                queue.pop_front();
                started.push(reference);
                let (engine, policies, labels, owned, pull, review) = (
                    self.clone(),
                    policies.clone(),
                    labels.clone(),
                    reference.to_owned(),
                    pull.clone(),
                    review.clone(),
                );
                let task = tokio::spawn(async move {
                    let _turn = permit;
                    engine.evaluate_image(&owned, &policies, &labels, &pull, &review, Reads::Registry).await
                });
                // Dropping this future (at the deadline) detaches the task; it is not aborted.
                running.push(async move { (reference, task.await) });
            }
            if running.is_empty() {
                break;
            }
            match tokio::time::timeout_at(deadline, running.next()).await {
                Ok(Some((reference, Ok(Some(eval))))) => {
                    evaluated.insert(reference, eval);
                }
                // A registry evaluation always answers; `None` is a bug, and fails closed.
                Ok(Some((reference, Ok(None)))) => {
                    let e = EvalError::Internal("the evaluation gave no answer".into());
                    evaluated.insert(reference, self.not_evaluated(reference, &policies, labels, e));
                }
                Ok(Some((reference, Err(join)))) => {
                    tracing::error!(image = reference, error = %join, "image evaluation failed; denied");
                    let e = EvalError::Internal("the evaluation of this image failed; see the server log".into());
                    evaluated.insert(reference, self.not_evaluated(reference, &policies, labels, e));
                }
                Ok(None) | Err(_) => break,
            }
        }
        drop(running);
        // Whatever did not finish is denied: running ones finish into the cache, the rest wait
        // for the API server's retry.
        finished.extend(evaluated.keys().copied());
        for reference in started {
            if !finished.contains(reference) {
                let e = EvalError::Deadline { budget, started: true };
                evaluated.insert(reference, self.not_evaluated(reference, &policies, labels, e));
            }
        }
        for reference in queue {
            let e = EvalError::Deadline { budget, started: false };
            evaluated.insert(reference, self.not_evaluated(reference, &policies, labels, e));
        }
        let results = images
            .iter()
            .map(|image| {
                let eval = evaluated.get(image.image.as_str());
                ImageResult {
                    path: image.path.clone(),
                    container: image.container.clone(),
                    image: image.image.clone(),
                    repository: eval.and_then(|e| e.repository.clone()),
                    digest: eval.and_then(|e| e.digest.clone()),
                    // Every image has an evaluation by now; if one had none it is not admitted.
                    problem: match eval {
                        Some(e) => e.problem.clone(),
                        None => Some(ImageProblem::NotEvaluated(EvalError::Internal("no evaluation".into()))),
                    },
                    policies: eval.map(|e| e.policies.clone()).unwrap_or_default(),
                }
            })
            .collect();
        decide(results, self.unmatched)
    }

    /// What is said of an image whose evaluation did not finish: every policy that governs it
    /// fails with `error`, and when none is known to, the image itself does. Never admitted.
    fn not_evaluated(
        &self,
        reference: &str,
        policies: &PolicySet,
        labels: &Labels,
        error: EvalError,
    ) -> ReferenceResult {
        let parsed = ImageRef::parse(reference).ok();
        let repository = parsed.as_ref().map(ImageRef::repository_name);
        let results: Vec<PolicyResult> = repository
            .as_deref()
            .map(|repo| policies.matching(repo, labels).map(|p| result(p, Outcome::Error(error.clone()))).collect())
            .unwrap_or_default();
        let problem = results.is_empty().then_some(ImageProblem::NotEvaluated(error));
        ReferenceResult { repository, digest: parsed.and_then(|p| p.digest), problem, policies: results }
    }

    /// Evaluates one image. With [`Reads::CacheOnly`] it reads nothing from a registry and
    /// returns `None` as soon as it would have to.
    async fn evaluate_image(
        &self,
        reference: &str,
        policies: &PolicySet,
        labels: &Labels,
        pull: &Credentials,
        review: &Arc<ReviewBudget>,
        reads: Reads,
    ) -> Option<ReferenceResult> {
        let image = match ImageRef::parse(reference) {
            Ok(i) => i,
            Err(e) => {
                return Some(ReferenceResult {
                    repository: None,
                    digest: None,
                    problem: Some(ImageProblem::InvalidReference(e.to_string())),
                    policies: vec![],
                })
            }
        };
        let repository = image.repository_name();
        let matching: Vec<&Arc<Policy>> = policies.matching(&repository, labels).collect();
        let mut eval = ReferenceResult {
            repository: Some(repository.clone()),
            digest: image.digest.clone(),
            problem: None,
            policies: vec![],
        };
        if matching.is_empty() {
            eval.problem = Some(ImageProblem::Unmatched { repository });
            return Some(eval);
        }
        let needs_evidence = matching.iter().any(|p| p.signatures.is_some() && p.invalid.is_none());
        // Every byte read for this image is charged here, and returned when it is decided.
        let charge = review.image();
        let fetch = Fetch { pull, charge: &charge };
        // Attestations too are fetched at most once per image, and only when a policy needs them.
        let fetched_attestations: tokio::sync::OnceCell<Result<Vec<AttestationLayer>, EvalError>> =
            tokio::sync::OnceCell::new();
        if eval.digest.is_none() && needs_evidence {
            let resolved = match reads {
                Reads::CacheOnly => Ok(self.caches.cached_tag(&image.to_string()).await?),
                Reads::Registry => self.caches.tag(image.to_string(), self.registry.resolve(&image, fetch)).await,
            };
            match resolved {
                Ok(d) => eval.digest = Some(d),
                Err(e) => {
                    let err = EvalError::Registry(e);
                    eval.policies = matching.iter().map(|p| result(p, Outcome::Error(err.clone()))).collect();
                    return Some(eval);
                }
            }
        }
        // Cache lookups, counted once the image is decided (a cache-only pass that gives up is
        // tried again with reads, and must not count its hits twice).
        let mut lookups: Vec<bool> = Vec::new();
        // Signatures are fetched at most once per image, and only on a cache miss.
        let fetched: tokio::sync::OnceCell<Result<Vec<SignatureLayer>, EvalError>> = tokio::sync::OnceCell::new();
        // So are sigstore bundles (cosign v3), which hold signatures and attestations alike.
        let fetched_bundles: tokio::sync::OnceCell<Result<Vec<BundleLayer>, EvalError>> = tokio::sync::OnceCell::new();
        for policy in matching {
            if let Some(why) = &policy.invalid {
                eval.policies.push(result(policy, Outcome::Error(EvalError::InvalidPolicy(why.clone()))));
                continue;
            }
            let mut findings = Vec::new();
            if policy.require_digest && image.digest.is_none() {
                findings.push(Finding::DigestRequired);
            }
            let mut verified_by = Vec::new();
            let mut examined = Vec::new();
            if let (Some(rule), Some(digest)) = (&policy.signatures, &eval.digest) {
                let key = DecisionKey {
                    repository: eval.repository.clone().unwrap_or_default(),
                    digest: digest.clone(),
                    policy: policy.hash,
                };
                let verify = async {
                    // The three kinds of evidence are read concurrently (each at most once per image).
                    let (bundles, signatures, attestations) = tokio::join!(
                        fetched_bundles.get_or_init(|| async {
                            self.registry.bundles(&image, digest, fetch).await.map_err(EvalError::from)
                        }),
                        async {
                            if rule.threshold == 0 {
                                return None;
                            }
                            let layers = fetched.get_or_init(|| async {
                                self.registry.signatures(&image, digest, fetch).await.map_err(EvalError::from)
                            });
                            Some(layers.await)
                        },
                        async {
                            if policy.attestations.is_empty() {
                                return None;
                            }
                            let layers = fetched_attestations.get_or_init(|| async {
                                self.registry.attestations(&image, digest, fetch).await.map_err(EvalError::from)
                            });
                            Some(layers.await)
                        },
                    );
                    // Borrowed, not copied (attestations can be megabytes); each bundle is parsed
                    // once here, however many authorities and attestation rules look at it.
                    let bundles: Vec<bundle::ParsedBundle> =
                        bundles.as_ref().map_err(Clone::clone)?.iter().map(bundle::parse).collect();
                    let signatures = signatures.map(|l| l.as_ref().map_err(Clone::clone)).transpose()?;
                    let attestations = attestations.map(|l| l.as_ref().map_err(Clone::clone)).transpose()?;
                    let evidence = Evidence {
                        signatures: signatures.map(Vec::as_slice),
                        attestations: attestations.map(Vec::as_slice),
                        bundles: &bundles,
                    };
                    Ok(judge(policy, rule, digest, evidence, std::time::SystemTime::now()))
                };
                let (verdict, hit) = match reads {
                    Reads::CacheOnly => (Ok(self.caches.cached_decision(&key).await?), true),
                    Reads::Registry => self.caches.decision(key, verify).await,
                };
                lookups.push(hit);
                match verdict {
                    Ok(v) => match &v.outcome {
                        Outcome::Passed { verified_by: by } => {
                            verified_by = by.clone();
                            examined = v.examined.clone();
                        }
                        Outcome::Failed(f) => {
                            findings.extend(f.iter().cloned());
                            examined = v.examined.clone();
                        }
                        Outcome::Error(e) => {
                            eval.policies.push(result(policy, Outcome::Error(e.clone())));
                            continue;
                        }
                    },
                    Err(e) => {
                        eval.policies.push(result(policy, Outcome::Error(e)));
                        continue;
                    }
                }
            }
            let outcome = if findings.is_empty() { Outcome::Passed { verified_by } } else { Outcome::Failed(findings) };
            eval.policies.push(PolicyResult { examined, ..result(policy, outcome) });
        }
        for hit in lookups {
            self.metrics.cache(hit);
        }
        Some(eval)
    }
}

fn result(policy: &Policy, outcome: Outcome) -> PolicyResult {
    PolicyResult { policy: policy.name.clone(), mode: policy.mode, outcome, examined: Vec::new() }
}

/// What was found for one distinct image reference.
struct ReferenceResult {
    repository: Option<String>,
    digest: Option<Digest>,
    problem: Option<ImageProblem>,
    policies: Vec<PolicyResult>,
}

#[cfg(test)]
mod tests;
