//! Registry authentication input: `WWW-Authenticate` challenges (the first line) and a pull
//! secret's docker config (the rest), both chosen by whoever runs the registry or writes the
//! Secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustgate::evidence::{parse_challenge, Challenge, Credentials};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (header, config) = data.split_at(split);
    if let Some(Challenge::Bearer { realm, .. }) = parse_challenge(&String::from_utf8_lossy(header)) {
        assert!(!realm.is_empty() || header.windows(5).any(|w| w.eq_ignore_ascii_case(b"realm")));
    }
    for key in [".dockerconfigjson", ".dockercfg"] {
        if let Ok(credentials) = Credentials::from_pull_secret(key, config) {
            let _ = credentials.for_host("registry.acme.io");
            let _ = format!("{credentials:?}");
        }
    }
});
