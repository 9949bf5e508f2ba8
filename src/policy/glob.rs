//! Globs over repository names: `*` matches within one path segment, `**` across segments.
//! (And [`star_match`], the one-star globs of SLSA and SBOM rules.)
//!
//! `registry.acme.io/apps/*` matches `registry.acme.io/apps/api` but not
//! `registry.acme.io/apps/team/api`; `registry.acme.io/apps/**` matches both. A glob
//! without a registry host is normalised like an image name (`nginx` governs
//! `docker.io/library/nginx`), and a glob's host is spelled the canonical way image hosts are
//! (`registry.acme.io:443` is `registry.acme.io`), so policies and images are compared in the
//! same terms.
//!
//! The image name is chosen by whoever writes the workload, so matching must not depend on
//! how cleverly it is chosen: a glob is compiled once into a regular expression, which the
//! `regex` crate matches in time linear in the name, whatever the glob
//! (`**a**a**a**a**a**a**a**b` included).

use crate::images::{canonical_host, DEFAULT_REGISTRY};

/// The longest glob accepted (the CRD says the same).
pub const MAX_GLOB_LEN: usize = 512;

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob {
    source: String,
    /// The literal text before the first `*`: most names are told apart by it alone.
    prefix: String,
    /// The whole glob compiled; `None` when it has no `*` (then it is the name itself).
    regex: Option<regex::Regex>,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Glob {}

/// Why a glob is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("glob is empty")]
    Empty,
    #[error("glob is {0} characters, over the {MAX_GLOB_LEN} allowed")]
    Long(usize),
    #[error("glob {0:?} contains {1:?}: only lowercase names, '/', ':', '.', '-', '_' and '*' are allowed")]
    Character(String, char),
    #[error("glob {0:?} has more than two '*' in a row")]
    Stars(String),
    #[error("glob {0:?} has a tag or digest: globs match repositories; pin digests with requireDigest")]
    TagOrDigest(String),
    #[error("glob {0:?} has an invalid registry host: {1}")]
    Host(String, &'static str),
}

impl Glob {
    /// Compiles a glob, normalising a registry-less glob to `docker.io`.
    pub fn new(source: &str) -> Result<Self, GlobError> {
        if source.is_empty() {
            return Err(GlobError::Empty);
        }
        if source.len() > MAX_GLOB_LEN {
            return Err(GlobError::Long(source.len()));
        }
        if let Some(c) =
            source.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "/:.-_*[]".contains(*c)))
        {
            return Err(GlobError::Character(source.into(), c));
        }
        if source.contains("***") {
            return Err(GlobError::Stars(source.into()));
        }
        let normalised = normalise(source)?;
        // A ':' may only be a registry port: it must sit in the first segment.
        if normalised.split('/').skip(1).any(|seg| seg.contains(':')) || source.contains('@') {
            return Err(GlobError::TagOrDigest(source.into()));
        }
        let mut pattern = String::with_capacity(normalised.len() * 2 + 4);
        pattern.push_str(r"\A");
        let mut rest = normalised.as_str();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("**") {
                pattern.push_str("(?s:.*)");
                rest = r;
            } else if let Some(r) = rest.strip_prefix('*') {
                pattern.push_str("[^/]*");
                rest = r;
            } else {
                let end = rest.find('*').unwrap_or(rest.len());
                let (literal, after) = rest.split_at(end);
                pattern.push_str(&regex::escape(literal));
                rest = after;
            }
        }
        pattern.push_str(r"\z");
        let prefix = normalised.split('*').next().unwrap_or_default().to_owned();
        let regex = if normalised.contains('*') {
            // 512 characters of glob compile to a small program; the limit only makes sure of it.
            let regex = regex::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|_| GlobError::Long(source.len()))?;
            Some(regex)
        } else {
            None
        };
        Ok(Glob { source: normalised, prefix, regex })
    }

    /// Does the glob match this normalised repository name (`host/path`)?
    pub fn matches(&self, repository: &str) -> bool {
        match &self.regex {
            _ if !repository.starts_with(&self.prefix) => false,
            Some(regex) => regex.is_match(repository),
            None => repository == self.source,
        }
    }

    /// The normalised glob.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// `nginx` → `docker.io/library/nginx`, `acme/*` → `docker.io/acme/*`; a glob whose first
/// segment looks like a host (or is a wildcard, which may stand for one) keeps it, spelled
/// canonically when it has no wildcard.
fn normalise(glob: &str) -> Result<String, GlobError> {
    let (first, rest) = glob.split_once('/').unwrap_or((glob, ""));
    let has_host =
        glob.starts_with("**") || glob.contains('/') && (first.contains(['.', ':', '*']) || first == "localhost");
    if has_host {
        if first.contains('*') {
            return Ok(glob.to_owned());
        }
        let host = canonical_host(first).map_err(|why| GlobError::Host(glob.to_owned(), why))?;
        return Ok(format!("{host}/{rest}"));
    }
    Ok(if glob.contains('/') || glob.contains("**") {
        format!("{DEFAULT_REGISTRY}/{glob}")
    } else {
        format!("{DEFAULT_REGISTRY}/library/{glob}")
    })
}

