//! Registry credentials from a docker `config.json`, and the `WWW-Authenticate` challenges
//! that tell a client how to use them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

/// Username and password (or token) per registry host.
#[derive(Clone, Default)]
pub struct Credentials {
    by_host: HashMap<String, (String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, only which hosts have them.
        f.debug_struct("Credentials").field("hosts", &self.by_host.keys().collect::<Vec<_>>()).finish()
    }
}

/// Reading a docker config failed.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("reading registry config {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry config {path} is not a docker config.json")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("registry config {path}: auths[{host:?}].auth is not base64 of user:password")]
    Auth { path: PathBuf, host: String },
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    #[serde(rename = "identitytoken")]
    identity_token: Option<String>,
}

impl Credentials {
    /// Reads the `auths` of a docker `config.json` (the format of `docker login` and of
    /// `kubernetes.io/dockerconfigjson` pull secrets). Credential helpers are not run.
    pub fn from_docker_config(path: &Path) -> Result<Self, CredentialsError> {
        let bytes = std::fs::read(path).map_err(|source| CredentialsError::Read { path: path.into(), source })?;
        Self::from_docker_config_bytes(&bytes).map_err(|e| match e {
            ParseError::Json(source) => CredentialsError::Parse { path: path.into(), source },
            ParseError::Auth(host) => CredentialsError::Auth { path: path.into(), host },
        })
    }

    fn from_docker_config_bytes(bytes: &[u8]) -> Result<Self, ParseError> {
        let config: DockerConfig = serde_json::from_slice(bytes).map_err(ParseError::Json)?;
        let mut by_host = HashMap::new();
        for (key, entry) in config.auths {
            let host = normalise_host(&key);
            let pair = if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| ParseError::Auth(key.clone()))?;
                let (u, p) = decoded.split_once(':').ok_or_else(|| ParseError::Auth(key.clone()))?;
                (u.to_owned(), p.to_owned())
            } else if let (Some(u), Some(p)) = (entry.username, entry.password) {
                (u, p)
            } else if let Some(token) = entry.identity_token {
                ("<token>".to_owned(), token)
            } else {
                continue;
            };
            by_host.insert(host, pair);
        }
        Ok(Credentials { by_host })
    }

    /// The credentials for a registry host (`docker.io`, `127.0.0.1:5000`), if any.
    pub fn for_host(&self, host: &str) -> Option<&(String, String)> {
        self.by_host.get(host)
    }

    /// Reads a pull Secret's data: `.dockerconfigjson` (a docker config.json) or the legacy
    /// `.dockercfg` (its `auths` map alone).
    pub fn from_pull_secret(key: &str, bytes: &[u8]) -> Result<Self, String> {
        let parsed = match key {
            ".dockerconfigjson" => Self::from_docker_config_bytes(bytes),
            ".dockercfg" => {
                let auths: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
                Self::from_docker_config_bytes(
                    &serde_json::to_vec(&serde_json::json!({"auths": auths})).unwrap_or_default(),
                )
            }
            other => return Err(format!("{other} is not a pull secret key")),
        };
        parsed.map_err(|e| match e {
            ParseError::Json(e) => e.to_string(),
            ParseError::Auth(host) => format!("auths[{host:?}].auth is not base64 of user:password"),
        })
    }

    /// Adds `other`'s hosts; on a host both have, `other` wins.
    pub fn extend(&mut self, other: Credentials) {
        self.by_host.extend(other.by_host);
    }

    /// No host has credentials.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}

enum ParseError {
    Json(serde_json::Error),
    Auth(String),
}

/// `https://index.docker.io/v1/` → `docker.io`; `registry.acme.io:443/` → `registry.acme.io:443`.
fn normalise_host(key: &str) -> String {
    let host = key.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or_default();
    // Spelled as image references are (`LOCALHOST:05000` is `localhost:5000`); a key that is
    // no host at all is kept as written and matches nothing.
    crate::images::canonical_host(host).unwrap_or_else(|_| host.to_owned())
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm="…",service="…"`: fetch a token from `realm`.
    Bearer { realm: String, service: Option<String> },
    /// `Basic realm="…"`: send the credentials directly.
    Basic,
}

/// Parses the first challenge of a `WWW-Authenticate` header.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut realm = None;
    let mut service = None;
    // key="value" pairs; values may contain commas inside quotes.
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            quoted.split_once('"')?
        } else {
            after.split_at_checked(after.find(',').unwrap_or(after.len()))?
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value.to_owned()),
            "service" => service = Some(value.to_owned()),
            _ => {}
        }
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(Challenge::Bearer { realm: realm?, service }),
        "basic" => Some(Challenge::Basic),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_config_auths() {
        let config = br#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNzOndvcmQ="},
            "127.0.0.1:5000": {"username": "ci", "password": "s3cret"},
            "empty.io": {}
        }}"#;
        let c = Credentials::from_docker_config_bytes(config).ok().unwrap();
        assert_eq!(c.for_host("docker.io"), Some(&("user".into(), "pass:word".into())));
        assert_eq!(c.for_host("127.0.0.1:5000"), Some(&("ci".into(), "s3cret".into())));
        assert_eq!(c.for_host("empty.io"), None);
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn pull_secrets_in_both_formats() {
        let json = br#"{"auths": {"r.io": {"username": "a", "password": "b"}}}"#;
        let c = Credentials::from_pull_secret(".dockerconfigjson", json).unwrap();
        assert_eq!(c.for_host("r.io"), Some(&("a".into(), "b".into())));
        let legacy = br#"{"https://index.docker.io/v1/": {"auth": "dTpw"}}"#;
        let mut c2 = Credentials::from_pull_secret(".dockercfg", legacy).unwrap();
        assert_eq!(c2.for_host("docker.io"), Some(&("u".into(), "p".into())));
        c2.extend(c);
        assert!(c2.for_host("r.io").is_some() && c2.for_host("docker.io").is_some());
        assert!(Credentials::from_pull_secret("token", b"{}").is_err());
    }

    #[test]
    fn bad_auth_names_the_host() {
        let err = Credentials::from_docker_config_bytes(br#"{"auths": {"r.io": {"auth": "!!"}}}"#).err().unwrap();
        assert!(matches!(err, ParseError::Auth(h) if h == "r.io"));
    }

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.acme.io/token",service="registry.acme.io",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.acme.io/token".into(),
                service: Some("registry.acme.io".into())
            })
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }
}
