//! Image references as a workload names them: parsing and normalisation, and the canonical
//! host, which must be idempotent (a canonical name parses to itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustgate::images::{canonical_host, ImageRef};

fuzz_target!(|text: &str| {
    if let Ok(image) = ImageRef::parse(text) {
        let again = ImageRef::parse(&image.to_string()).expect("a normalised reference parses");
        assert_eq!(again, image, "{text:?}");
        assert_eq!(canonical_host(&image.registry).as_deref(), Ok(image.registry.as_str()));
        let _ = image.repository_name();
    }
    if let Ok(host) = canonical_host(text) {
        assert_eq!(canonical_host(&host).as_deref(), Ok(host.as_str()), "{text:?}");
    }
});
