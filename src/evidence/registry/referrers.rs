//! Sigstore bundles attached as OCI referrers: the referrers API with its `Link` pages, its
//! tag-schema fallback, and the manifest checks that bind a referrer to the image.

use super::*;

impl RegistryClient {
    /// The descriptors that refer to `digest`: the OCI 1.1 referrers API, its `Link` pages
    /// followed on the same registry; or, when the registry has no such API, the referrers
    /// tag-schema fallback (`sha256-<hex>`). Nothing here is trusted yet.
    pub(super) async fn referrers(
        &self,
        image: &ImageRef,
        digest: &Digest,
        fetch: Fetch<'_>,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let mut path = format!("referrers/{digest}");
        let mut out = Vec::new();
        for page in 0.. {
            if page == REFERRER_PAGES {
                return Err(RegistryError::TooLarge {
                    host: image.registry.clone(),
                    what: format!("more than {REFERRER_PAGES} pages of referrers for {digest}"),
                    limit: format!("{REFERRER_PAGES} pages"),
                });
            }
            let response = self.call("referrers", image, Method::GET, &path, Some(OCI_INDEX), fetch).await?;
            let status = response.status();
            if page == 0
                && matches!(
                    status,
                    StatusCode::NOT_FOUND
                        | StatusCode::BAD_REQUEST
                        | StatusCode::METHOD_NOT_ALLOWED
                        | StatusCode::NOT_ACCEPTABLE
                )
            {
                // Give the turn back first: the fallback takes one of its own, and a turn held
                // while waiting for another starves the host's budget (16 images at once on a
                // registry without the API held them all and waited for a 17th).
                drop(response);
                return self.referrers_fallback(image, digest, fetch).await;
            }
            if !status.is_success() {
                return Err(Self::status_error(image, &path, "the referrers list", status));
            }
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .map(|link| self.next_page(image, link))
                .transpose()?
                .flatten();
            let (body, _held) = self
                .read_capped(&image.registry, response, self.limits.manifest_bytes, "a referrers list", fetch)
                .await?;
            let index: Index = serde_json::from_slice(&body).map_err(|e| self.invalid(image, "referrers list", e))?;
            out.extend(index.manifests);
            if out.len() > REFERRER_DESCRIPTORS {
                return Err(RegistryError::TooLarge {
                    host: image.registry.clone(),
                    what: format!("more than {REFERRER_DESCRIPTORS} referrers for {digest}"),
                    limit: format!("{REFERRER_DESCRIPTORS} referrers"),
                });
            }
            match next {
                Some(p) => path = p,
                None => break,
            }
        }
        Ok(out)
    }

    /// The `rel="next"` target of a `Link` header, as a path under the repository; only a
    /// referrers URL of the same registry and repository is followed.
    pub(super) fn next_page(&self, image: &ImageRef, link: &str) -> Result<Option<String>, RegistryError> {
        let Some(target) = link
            .split(',')
            .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
            .and_then(|part| part.trim().strip_prefix('<'))
            .and_then(|part| part.split_once('>'))
            .map(|(url, _)| url.trim())
        else {
            return Ok(None);
        };
        let prefix = format!("/v2/{}/", image.repository);
        let base = self.base_url(&image.registry);
        let path = target.strip_prefix(&base).unwrap_or(target);
        match path.strip_prefix(&prefix) {
            Some(rest) if rest.starts_with("referrers/") => Ok(Some(rest.to_owned())),
            _ => Err(self.invalid(
                image,
                "referrers list",
                format!("its next page {target:?} is not a referrers URL of this repository on this registry"),
            )),
        }
    }

