//! Policy globs and the image names they are matched against (the first line is the glob,
//! the rest the name): compiled once, matched in linear time, and matching exactly what a
//! plain dynamic-programming matcher over the normalised glob says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trustgate::policy::Glob;

/// `*` any run without `/`, `**` any run at all, everything else itself: O(glob × name).
fn reference(glob: &str, name: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum T {
        Byte(u8),
        Star,
        DoubleStar,
    }
    let g = glob.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < g.len() {
        if g[i] == b'*' && g.get(i + 1) == Some(&b'*') {
            tokens.push(T::DoubleStar);
            i += 2;
        } else if g[i] == b'*' {
            tokens.push(T::Star);
            i += 1;
        } else {
            tokens.push(T::Byte(g[i]));
            i += 1;
        }
    }
    let s = name.as_bytes();
    // can[j]: tokens[..t] match s[..j]
    let mut can = vec![false; s.len() + 1];
    can[0] = true;
    for t in tokens {
        let mut next = vec![false; s.len() + 1];
        for j in 0..=s.len() {
            match t {
                T::Byte(b) => next[j] = j > 0 && can[j - 1] && s[j - 1] == b,
                T::Star => next[j] = can[j] || (j > 0 && next[j - 1] && s[j - 1] != b'/'),
                T::DoubleStar => next[j] = can[j] || (j > 0 && next[j - 1]),
            }
        }
        can = next;
    }
    can[s.len()]
}

fuzz_target!(|text: &str| {
    let (glob, name) = text.split_once('\n').unwrap_or((text, "registry.acme.io/apps/api"));
    if let Ok(g) = Glob::new(glob) {
        assert_eq!(g.matches(name), reference(g.as_str(), name), "{:?} against {name:?}", g.as_str());
        assert!(g.matches(g.as_str()) || g.as_str().contains('*'));
    }
});
