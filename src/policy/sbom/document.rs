//! Reading the two SBOM formats: CycloneDX 1.x and SPDX 2.x JSON, borrowed from the verified
//! predicate, each package handed to the [`Evaluator`] as it is read.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{Evaluator, License, Package};

/// A borrowed JSON string; its type error says "expected a string".
#[derive(Clone, Copy)]
pub(super) struct Text<'a>(&'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(v))
            }
        }
        d.deserialize_str(V)
    }
}

pub(super) fn text(t: Option<Text<'_>>) -> Option<&str> {
    t.map(|t| t.0)
}

/// One CycloneDX component, without its nested `components` (walked separately, with an
/// explicit stack, so no nesting depth overflows ours).
#[derive(Deserialize)]
#[serde(expecting = "a component object")]
pub(super) struct CdxComponent<'a> {
    #[serde(rename = "type", borrow, default)]
    pub(super) kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) name: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) version: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) purl: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) licenses: Option<Vec<CdxLicenseChoice<'a>>>,
    /// Nested components, when the fast reader has seen them.
    #[serde(skip)]
    pub(super) children: Option<&'a [Value]>,
}

#[derive(Deserialize)]
pub(super) struct CdxLicenseChoice<'a> {
    #[serde(borrow, default)]
    pub(super) license: Option<CdxLicense<'a>>,
    #[serde(borrow, default)]
    pub(super) expression: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) acknowledgement: Option<Text<'a>>,
}

#[derive(Deserialize)]
pub(super) struct CdxLicense<'a> {
    #[serde(borrow, default)]
    pub(super) id: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) name: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) acknowledgement: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a metadata object")]
pub(super) struct CdxMetadata<'a> {
    #[serde(borrow, default)]
    pub(super) timestamp: Option<Text<'a>>,
}

/// Deserializes one part of the document; on error, deserializes it again to name the path.
pub(super) fn part<'a, T: Deserialize<'a>>(value: &'a Value, at: impl FnOnce() -> String) -> Result<T, String> {
    let first = match T::deserialize(value) {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    let Err(e) = serde_path_to_error::deserialize::<_, T>(value) else { return Err(first.to_string()) };
    let inner = e.path().to_string();
    let at = at();
    Err(match (at.is_empty(), inner == ".") {
        (true, true) => e.inner().to_string(),
        (true, false) => format!("{inner}: {}", e.inner()),
        (false, true) => format!("{at}: {}", e.inner()),
        (false, false) => format!("{at}.{inner}: {}", e.inner()),
    })
}

// Fast readers: the serde types above define the shape and word the errors, but walking a
// `Value` through serde (or looking fields up one by one, a string comparison per key of the
// map's path) costs several times more than one pass over an object's entries. A reader
// returns `None` where serde might object, and the caller then asks serde, which also names
// the path.

/// A string: `Some(None)` for null, `None` when not a string.
pub(super) fn read_text(v: &Value) -> Option<Option<Text<'_>>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(Text(s))),
        _ => None,
    }
}

/// An array of `T`: `Some(None)` for null, `None` when not an array or an element is not a `T`.
pub(super) fn read_list<'a, T>(v: &'a Value, read: impl Fn(&'a Value) -> Option<T>) -> Option<Option<Vec<T>>> {
    match v {
        Value::Null => Some(None),
        Value::Array(a) => a.iter().map(read).collect::<Option<Vec<T>>>().map(Some),
        _ => None,
    }
}

impl<'a> CdxComponent<'a> {
    pub(super) fn read(v: &'a Value) -> Option<Self> {
        let mut c = CdxComponent { kind: None, name: None, version: None, purl: None, licenses: None, children: None };
        for (key, v) in v.as_object()? {
            match key.as_str() {
                "type" => c.kind = read_text(v)?,
                "name" => c.name = read_text(v)?,
                "version" => c.version = read_text(v)?,
                "purl" => c.purl = read_text(v)?,
                "licenses" => c.licenses = read_list(v, CdxLicenseChoice::read)?,
                "components" => match v {
                    Value::Null => {}
                    Value::Array(a) => c.children = Some(a),
                    _ => return None,
                },
                _ => {}
            }
        }
        Some(c)
    }
}

impl<'a> CdxLicenseChoice<'a> {
    pub(super) fn read(v: &'a Value) -> Option<Self> {
        let mut c = CdxLicenseChoice { license: None, expression: None, acknowledgement: None };
        for (key, v) in v.as_object()? {
            match key.as_str() {
                "license" if v.is_null() => {}
                "license" => {
                    let mut l = CdxLicense { id: None, name: None, acknowledgement: None };
                    for (key, v) in v.as_object()? {
                        match key.as_str() {
                            "id" => l.id = read_text(v)?,
                            "name" => l.name = read_text(v)?,
                            "acknowledgement" => l.acknowledgement = read_text(v)?,
                            _ => {}
                        }
                    }
                    c.license = Some(l);
                }
                "expression" => c.expression = read_text(v)?,
                "acknowledgement" => c.acknowledgement = read_text(v)?,
                _ => {}
            }
        }
        Some(c)
    }
}