    /// The referrers tag-schema fallback: an index tagged `sha256-<hex>`.
    pub(super) async fn referrers_fallback(
        &self,
        image: &ImageRef,
        digest: &Digest,
        fetch: Fetch<'_>,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let path = format!("manifests/sha256-{}", digest.hex());
        let response = self.call("referrers", image, Method::GET, &path, Some(OCI_INDEX), fetch).await?;
        match response.status() {
            StatusCode::NOT_FOUND => return Ok(Vec::new()),
            s if s.is_success() => {}
            s => return Err(Self::status_error(image, &path, "the referrers fallback tag", s)),
        }
        let (body, _held) =
            self.read_capped(&image.registry, response, self.limits.manifest_bytes, "a referrers index", fetch).await?;
        let index: Index = serde_json::from_slice(&body).map_err(|e| self.invalid(image, "referrers index", e))?;
        if index.manifests.len() > REFERRER_DESCRIPTORS {
            return Err(RegistryError::TooLarge {
                host: image.registry.clone(),
                what: format!("{} referrers for {digest}", index.manifests.len()),
                limit: format!("{REFERRER_DESCRIPTORS} referrers"),
            });
        }
        Ok(index.manifests)
    }

    /// One referrer that may be a sigstore bundle: its manifest (checked against its digest,
    /// its subject must be `digest`) and its one bundle layer. `None` when it is something else.
    pub(super) async fn bundle(
        &self,
        image: &ImageRef,
        digest: &Digest,
        referrer: &Descriptor,
        fetch: Fetch<'_>,
    ) -> Result<Option<BundleLayer>, RegistryError> {
        let manifest_digest =
            Digest::parse(&referrer.digest).map_err(|e| self.invalid(image, "referrer descriptor", e))?;
        if referrer.size > REFERRER_MANIFEST_BYTES as u64 {
            return Ok(None);
        }
        let path = format!("manifests/{manifest_digest}");
        let response = self.call("referrers", image, Method::GET, &path, Some(OCI_MANIFEST), fetch).await?;
        match response.status() {
            // Listed but gone (deleted since): nothing to read.
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {}
            s => return Err(Self::status_error(image, &path, "a referrer manifest", s)),
        }
        let (body, held) =
            self.read_capped(&image.registry, response, REFERRER_MANIFEST_BYTES, "a referrer manifest", fetch).await?;
        if Digest::of(&body) != manifest_digest {
            return Err(self.invalid(
                image,
                "referrer manifest",
                format!("its content does not match its digest {manifest_digest}"),
            ));
        }
        let parsed = serde_json::from_slice::<Manifest>(&body);
        // The manifest's bytes are not needed while its bundle is read.
        drop((body, held));
        let Ok(manifest) = parsed else { return Ok(None) };
        let Some(layer) = bundle_layer(&manifest, digest) else { return Ok(None) };
        match self.blob(image, layer, self.limits.attestation_bytes, "sigstore bundle", fetch).await {
            Ok((_, bytes)) => Ok(Some(BundleLayer { manifest: manifest_digest, bytes, too_large: None })),
            Err(e @ RegistryError::TooLarge { .. }) => {
                Ok(Some(BundleLayer { manifest: manifest_digest, bytes: Vec::new(), too_large: Some(e.to_string()) }))
            }
            Err(e) => Err(e),
        }
    }
}

/// The referrer descriptors that may be sigstore bundles. Descriptors are hints: image
/// manifests that say they are bundles are kept, and those that say nothing better (lax
/// registries report the empty config type); the manifest decides.
pub(super) fn bundle_candidates(referrers: &[Descriptor]) -> Vec<&Descriptor> {
    referrers
        .iter()
        .filter(|d| d.media_type == OCI_MANIFEST)
        .filter(|d| d.artifact_type.as_deref().is_none_or(|t| is_bundle_type(t) || t == OCI_EMPTY))
        .collect()
}

/// The one bundle layer of a referrer manifest of `digest`. A referrers list (or a fallback tag
/// anyone can push) may name anything: the manifest itself must say it refers to this image.
pub(super) fn bundle_layer<'m>(manifest: &'m Manifest, digest: &Digest) -> Option<&'m Descriptor> {
    if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(digest.as_str()) {
        return None;
    }
    let layers: Vec<&Descriptor> = manifest.layers.iter().filter(|l| is_bundle_type(&l.media_type)).collect();
    let is_bundle = manifest.artifact_type.as_deref().is_some_and(is_bundle_type) || !layers.is_empty();
    match layers.as_slice() {
        [layer] if is_bundle => Some(layer),
        _ => None,
    }
}
