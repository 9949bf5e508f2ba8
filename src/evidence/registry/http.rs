//! The HTTP side of the registry client: one request at a time per host turn, bearer tokens
//! (fetched once per scope, refusals remembered briefly), capped bodies, and errors that say
//! which registry, image and object failed.

use super::*;

/// What the token server last said for a scope.
pub(super) enum Token {
    /// A token, and when it expires.
    Granted(Arc<str>, Instant),
    /// A refusal, remembered briefly so the requests that waited on the same fetch (a Pod's
    /// signatures, attestations and referrers are read at once) share it instead of each
    /// asking again.
    Refused(RegistryError, Instant),
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never the token itself.
            Token::Granted(_, expiry) => f.debug_struct("Granted").field("expiry", expiry).finish_non_exhaustive(),
            Token::Refused(e, until) => f.debug_tuple("Refused").field(e).field(until).finish(),
        }
    }
}

/// How long a refused token is remembered: long enough for concurrent requests, short enough
/// that fixed credentials are used at once.
pub(super) const REFUSAL_MEMORY: Duration = Duration::from_secs(2);

pub(super) fn valid(token: &Option<Token>) -> Option<Arc<str>> {
    match token {
        Some(Token::Granted(t, expiry)) if *expiry > Instant::now() => Some(t.clone()),
        _ => None,
    }
}

/// A response, and the turn it holds until its body is read (or it is dropped).
pub(super) struct Reply {
    response: reqwest::Response,
    _turn: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl std::ops::Deref for Reply {
    type Target = reqwest::Response;
    fn deref(&self) -> &reqwest::Response {
        &self.response
    }
}

#[derive(Deserialize)]
pub(super) struct TokenResponse {
    pub(super) token: Option<String>,
    pub(super) access_token: Option<String>,
    pub(super) expires_in: Option<u64>,
}

pub(super) enum Auth {
    Bearer(Arc<str>),
    Basic(String, String),
}

impl RegistryClient {
    pub(super) fn base_url(&self, registry: &str) -> String {
        let scheme = if self.insecure.contains(registry) { "http" } else { "https" };
        let host = if registry == DEFAULT_REGISTRY { "registry-1.docker.io" } else { registry };
        format!("{scheme}://{host}")
    }

