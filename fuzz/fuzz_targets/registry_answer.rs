//! What a registry answers: a manifest, an index, a referrers list or a token response (the
//! body: the input after its first line), and a referrers `Link` header (the first line).
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use trustgate::evidence::{RegistryClient, RegistryConfig};
use trustgate::images::{Digest, ImageRef};
use trustgate::metrics::Metrics;

fn client() -> &'static (RegistryClient, ImageRef) {
    static CLIENT: OnceLock<(RegistryClient, ImageRef)> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let client = RegistryClient::new(RegistryConfig::default(), Arc::new(Metrics::default())).expect("client");
        (client, ImageRef::parse("registry.acme.io/apps/api:v1").expect("a reference"))
    })
}

fuzz_target!(|data: &[u8]| {
    let (client, image) = client();
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(0);
    let (link, body) = data.split_at(split);
    let link = String::from_utf8_lossy(link);
    let digest = Digest::of(b"the image");
    let _ = client.read_answer_offline(image, &digest, body, &link);
});