impl<'a> SpdxPackage<'a> {
    pub(super) fn read(v: &'a Value) -> Option<Self> {
        let mut p = SpdxPackage {
            spdx_id: None,
            name: None,
            version_info: None,
            license_concluded: None,
            license_declared: None,
            primary_package_purpose: None,
            external_refs: None,
        };
        for (key, v) in v.as_object()? {
            match key.as_str() {
                "SPDXID" => p.spdx_id = read_text(v)?,
                "name" => p.name = read_text(v)?,
                "versionInfo" => p.version_info = read_text(v)?,
                "licenseConcluded" => p.license_concluded = read_text(v)?,
                "licenseDeclared" => p.license_declared = read_text(v)?,
                "primaryPackagePurpose" => p.primary_package_purpose = read_text(v)?,
                "externalRefs" => {
                    p.external_refs = read_list(v, |r| {
                        let mut e = SpdxExternalRef { reference_type: None, reference_locator: None };
                        for (key, v) in r.as_object()? {
                            match key.as_str() {
                                "referenceType" => e.reference_type = read_text(v)?,
                                "referenceLocator" => e.reference_locator = read_text(v)?,
                                _ => {}
                            }
                        }
                        Some(e)
                    })?
                }
                _ => {}
            }
        }
        Some(p)
    }
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a CycloneDX document; returns its creation time.
pub(super) fn cyclonedx<'a>(doc: &'a Value, ev: &mut Evaluator<'_, 'a>) -> Result<Option<&'a str>, String> {
    let Some(top) = doc.as_object() else {
        return Err(format!("expected a JSON object, found {}", kind_of(doc)));
    };
    match top.get("bomFormat") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "CycloneDX" => {}
        Some(other) => return Err(format!("bomFormat is {other}, not \"CycloneDX\"")),
    }
    let mut created = None;
    // Where each component sits, for error messages: (parent, index); the parent of a
    // top-level component is `usize::MAX`, of the subject's children `usize::MAX - 1`.
    let mut positions: Vec<(usize, usize)> = Vec::new();
    let path = |positions: &[(usize, usize)], mut at: usize| {
        let mut parts = Vec::new();
        while let Some(&(parent, index)) = positions.get(at) {
            parts.push(format!("components[{index}]"));
            match parent {
                usize::MAX => break,
                p if p == usize::MAX - 1 => {
                    parts.push("metadata.component".into());
                    break;
                }
                p => at = p,
            }
        }
        parts.reverse();
        parts.join(".")
    };
    let mut stack: Vec<(&'a Value, usize)> = Vec::new();
    let children = |v: &'a Value, at: &dyn Fn() -> String| -> Result<&'a [Value], String> {
        match v.get("components") {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(format!("{}: expected an array, found {}", at(), kind_of(other))),
        }
    };
    pub(super) fn push_children<'a>(
        stack: &mut Vec<(&'a Value, usize)>,
        positions: &mut Vec<(usize, usize)>,
        list: &'a [Value],
        parent: usize,
    ) {
        // Reversed, so that components are visited (and findings reported) in document order.
        for (i, c) in list.iter().enumerate().rev() {
            positions.push((parent, i));
            stack.push((c, positions.len() - 1));
        }
    }

    if let Some(metadata) = top.get("metadata").filter(|m| !m.is_null()) {
        let m: CdxMetadata = part(metadata, || "metadata".into())?;
        created = text(m.timestamp);
        if let Some(subject) = metadata.get("component").filter(|c| !c.is_null()) {
            let c = match CdxComponent::read(subject) {
                Some(c) => c,
                None => part(subject, || "metadata.component".into())?,
            };
            let purls = c.purl.map(|p| p.0);
            ev.package(Package {
                purls: purls.as_slice(),
                name: text(c.name),
                version: text(c.version),
                license: None,
            });
            let list = children(subject, &|| "metadata.component.components".into())?;
            push_children(&mut stack, &mut positions, list, usize::MAX - 1);
        }
    }
    let top_list = children(doc, &|| "components".into())?;
    push_children(&mut stack, &mut positions, top_list, usize::MAX);

    while let Some((value, at)) = stack.pop() {
        let c = match CdxComponent::read(value) {
            Some(c) => c,
            None => part(value, || path(&positions, at))?,
        };
        let is_package = !matches!(text(c.kind), Some("file" | "operating-system"));
        let purls = c.purl.map(|p| p.0);
        let license = if is_package { Some(License::CycloneDx(c.licenses.as_deref().unwrap_or(&[]))) } else { None };
        ev.package(Package { purls: purls.as_slice(), name: text(c.name), version: text(c.version), license });
        let list = match c.children {
            Some(list) => list,
            None => children(value, &|| format!("{}.components", path(&positions, at)))?,
        };
        push_children(&mut stack, &mut positions, list, at);
    }
    Ok(created)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", expecting = "an SPDX document object")]
pub(super) struct SpdxDocument<'a> {
    #[serde(borrow, default)]
    pub(super) spdx_version: Option<Text<'a>>,
    #[serde(rename = "SPDXID", borrow, default)]
    pub(super) spdx_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) creation_info: Option<SpdxCreationInfo<'a>>,
    #[serde(borrow, default)]
    pub(super) document_describes: Option<Vec<Text<'a>>>,
    // `packages` and `relationships` are walked one by one (see `spdx`).
}

