//! Globs over repository names: `*` matches within one path segment, `**` across segments.
//!
//! `registry.acme.io/apps/*` matches `registry.acme.io/apps/api` but not
//! `registry.acme.io/apps/team/api`; `registry.acme.io/apps/**` matches both. A glob
//! without a registry host is normalised like an image name (`nginx` governs
//! `docker.io/library/nginx`), so policies and images are compared in the same terms.

use crate::images::DEFAULT_REGISTRY;

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`: any run of characters except `/`.
    Star,
    /// `**`: any run of characters.
    DoubleStar,
}

/// Why a glob is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("glob is empty")]
    Empty,
    #[error("glob {0:?} contains {1:?}: only lowercase names, '/', ':', '.', '-', '_' and '*' are allowed")]
    Character(String, char),
    #[error("glob {0:?} has more than two '*' in a row")]
    Stars(String),
    #[error("glob {0:?} has a tag or digest: globs match repositories; pin digests with requireDigest")]
    TagOrDigest(String),
}

impl Glob {
    /// Compiles a glob, normalising a registry-less glob to `docker.io`.
    pub fn new(source: &str) -> Result<Self, GlobError> {
        if source.is_empty() {
            return Err(GlobError::Empty);
        }
        if let Some(c) =
            source.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "/:.-_*[]".contains(*c)))
        {
            return Err(GlobError::Character(source.into(), c));
        }
        if source.contains("***") {
            return Err(GlobError::Stars(source.into()));
        }
        let normalised = normalise(source);
        // A ':' may only be a registry port: it must sit in the first segment.
        if normalised.split('/').skip(1).any(|seg| seg.contains(':')) || source.contains('@') {
            return Err(GlobError::TagOrDigest(source.into()));
        }
        let mut tokens = Vec::new();
        let mut rest = normalised.as_str();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("**") {
                tokens.push(Token::DoubleStar);
                rest = r;
            } else if let Some(r) = rest.strip_prefix('*') {
                tokens.push(Token::Star);
                rest = r;
            } else {
                let end = rest.find('*').unwrap_or(rest.len());
                tokens.push(Token::Literal(rest[..end].to_owned()));
                rest = &rest[end..];
            }
        }
        Ok(Glob { source: normalised, tokens })
    }

    /// Does the glob match this normalised repository name (`host/path`)?
    pub fn matches(&self, repository: &str) -> bool {
        match_tokens(&self.tokens, repository)
    }

    /// The normalised glob.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// `nginx` → `docker.io/library/nginx`, `acme/*` → `docker.io/acme/*`; a glob whose first
/// segment looks like a host (or is a wildcard, which may stand for one) is kept as written.
fn normalise(glob: &str) -> String {
    let first = glob.split('/').next().unwrap_or_default();
    let has_host =
        glob.starts_with("**") || glob.contains('/') && (first.contains(['.', ':', '*']) || first == "localhost");
    if has_host {
        return glob.to_owned();
    }
    if glob.contains('/') || glob.contains("**") {
        format!("{DEFAULT_REGISTRY}/{glob}")
    } else {
        format!("{DEFAULT_REGISTRY}/library/{glob}")
    }
}

fn match_tokens(tokens: &[Token], s: &str) -> bool {
    match tokens.split_first() {
        None => s.is_empty(),
        Some((Token::Literal(lit), rest)) => s.strip_prefix(lit.as_str()).is_some_and(|s| match_tokens(rest, s)),
        Some((Token::Star, rest)) => {
            let limit = s.find('/').unwrap_or(s.len());
            (0..=limit).any(|i| match_tokens(rest, &s[i..]))
        }
        Some((Token::DoubleStar, rest)) => {
            (0..=s.len()).filter(|&i| s.is_char_boundary(i)).any(|i| match_tokens(rest, &s[i..]))
        }
    }
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
    fn rejects_bad_globs(#[case] glob: &str) {
        assert!(Glob::new(glob).is_err(), "{glob:?}");
    }

    #[test]
    fn normalises_like_image_names() {
        assert_eq!(Glob::new("nginx").unwrap().as_str(), "docker.io/library/nginx");
        assert_eq!(Glob::new("acme/**").unwrap().as_str(), "docker.io/acme/**");
        assert_eq!(Glob::new("ghcr.io/acme/**").unwrap().as_str(), "ghcr.io/acme/**");
    }
}
