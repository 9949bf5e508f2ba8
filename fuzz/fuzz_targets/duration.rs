//! Durations: the API server's `?timeout=`, flags, `sbom.maxAge`. Checked arithmetic: an
//! error or a duration no longer than the limit, and the limit is respected.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use trustgate::duration;

fuzz_target!(|text: &str| {
    if let Ok(d) = duration::parse(text) {
        assert!(d <= duration::MAX);
        let _ = duration::format(d);
    }
    if let Ok(d) = duration::parse_at_most(text, Duration::from_secs(30)) {
        assert!(d <= Duration::from_secs(30));
    }
});