    /// A turn to send a request to `host`: one of its host's and one of the process's,
    /// waiting no longer than a request may take.
    pub(super) async fn turn(&self, host: &str) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), RegistryError> {
        let per_host = {
            let mut turns = self.host_turns.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Hosts nobody is waiting on are forgotten, so a stream of new names stays bounded.
            if turns.len() >= 1024 {
                let free = self.limits.requests_per_host.max(1);
                turns.retain(|_, s| s.available_permits() < free || Arc::strong_count(s) > 1);
            }
            turns
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.limits.requests_per_host.max(1))))
                .clone()
        };
        let busy = |what: String| RegistryError::Busy { budget: what, waited: self.timeout };
        let wait = |s: Arc<Semaphore>| tokio::time::timeout(self.timeout, s.acquire_owned());
        let host_turn =
            wait(per_host).await.ok().and_then(Result::ok).ok_or_else(|| {
                busy(format!("{} requests at once to registry {host}", self.limits.requests_per_host))
            })?;
        let turn = wait(self.turns.clone())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| busy(format!("{} registry requests at once", self.limits.requests)))?;
        Ok((host_turn, turn))
    }

    /// One registry API call, authenticating when challenged; records its outcome in metrics.
    pub(super) async fn call(
        &self,
        op: &'static str,
        image: &ImageRef,
        method: Method,
        path: &str,
        accept: Option<&str>,
        fetch: Fetch<'_>,
    ) -> Result<Reply, RegistryError> {
        let start = Instant::now();
        let result = match self.turn(&image.registry).await {
            Ok(turn) => {
                self.call_inner(image, method, path, accept, fetch).await.map(|r| Reply { response: r, _turn: turn })
            }
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(r) if r.status().is_success() => "ok",
            Ok(r) if r.status() == StatusCode::NOT_FOUND => "not_found",
            Ok(_) => "error",
            Err(e) => e.kind(),
        };
        self.metrics.registry_call(op, outcome, start.elapsed());
        result
    }

    pub(super) async fn call_inner(
        &self,
        image: &ImageRef,
        method: Method,
        path: &str,
        accept: Option<&str>,
        fetch: Fetch<'_>,
    ) -> Result<reqwest::Response, RegistryError> {
        let pull = fetch.pull;
        let url = format!("{}/v2/{}/{}", self.base_url(&image.registry), image.repository, path);
        // The workload's pull secret for this host, else the server's own credentials.
        let creds = pull.for_host(&image.registry).or_else(|| self.credentials.for_host(&image.registry)).cloned();
        let identity =
            creds.as_ref().map_or_else(String::new, |(u, p)| Digest::of(format!("{u}:{p}").as_bytes()).to_string());
        let slot = {
            let mut tokens = self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            tokens.entry((image.registry.clone(), image.repository.clone(), identity)).or_default().clone()
        };
        // A slot locked by a fetch under way counts as empty here; the 401 path waits for it.
        let cached = slot.try_lock().ok().and_then(|t| valid(&t)).map(Auth::Bearer);
        let response = self.send(image, method.clone(), &url, accept, cached.as_ref()).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return self.check_denied(image, response);
        }
        let challenge =
            response.headers().get(WWW_AUTHENTICATE).and_then(|h| h.to_str().ok()).and_then(parse_challenge);
        let auth = match (challenge, creds) {
            (Some(Challenge::Bearer { realm, service }), creds) => {
                let mut held = slot.lock().await;
                if let Some(Token::Refused(e, until)) = &*held {
                    if *until > Instant::now() {
                        return Err(e.clone());
                    }
                }
                match valid(&held) {
                    Some(token) => Auth::Bearer(token),
                    None => match self.fetch_token(image, &realm, service.as_deref(), creds.as_ref(), fetch).await {
                        Ok((token, expiry)) => {
                            *held = Some(Token::Granted(token.clone(), expiry));
                            Auth::Bearer(token)
                        }
                        Err(e @ RegistryError::Unauthorized { .. }) => {
                            *held = Some(Token::Refused(e.clone(), Instant::now() + REFUSAL_MEMORY));
                            return Err(e);
                        }
                        Err(e) => return Err(e),
                    },
                }
            }
            (Some(Challenge::Basic), Some((u, p))) => Auth::Basic(u, p),
            _ => return Err(self.unauthorized(image, StatusCode::UNAUTHORIZED)),
        };
        let response = self.send(image, method, &url, accept, Some(&auth)).await?;
        self.check_denied(image, response)
    }

    pub(super) fn check_denied(
        &self,
        image: &ImageRef,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, RegistryError> {
        match response.status() {
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => Err(self.unauthorized(image, s)),
            _ => Ok(response),
        }
    }

    pub(super) fn unauthorized(&self, image: &ImageRef, status: StatusCode) -> RegistryError {
        RegistryError::Unauthorized {
            host: image.registry.clone(),
            repository: image.repository.clone(),
            status: status.as_u16(),
        }
    }

    pub(super) async fn send(
        &self,
        image: &ImageRef,
        method: Method,
        url: &str,
        accept: Option<&str>,
        auth: Option<&Auth>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut req = self.http.request(method, url);
        if let Some(a) = accept {
            // Our own constants; one that is not a valid header value is left out, not a panic.
            if let Ok(value) = HeaderValue::from_str(a) {
                req = req.header(ACCEPT, value);
            }
        }
        req = match auth {
            Some(Auth::Bearer(t)) => req.bearer_auth(t),
            Some(Auth::Basic(u, p)) => req.basic_auth(u, Some(p)),
            None => req,
        };
        req.send().await.map_err(|e| self.transport_error(&image.registry, &e))
    }

    pub(super) async fn fetch_token(
        &self,
        image: &ImageRef,
        realm: &str,
        service: Option<&str>,
        creds: Option<&(String, String)>,
        fetch: Fetch<'_>,
    ) -> Result<(Arc<str>, Instant), RegistryError> {
        let start = Instant::now();
        // Credentials and tokens never travel in clear text to or from an HTTPS registry.
        if realm.starts_with("http://") && !self.insecure.contains(&image.registry) {
            return Err(self.invalid(
                image,
                "auth challenge",
                format!("token realm {realm} is not HTTPS; refusing to use it"),
            ));
        }
        let scope = format!("repository:{}:pull", image.repository);
        let mut query = vec![("scope", scope.as_str())];
        if let Some(s) = service {
            query.push(("service", s));
        }
        let mut req = self.http.get(realm).query(&query);
        if let Some((u, p)) = creds {
            req = req.basic_auth(u, Some(p));
        }
        let result = async {
            let response = req.send().await.map_err(|e| self.transport_error(&image.registry, &e))?;
            match response.status() {
                s if s.is_success() => {}
                s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => return Err(self.unauthorized(image, s)),
                s => {
                    return Err(RegistryError::Status {
                        host: image.registry.clone(),
                        what: "a token".into(),
                        status: s.as_u16(),
                    })
                }
            }
            let (body, _held) =
                self.read_body(&image.registry, response, 64 << 10, "a token response", fetch, None).await?;
            let parsed: TokenResponse =
                serde_json::from_slice(&body).map_err(|e| self.invalid(image, "token response", e))?;
            let token: Arc<str> = parsed
                .token
                .or(parsed.access_token)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| RegistryError::Invalid {
                    host: image.registry.clone(),
                    what: "token response".into(),
                    detail: "no token".into(),
                })?
                .into();
            let ttl = token_ttl(parsed.expires_in);
            Ok((token, Instant::now().checked_add(ttl).unwrap_or_else(Instant::now)))
        }
        .await;
        self.metrics.registry_call(
            "token",
            result.as_ref().map_or_else(RegistryError::kind, |_| "ok"),
            start.elapsed(),
        );
        result
    }

    pub(super) fn transport_error(&self, host: &str, e: &reqwest::Error) -> RegistryError {
        if e.is_timeout() {
            return RegistryError::Timeout { host: host.to_owned(), timeout: self.timeout };
        }
        // The innermost cause says it best ("Connection refused", "invalid peer certificate").
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
        RegistryError::Unreachable { host: host.to_owned(), detail }
    }

    pub(super) fn invalid(&self, image: &ImageRef, what: &str, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Invalid { host: image.registry.clone(), what: what.into(), detail: e.to_string() }
    }

    /// Reads a reply's body, refusing to buffer more than `limit` bytes whatever the registry
    /// claims, each byte charged before it is buffered; the request's turn ends with it.
    pub(super) async fn read_capped(
        &self,
        host: &str,
        reply: Reply,
        limit: usize,
        what: &str,
        fetch: Fetch<'_>,
    ) -> Result<(Vec<u8>, Held), RegistryError> {
        let Reply { response, _turn } = reply;
        self.read_body(host, response, limit, what, fetch, None).await
    }

    /// [`RegistryClient::read_capped`] of a bare response; `held`: bytes charged for it already.
    pub(super) async fn read_body(
        &self,
        host: &str,
        mut response: reqwest::Response,
        limit: usize,
        what: &str,
        fetch: Fetch<'_>,
        held: Option<Held>,
    ) -> Result<(Vec<u8>, Held), RegistryError> {
        let too_large = || RegistryError::TooLarge {
            host: host.to_owned(),
            what: what.to_owned(),
            limit: format!("{limit} bytes"),
        };
        let declared =
            response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        // What the registry says it sends is charged at once; without a length, 8 KiB to
        // start with and the buffer's growth as it comes.
        let initial = declared.unwrap_or(8192).min(limit);
        let mut held = match held {
            Some(h) => h,
            None => fetch.charge.take(initial, what, host).await?,
        };
        if held.bytes() < initial {
            held.merge(fetch.charge.take(initial.saturating_sub(held.bytes()), what, host).await?);
        }
        let mut body = Vec::with_capacity(initial);
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(host, &e))? {
            let needed = body.len().checked_add(chunk.len()).filter(|&n| n <= limit).ok_or_else(too_large)?;
            if needed > held.bytes() {
                let grown = needed.max(held.bytes().saturating_mul(2)).min(limit);
                held.merge(fetch.charge.take(grown.saturating_sub(held.bytes()), what, host).await?);
                body.reserve_exact(grown.saturating_sub(body.len()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, held))
    }

    pub(super) fn status_error(image: &ImageRef, reference: &str, what: &str, status: StatusCode) -> RegistryError {
        if status == StatusCode::NOT_FOUND {
            RegistryError::NotFound { repository: image.repository_name(), reference: reference.to_owned() }
        } else {
            RegistryError::Status { host: image.registry.clone(), what: what.to_owned(), status: status.as_u16() }
        }
    }

    /// A blob named by `layer`, at most `limit` bytes (and no more than it declares), checked
    /// against its digest. Its bytes stay charged to the image until its evaluation ends.
    pub(super) async fn blob(
        &self,
        image: &ImageRef,
        layer: &Descriptor,
        limit: usize,
        what: &str,
        fetch: Fetch<'_>,
    ) -> Result<(Digest, Vec<u8>), RegistryError> {
        let digest = Digest::parse(&layer.digest).map_err(|e| self.invalid(image, &format!("{what} digest"), e))?;
        let too_large = || RegistryError::TooLarge {
            host: image.registry.clone(),
            what: article(what),
            limit: format!("{limit} bytes"),
        };
        let declared = usize::try_from(layer.size).map_err(|_| too_large())?;
        if declared > limit {
            return Err(too_large());
        }
        // Charged before it is asked for: what does not fit is not fetched at all.
        let held = fetch.charge.take(declared, &article(what), &image.registry).await?;
        let Reply { response, _turn } =
            self.call("blob", image, Method::GET, &format!("blobs/{digest}"), None, fetch).await?;
        if !response.status().is_success() {
            return Err(Self::status_error(image, digest.as_str(), &article(what), response.status()));
        }
        // More than declared would not match the digest anyway.
        let (bytes, held) =
            self.read_body(&image.registry, response, declared, &article(what), fetch, Some(held)).await?;
        if Digest::of(&bytes) != digest {
            return Err(self.invalid(image, what, format!("its content does not match its digest {digest}")));
        }
        fetch.charge.keep(held);
        Ok((digest, bytes))
    }
}

/// How long a token is used: what the token server says (60 s if nothing), less 10 s for the
/// clock and the trip, between 10 s and an hour (a token server cannot make it last forever).
pub(super) fn token_ttl(expires_in: Option<u64>) -> Duration {
    Duration::from_secs(expires_in.unwrap_or(60).saturating_sub(10).clamp(10, 3600))
}
