//! trustgate: a Kubernetes validating admission webhook, and a CLI running the same pipeline,
//! that admits a workload only when its images carry the supply-chain evidence its
//! `ClusterImagePolicy` objects require.
//!
//! The pipeline, one module per stage, data flowing one way:
//! [`admission`] (AdmissionReview in and out) → [`images`] (every image with its field path)
//! → [`policy`] (which policies apply; pure) → [`evidence`] (registry reads and signature
//! verification against a policy's authorities; no policy rule) → [`decision`] (the judgement
//! of each policy, allow / deny / warn, and the messages). [`engine`] runs the stages per
//! distinct image; [`server`] and [`cli`] are its two front ends; [`cluster`] holds all
//! Kubernetes IO and publishes the policies the engine reads. A stage imports only the stages
//! before it: policy, evidence, decision and images import nothing of engine, server,
//! admission, cluster or cli.

// Outside input never reaches a panic: no unwrap, expect, indexing, string slicing or panic in
// the library (tests may; `cfg(test)` code is exempt). Where a value is known good, say why and
// use `?`, `get` or a fallback instead.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]
#![cfg_attr(not(test), deny(clippy::string_slice, clippy::unreachable, clippy::todo, clippy::unimplemented))]

pub mod admission;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod decision;
pub mod duration;
pub mod engine;
pub mod evidence;
pub mod images;
pub mod metrics;
pub mod policy;
pub mod server;
#[cfg(test)]
mod testing;
