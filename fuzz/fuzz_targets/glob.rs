//! Policy globs and the image names they are matched against (the first line is the glob,
//! the rest the name): compiled once, matched in linear time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustgate::policy::Glob;

fuzz_target!(|text: &str| {
    let (glob, name) = text.split_once('\n').unwrap_or((text, "registry.acme.io/apps/api"));
    if let Ok(g) = Glob::new(glob) {
        let _ = g.matches(name);
        let _ = g.matches(g.as_str());
    }
});
