//! Package URLs: denied-package patterns and the parts of an SBOM's purls they are matched on.

use std::borrow::Cow;

/// A denied package URL, compiled.
pub(super) struct PackagePattern {
    /// `type/namespace/name`, normalised like the SBOM's purls.
    pub(super) path: String,
    /// A glob over the version; `None` matches any.
    pub(super) version: Option<String>,
}

impl PackagePattern {
    pub(super) fn parse(pattern: &str) -> Result<Self, &'static str> {
        let purl = Purl::parse(pattern)?;
        if purl.has_qualifiers_or_subpath {
            return Err("qualifiers (?…) and subpaths (#…) are not matched; remove them");
        }
        if purl.path.contains('*') {
            return Err("'*' is allowed only in the version");
        }
        Ok(PackagePattern { path: purl.path.into_owned(), version: purl.version.map(Cow::into_owned) })
    }
}

/// The parts of a package URL that identify a package version.
pub(super) struct Purl<'s> {
    pub(super) path: Cow<'s, str>,
    pub(super) version: Option<Cow<'s, str>>,
    pub(super) has_qualifiers_or_subpath: bool,
}

impl<'s> Purl<'s> {
    pub(super) fn parse(s: &'s str) -> Result<Self, &'static str> {
        let rest = match s.get(..4) {
            Some(scheme) if scheme.eq_ignore_ascii_case("pkg:") => {
                s.get(4..).unwrap_or_default().trim_start_matches('/')
            }
            _ => return Err("it must start with pkg:"),
        };
        let (rest, subpath) = rest.split_once('#').map_or((rest, false), |(r, _)| (r, true));
        let (rest, qualifiers) = rest.split_once('?').map_or((rest, false), |(r, _)| (r, true));
        let last_slash = rest.rfind('/').ok_or("it has no type/name")?;
        let (path, version) = match rest.rsplit_once('@') {
            Some((path, version)) if path.len() > last_slash => (path, Some(version)),
            _ => (rest, None),
        };
        let path = path.trim_end_matches('/');
        let (kind, name) = path.split_once('/').ok_or("it has no type/name")?;
        if kind.is_empty() || name.is_empty() || name.ends_with('/') {
            return Err("it has no type/name");
        }
        // The purl specification: the type is case-insensitive; PyPI names are case-insensitive
        // with '_' equal to '-'; GitHub and Bitbucket names are case-insensitive.
        let lower_name = kind.eq_ignore_ascii_case("pypi")
            || kind.eq_ignore_ascii_case("github")
            || kind.eq_ignore_ascii_case("bitbucket");
        let path = if kind.bytes().any(|b| b.is_ascii_uppercase()) || lower_name || name.contains('%') {
            let mut p = kind.to_ascii_lowercase();
            p.push('/');
            let name = percent_decode(name);
            if lower_name {
                p.push_str(&name.to_lowercase());
                if kind.eq_ignore_ascii_case("pypi") {
                    p = p.replace('_', "-");
                }
            } else {
                p.push_str(&name);
            }
            Cow::Owned(p)
        } else {
            Cow::Borrowed(path)
        };
        Ok(Purl { path, version: version.map(percent_decode), has_qualifiers_or_subpath: subpath || qualifiers })
    }
}

pub(super) fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&byte) = b.get(i) {
        let hex = |c: u8| (c as char).to_digit(16);
        match (byte, b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}
