//! Container image references: parsing and normalisation.
//!
//! `nginx` becomes `docker.io/library/nginx:latest`, exactly as the container runtime reads
//! it, so a policy glob written against `docker.io/library/**` governs the short name too.
//! The grammar follows the distribution reference format (`[host[:port]/]path[:tag][@digest]`).

use std::fmt;

/// The registry that short names resolve to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path inside the registry (`library/nginx`).
    pub repository: String,
    /// Tag, if the reference has one (`latest` is filled in when there is neither tag nor digest).
    pub tag: Option<String>,
    /// Digest (`sha256:<64 hex>`), if the reference pins one.
    pub digest: Option<Digest>,
}

/// A content digest. Only `sha256` is accepted: it is what registries and cosign use, and
/// accepting weaker or unknown algorithms would only widen what an attacker can choose.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// `sha256:<64 lowercase hex>`.
    text: String,
    /// The same 32 bytes, decoded once.
    raw: [u8; 32],
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Digest").field(&self.text).finish()
    }
}

/// Why a reference could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseReferenceError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference {0:?} has an invalid digest: {1}")]
    Digest(String, DigestError),
    #[error("image reference {0:?} has an invalid tag {1:?} (letters, digits, '_', '.', '-'; at most 128)")]
    Tag(String, String),
    #[error("image reference {0:?} has an invalid repository path {1:?} (lowercase letters, digits and separators)")]
    Repository(String, String),
    #[error("image reference {0:?} has an invalid registry host {1:?}: {2}")]
    Registry(String, String, &'static str),
}

/// Why a digest string is not a valid sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("only sha256 digests are supported")]
    Algorithm,
    #[error("a sha256 digest is 64 lowercase hex characters")]
    Hex,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let hex = s.strip_prefix("sha256:").ok_or(DigestError::Algorithm)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(DigestError::Hex);
        }
        let mut raw = [0; 32];
        hex::decode_to_slice(hex, &mut raw).map_err(|_| DigestError::Hex)?;
        Ok(Digest { text: s.to_owned(), raw })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::{Digest as _, Sha256};
        let raw: [u8; 32] = Sha256::digest(bytes).into();
        Digest { text: format!("sha256:{}", hex::encode(raw)), raw }
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The hex part, without the algorithm.
    pub fn hex(&self) -> &str {
        self.text.strip_prefix("sha256:").unwrap_or(&self.text)
    }

    /// The 32 bytes of the sha256 digest.
    pub fn bytes(&self) -> [u8; 32] {
        self.raw
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl ImageRef {
    /// Parses and normalises a reference as a container runtime would.
    pub fn parse(input: &str) -> Result<Self, ParseReferenceError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ParseReferenceError::Empty);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                (rest, Some(Digest::parse(d).map_err(|e| ParseReferenceError::Digest(input.into(), e))?))
            }
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if name.len() >= last_slash => (name, Some(tag)),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !valid {
                return Err(ParseReferenceError::Tag(input.into(), tag.into()));
            }
        }
        // As the runtime splits it: a first segment with '.' or ':', `localhost`, or any
        // upper-case letter (a repository path cannot have one) is a registry host.
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first.eq_ignore_ascii_case("localhost")
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first, path.to_owned())
            }
            _ => (DEFAULT_REGISTRY, name.to_owned()),
        };
        let registry = canonical_host(registry)
            .map_err(|why| ParseReferenceError::Registry(input.into(), registry.to_owned(), why))?;
        // `Registry/app` names the host `Registry` to the runtime only because of its capital
        // letter; spelled canonically (`registry/app`) it would read as a Docker Hub path, and
        // no policy glob could name that host. Refused: it must be written with a dot or port.
        if !registry.contains(['.', ':', '[']) && registry != "localhost" && registry != DEFAULT_REGISTRY {
            return Err(ParseReferenceError::Registry(
                input.into(),
                registry,
                "a host without a dot or a port is a host only by its capital letters; write its full name",
            ));
        }
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_path(&repository) {
            return Err(ParseReferenceError::Repository(input.into(), repository));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(ImageRef { registry, repository, tag, digest })
    }

    /// `host/path`, the string that policy globs are matched against.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository pinned to `digest` (what is verified and what a hint tells to sign).
    pub fn with_digest(&self, digest: &Digest) -> String {
        format!("{}/{}@{}", self.registry, self.repository, digest)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// A registry host spelled the one way every spelling the runtime treats as the same
/// registry comes out: the name in lower case (host names are case-insensitive), the port
/// without leading zeros and without `:443` (the HTTPS port a registry is reached on anyway),
/// an IPv6 address in its RFC 5952 form, the Docker Hub aliases as `docker.io`. An all-numeric
/// name that is not a plain dotted quad (`127.1`, `0x7f.0.0.1`, `127.000.000.001`) is refused:
/// resolvers disagree on what it means, so no policy could be sure to govern it.
pub fn canonical_host(host: &str) -> Result<String, &'static str> {
    const DOCKER_ALIASES: [&str; 3] = [DEFAULT_REGISTRY, "index.docker.io", "registry-1.docker.io"];
    if host.is_empty() || host.len() > 255 {
        return Err("a host is 1 to 255 characters");
    }
    let (name, port) = if let Some(bracketed) = host.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']').ok_or("an IPv6 address needs its closing ']'")?;
        let ip: std::net::Ipv6Addr = inside.parse().map_err(|_| "not an IPv6 address inside '[…]'")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("only ':PORT' may follow an IPv6 address")?),
        };
        (format!("[{ip}]"), port)
    } else {
        let (name, port) = match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        let name = name.to_ascii_lowercase();
        let labels_ok = name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !labels_ok {
            return Err("a host name is dot-separated labels of letters, digits and inner '-'");
        }
        let numeric = name.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()) || l.starts_with("0x"));
        if numeric && name.parse::<std::net::Ipv4Addr>().is_err() {
            return Err("an all-numeric host must be a plain IPv4 address (a.b.c.d, no leading zeros)");
        }
        (name, port)
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 16 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err("a port is digits");
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err("a port is 1 to 65535"),
                Ok(n) => Some(n),
            }
        }
    };
    let name =
        if DOCKER_ALIASES.contains(&name.as_str()) && port.is_none() { DEFAULT_REGISTRY.to_owned() } else { name };
    Ok(match port {
        // `docker.io:443` is not Docker Hub to the runtime (only the bare name is mapped).
        Some(443) if !DOCKER_ALIASES.contains(&name.as_str()) => name,
        Some(p) => format!("{name}:{p}"),
        None => name,
    })
}

fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 255
        && path.split('/').all(|component| {
            // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
            let bytes = component.as_bytes();
            let alphanumeric = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            alphanumeric(bytes.first())
                && alphanumeric(bytes.last())
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
                && !component.contains("..")
                && !component.contains("___")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[rstest]
    #[case("nginx", "docker.io/library/nginx:latest")]
    #[case("nginx:1.27", "docker.io/library/nginx:1.27")]
    #[case("acme/api", "docker.io/acme/api:latest")]
    #[case("docker.io/nginx", "docker.io/library/nginx:latest")]
    #[case("index.docker.io/library/nginx", "docker.io/library/nginx:latest")]
    #[case("registry.acme.io/apps/api:v1", "registry.acme.io/apps/api:v1")]
    #[case("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest")]
    #[case("localhost/app:dev", "localhost/app:dev")]
    #[case("localhost:5000/a/b/c:1.0-rc.1", "localhost:5000/a/b/c:1.0-rc.1")]
    #[case("LOCALHOST:5010/up/unsigned:v1", "localhost:5010/up/unsigned:v1")]
    #[case("127.0.0.1:05010/sec/unsigned:v1", "127.0.0.1:5010/sec/unsigned:v1")]
    #[case("Registry.ACME.io/apps/api:v1", "registry.acme.io/apps/api:v1")]
    #[case("registry.acme.io:443/apps/api:v1", "registry.acme.io/apps/api:v1")]
    #[case("registry.acme.io:0443/apps/api:v1", "registry.acme.io/apps/api:v1")]
    #[case("INDEX.DOCKER.IO/nginx", "docker.io/library/nginx:latest")]
    #[case("docker.io:443/library/nginx", "docker.io:443/library/nginx:latest")]
    #[case("LocalHost/app", "localhost/app:latest")]
    #[case("[0:0:0:0:0:0:0:1]:5000/app", "[::1]:5000/app:latest")]
    #[case("[::FFFF:127.0.0.1]:5000/app", "[::ffff:127.0.0.1]:5000/app:latest")]
    fn normalises_like_the_runtime(#[case] input: &str, #[case] want: &str) {
        assert_eq!(ImageRef::parse(input).unwrap().to_string(), want);
    }

    #[test]
    fn digest_refs_keep_the_digest_and_get_no_default_tag() {
        let r = ImageRef::parse(&format!("ghcr.io/acme/api@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_ref().unwrap().as_str(), D);
        assert_eq!(r.repository_name(), "ghcr.io/acme/api");
        let r = ImageRef::parse(&format!("127.0.0.1:5000/api:v2@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("v2"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.with_digest(r.digest.as_ref().unwrap()), format!("127.0.0.1:5000/api@{D}"));
    }

    #[rstest]
    #[case("")]
    #[case("Nginx")]
    #[case("acme/API:v1")]
    #[case("nginx:")]
    #[case("nginx:-bad")]
    #[case("nginx@sha256:abc")]
    #[case("nginx@md5:0123456789abcdef0123456789abcdef")]
    #[case("registry..io/x")]
    #[case("a//b")]
    #[case("127.1:5000/app")]
    #[case("127.000.000.001:5000/app")]
    #[case("0x7f.0.0.1:5000/app")]
    #[case("2130706433:5000/app")]
    #[case("registry.acme.io:0/app")]
    #[case("registry.acme.io:65536/app")]
    #[case("registry.acme.io:/app")]
    #[case("registry.acme.io./app")]
    #[case("-registry.acme.io/app")]
    #[case("[::1/app")]
    #[case("[nope]:5000/app")]
    // Found by the image_reference fuzz target: canonically `iuio/acm`, a Docker Hub path.
    #[case("iUio/acm")]
    #[case("Acme/app")]
    fn rejects_malformed_references(#[case] input: &str) {
        assert!(ImageRef::parse(input).is_err(), "{input:?} should not parse");
    }

    #[test]
    fn digest_of_bytes_is_sha256() {
        assert_eq!(Digest::of(b"").as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(Digest::parse(D).unwrap().hex().len(), 64);
        assert_eq!(Digest::parse("sha256:ABC"), Err(DigestError::Hex));
    }
}