/// The second kind of glob, for URIs, refs and package versions (SLSA rules, SBOM denied
/// packages): `*` matches any run of characters (including `/`), everything else is literal. Case-sensitive; a pattern without `*` matches only itself.
///
/// `https://github.com/acme/*` matches `https://github.com/acme/app` and
/// `https://github.com/acme/app/sub`, but not `https://github.com/acme-evil/app`: the `/` after
/// `acme` is literal.
pub fn star_match(pattern: &str, value: &str) -> bool {
    let (p, v) = (pattern.as_bytes(), value.as_bytes());
    let (mut pi, mut vi) = (0, 0);
    // Where to resume after the latest '*': the pattern index after it, and the value index it
    // has consumed up to. Backtracking to only the latest '*' suffices because '*' matches
    // anything, which keeps this linear in practice and never exponential.
    let mut resume: Option<(usize, usize)> = None;
    while vi < v.len() {
        if p.get(pi) == Some(&b'*') {
            pi += 1;
            resume = Some((pi, vi));
        } else if p.get(pi).is_some_and(|c| v.get(vi) == Some(c)) {
            pi += 1;
            vi += 1;
        } else if let Some((after_star, consumed)) = resume {
            pi = after_star;
            vi = consumed + 1;
            resume = Some((after_star, vi));
        } else {
            return false;
        }
    }
    p.iter().skip(pi).all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("registry.acme.io/apps/*", "registry.acme.io/apps/api", true)]
    #[case("registry.acme.io/apps/*", "registry.acme.io/apps/team/api", false)]
    #[case("registry.acme.io/apps/**", "registry.acme.io/apps/team/api", true)]
    #[case("registry.acme.io/apps/**", "registry.acme.io/apps/api", true)]
    #[case("registry.acme.io/apps/**", "registry.acme.io/appsx/api", false)]
    #[case("registry.acme.io/apps/**", "evil.io/registry.acme.io/apps/api", false)]
    #[case("registry.acme.io/*-svc", "registry.acme.io/billing-svc", true)]
    #[case("registry.acme.io/*-svc", "registry.acme.io/billing-svc/x", false)]
    #[case("*.acme.io/**", "eu.acme.io/x/y", true)]
    #[case("*.acme.io/**", "acme.io.evil.com/x", false)]
    #[case("**", "anything.io/a/b/c", true)]
    #[case("nginx", "docker.io/library/nginx", true)]
    #[case("nginx", "docker.io/library/nginx-evil", false)]
    #[case("acme/*", "docker.io/acme/api", true)]
    #[case("127.0.0.1:5000/**", "127.0.0.1:5000/app", true)]
    #[case("127.0.0.1:5000/**", "127.0.0.1:5001/app", false)]
    #[case("localhost/app", "localhost/app", true)]
    #[case("registry.acme.io:443/apps/**", "registry.acme.io/apps/api", true)]
    #[case("127.0.0.1:05000/**", "127.0.0.1:5000/app", true)]
    #[case("index.docker.io/library/nginx", "docker.io/library/nginx", true)]
    #[case("registry.acme.io/a.b", "registry.acme.io/axb", false)]
    #[case("registry.acme.io/**/api", "registry.acme.io/api", false)]
    #[case("registry.acme.io/**/api", "registry.acme.io/x/api", true)]
    fn matches_repositories(#[case] glob: &str, #[case] repo: &str, #[case] want: bool) {
        assert_eq!(Glob::new(glob).unwrap().matches(repo), want, "{glob} vs {repo}");
    }

    #[rstest]
    #[case("")]
    #[case("Registry.io/x")]
    #[case("registry.io/x:v1")]
    #[case("registry.io/x@sha256:00")]
    #[case("registry.io/***")]
    #[case("registry.io/x y")]
    #[case("127.1:5000/**")]
    #[case("registry.io:0/**")]
    fn rejects_bad_globs(#[case] glob: &str) {
        assert!(Glob::new(glob).is_err(), "{glob:?}");
    }

    #[test]
    fn normalises_like_image_names() {
        assert_eq!(Glob::new("nginx").unwrap().as_str(), "docker.io/library/nginx");
        assert_eq!(Glob::new("acme/**").unwrap().as_str(), "docker.io/acme/**");
        assert_eq!(Glob::new("ghcr.io/acme/**").unwrap().as_str(), "ghcr.io/acme/**");
    }

    /// A glob that backtracking matchers take exponential time over (issue 9: more than 20 s
    /// of CPU for a 60-character name) is matched in linear time. The bound is three orders
    /// of magnitude above what linear matching takes, so the test cannot flake; a backtracking
    /// matcher does not finish within it.
    #[test]
    fn pathological_globs_match_in_linear_time() {
        let glob = Glob::new("**a**a**a**a**a**a**a**b").unwrap();
        let name = format!("registry.acme.io/{}", "a".repeat(60));
        let long = format!("registry.acme.io/{}", "a/".repeat(2000));
        let started = std::time::Instant::now();
        for _ in 0..100 {
            assert!(!glob.matches(&name));
            assert!(!glob.matches(&long));
        }
        assert!(glob.matches(&format!("{name}b")));
        let star = Glob::new(&format!("registry.acme.io/{}", "*a".repeat(100))).unwrap();
        assert!(!star.matches(&format!("registry.acme.io/{}", "a".repeat(99))));
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }
}