#[derive(Deserialize)]
pub(super) struct SpdxCreationInfo<'a> {
    #[serde(borrow, default)]
    pub(super) created: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SpdxPackage<'a> {
    #[serde(rename = "SPDXID", borrow, default)]
    pub(super) spdx_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) name: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) version_info: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) license_concluded: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) license_declared: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) primary_package_purpose: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) external_refs: Option<Vec<SpdxExternalRef<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SpdxExternalRef<'a> {
    #[serde(borrow, default)]
    pub(super) reference_type: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) reference_locator: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SpdxRelationship<'a> {
    #[serde(borrow, default)]
    pub(super) spdx_element_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) related_spdx_element: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub(super) relationship_type: Option<Text<'a>>,
}

/// `NOASSERTION`, `NONE` and blanks say nothing about a license.
pub(super) fn spdx_license(value: Option<Text<'_>>) -> Option<&str> {
    text(value).map(str::trim).filter(|v| !v.is_empty() && *v != "NOASSERTION" && *v != "NONE")
}

/// Reads an SPDX 2 document; returns its creation time.
pub(super) fn spdx<'a>(doc: &'a Value, ev: &mut Evaluator<'_, 'a>) -> Result<Option<&'a str>, String> {
    if doc.get("@context").is_some() || doc.get("@graph").is_some() {
        return Err("it is SPDX 3 (JSON-LD); trustgate reads SPDX 2.x JSON".into());
    }
    let d: SpdxDocument = part(doc, String::new)?;
    let array = |key: &str| match doc.get(key) {
        None | Some(Value::Null) => Ok(&[][..]),
        Some(Value::Array(a)) => Ok(&a[..]),
        Some(other) => Err(format!("{key}: expected an array, found {}", kind_of(other))),
    };
    let (packages, relationships) = (array("packages")?, array("relationships")?);
    if let Some(v) = text(d.spdx_version).filter(|v| !v.starts_with("SPDX-2.")) {
        return Err(format!("spdxVersion is {v:?}; trustgate reads SPDX 2.x JSON"));
    }
    let document_id = text(d.spdx_id).unwrap_or("SPDXRef-DOCUMENT");
    let mut subjects: HashSet<&str> = d.document_describes.iter().flatten().map(|t| t.0).collect();
    for (i, r) in relationships.iter().enumerate() {
        // Only what the document describes is read: other relationships (thousands in an image
        // SBOM) are skipped at their type.
        let kind = r.as_object().and_then(|o| o.iter().find(|(k, _)| *k == "relationshipType"));
        if let Some((_, Value::String(t))) = kind {
            if t != "DESCRIBES" && t != "DESCRIBED_BY" {
                continue;
            }
        }
        let r: SpdxRelationship = part(r, || format!("relationships[{i}]"))?;
        match (text(r.spdx_element_id), text(r.relationship_type), text(r.related_spdx_element)) {
            (Some(doc), Some("DESCRIBES"), Some(subject)) if doc == document_id => subjects.insert(subject),
            (Some(subject), Some("DESCRIBED_BY"), Some(doc)) if doc == document_id => subjects.insert(subject),
            _ => false,
        };
    }
    let mut purls = Vec::new();
    for (i, p) in packages.iter().enumerate() {
        let p = match SpdxPackage::read(p) {
            Some(p) => p,
            None => part(p, || format!("packages[{i}]"))?,
        };
        purls.clear();
        purls.extend(p.external_refs.iter().flatten().filter_map(|r| match text(r.reference_type) {
            Some("purl") => text(r.reference_locator),
            _ => None,
        }));
        let is_subject = text(p.spdx_id).is_some_and(|id| subjects.contains(id));
        let is_package = !is_subject
            && !matches!(text(p.primary_package_purpose), Some("FILE" | "OPERATING-SYSTEM" | "OPERATING_SYSTEM"));
        let license =
            is_package.then(|| License::Spdx(spdx_license(p.license_concluded).or(spdx_license(p.license_declared))));
        ev.package(Package { purls: &purls, name: text(p.name), version: text(p.version_info), license });
    }
    Ok(d.creation_info.and_then(|c| text(c.created)))
}

// ---------------------------------------------------------------------------------------------
// The rule, applied package by package.
