//! SBOMs (CycloneDX 1.4–1.6 JSON, SPDX 2.3 JSON): reading a verified predicate and checking it
//! against a policy's rule.
//!
//! Pure: the caller has already verified the attestation's signature, bound its statement to the
//! image digest and capped its size, and hands over the statement's `predicateType` and
//! `predicate`. Start at [`evaluate`]; it returns every [`SbomFinding`] at once (capped at
//! [`MAX_FINDINGS`]), so a developer fixes an SBOM in one round.
//!
//! What is read, and nothing more (unknown fields are ignored):
//!
//! | fact          | CycloneDX                                             | SPDX 2.3                                                  |
//! |---------------|-------------------------------------------------------|-----------------------------------------------------------|
//! | creation time | `metadata.timestamp`                                  | `creationInfo.created`                                    |
//! | packages      | `components[]`, nested `components` at any depth      | `packages[]`                                              |
//! | package URL   | `purl`                                                | `externalRefs[]` of `referenceType: purl`                 |
//! | license       | `licenses[]`: `license.id`, `license.name`, `expression`; several entries all apply (AND); `acknowledgement: concluded` entries win when present | `licenseConcluded`, else `licenseDeclared`; `NOASSERTION`, `NONE` and empty mean "no information" |
//! | the subject   | `metadata.component`                                  | what the document `DESCRIBES`                             |
//!
//! The subject of the SBOM (the scanned image or directory), files (`type: file`, purpose
//! `FILE`) and operating systems are not packages: they are matched against denied packages but
//! are neither counted nor held to the license lists (syft writes them without licenses).
//!
//! Licenses are SPDX expressions evaluated for a choice: an expression passes when some way of
//! satisfying it (one side of each `OR`, both sides of each `AND`) uses only licenses that are
//! not denied and, when an allow-list is set, allowed. `WITH` exceptions are ignored (the license
//! is the part before `WITH`); ids compare case-insensitively, and the GNU version variants of
//! one license compare equal (`GPL-2.0`, `GPL-2.0-only`, `GPL-2.0+`, `GPL-2.0-or-later`). A
//! license text that is not an SPDX expression (syft copies `Apache 2.0` verbatim) is one
//! license named by the whole text, and is denied when any word of it is a denied id.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::glob::star_match;
use super::predicate::{PredicateType, CYCLONEDX, SPDX};

/// At most this many findings are reported, followed by one [`SbomFinding::More`].
pub const MAX_FINDINGS: usize = 20;
/// Deeper parentheses than this make a license text "not an SPDX expression".
const MAX_EXPRESSION_DEPTH: usize = 64;

/// What a policy requires of an SBOM (the caller converts the CRD type into this).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SbomRule {
    /// SPDX license ids no package may need, e.g. `AGPL-3.0-only`.
    pub denied_licenses: Vec<String>,
    /// When non-empty, the only licenses a package may need; a package without license
    /// information then fails.
    pub allowed_licenses: Vec<String>,
    /// Package URLs no package may have: `*` globs the version (`pkg:npm/lodash@4.17.*`); a
    /// pattern without `@version` matches every version.
    pub denied_packages: Vec<String>,
    /// The oldest an SBOM may be, from its own creation time.
    pub max_age: Option<Duration>,
}

/// A rule that cannot be applied as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SbomRuleError {
    #[error("denied package {pattern:?} is not a package URL: {reason}")]
    PackagePattern { pattern: String, reason: &'static str },
    #[error("license list entry {0:?} is not a license id")]
    License(String),
}

impl SbomRule {
    /// Every problem of the rule, for the policy loader to report together. [`evaluate`] fails
    /// closed on an invalid rule: each problem is a finding.
    pub fn validate(&self) -> Result<(), Vec<SbomRuleError>> {
        let mut problems = Vec::new();
        for license in self.denied_licenses.iter().chain(&self.allowed_licenses) {
            // Names with spaces are fine (CycloneDX `license.name`, e.g. "Apache 2.0"); an
            // expression is not: list its ids one by one.
            let expression = license.contains(['(', ')'])
                || license
                    .split_whitespace()
                    .any(|w| ["AND", "OR", "WITH"].iter().any(|op| w.eq_ignore_ascii_case(op)));
            if license.trim().is_empty() || expression {
                problems.push(SbomRuleError::License(license.clone()));
            }
        }
        for pattern in &self.denied_packages {
            if let Err(reason) = PackagePattern::parse(pattern) {
                problems.push(SbomRuleError::PackagePattern { pattern: pattern.clone(), reason });
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Which SBOM format a predicate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SbomFormat {
    #[serde(rename = "CycloneDX")]
    CycloneDx,
    #[serde(rename = "SPDX")]
    Spdx,
}

impl SbomFormat {
    /// The format a statement's `predicateType` names, if it is an SBOM trustgate reads:
    /// `https://cyclonedx.org/bom[/v1.x]` or `https://spdx.dev/Document[/v2.x]`.
    pub fn from_predicate_type(predicate_type: &str) -> Option<Self> {
        match PredicateType::of_statement(predicate_type) {
            PredicateType::CycloneDx => Some(SbomFormat::CycloneDx),
            PredicateType::Spdx => Some(SbomFormat::Spdx),
            _ => None,
        }
    }
}

impl fmt::Display for SbomFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SbomFormat::CycloneDx => "CycloneDX",
            SbomFormat::Spdx => "SPDX",
        })
    }
}

/// What an SBOM that passed its rule holds, for `verify --output json` and the logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SbomSummary {
    pub format: SbomFormat,
    /// Packages, not counting the SBOM's subject, files and operating systems.
    pub components: usize,
    /// The creation time as the document writes it (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// Why an SBOM does not satisfy a rule. A value, not an error: its `Display` is the message a
/// developer reads. Packages are named by their package URL as the SBOM writes it, else by
/// `name@version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SbomFinding {
    /// The statement's `predicateType` is not CycloneDX or SPDX 2.
    UnsupportedPredicateType {
        predicate_type: String,
    },
    /// The predicate does not have the shape its `predicateType` promises.
    Malformed {
        format: SbomFormat,
        detail: String,
    },
    /// The policy's rule cannot be applied (see [`SbomRule::validate`]).
    InvalidRule(SbomRuleError),
    /// No packages at all: an SBOM of nothing proves nothing.
    NoPackages {
        format: SbomFormat,
    },
    TooOld {
        age: Duration,
        max_age: Duration,
    },
    NoCreationTime {
        max_age: Duration,
    },
    InvalidCreationTime {
        created: String,
        max_age: Duration,
    },
    DeniedPackage {
        format: SbomFormat,
        package: String,
        pattern: String,
    },
    /// Every way of satisfying the package's license needs one of `licenses`, and they are
    /// denied. `expression` is the whole license text when it is more than one id.
    DeniedLicense {
        format: SbomFormat,
        package: String,
        licenses: Vec<String>,
        expression: Option<String>,
    },
    /// Every way of satisfying the package's license needs one of `licenses`, and they are not
    /// in `allowed`.
    LicenseNotAllowed {
        format: SbomFormat,
        package: String,
        licenses: Vec<String>,
        expression: Option<String>,
        allowed: Vec<String>,
    },
    /// The package states no license, and the policy has an allow-list.
    NoLicense {
        format: SbomFormat,
        package: String,
        allowed: Vec<String>,
    },
    /// This many further findings were left out.
    More(usize),
}

impl SbomFinding {
    /// A stable, machine-readable name for the JSON output and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SbomFinding::UnsupportedPredicateType { .. } => "sbom-predicate-type",
            SbomFinding::Malformed { .. } => "sbom-malformed",
            SbomFinding::InvalidRule(_) => "sbom-invalid-rule",
            SbomFinding::NoPackages { .. } => "sbom-no-packages",
            SbomFinding::TooOld { .. } => "sbom-too-old",
            SbomFinding::NoCreationTime { .. } => "sbom-no-creation-time",
            SbomFinding::InvalidCreationTime { .. } => "sbom-invalid-creation-time",
            SbomFinding::DeniedPackage { .. } => "sbom-denied-package",
            SbomFinding::DeniedLicense { .. } => "sbom-denied-license",
            SbomFinding::LicenseNotAllowed { .. } => "sbom-license-not-allowed",
            SbomFinding::NoLicense { .. } => "sbom-no-license",
            SbomFinding::More(_) => "sbom-more-findings",
        }
    }
}

impl fmt::Display for SbomFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SbomFinding::UnsupportedPredicateType { predicate_type } => write!(
                f,
                "predicate type {predicate_type} is not an SBOM type trustgate reads \
                 ({CYCLONEDX}, {SPDX})"
            ),
            SbomFinding::Malformed { format: SbomFormat::CycloneDx, detail } => {
                write!(f, "SBOM predicate is not a CycloneDX document: {detail}")
            }
            SbomFinding::Malformed { format: SbomFormat::Spdx, detail } => {
                write!(f, "SBOM predicate is not an SPDX document: {detail}")
            }
            SbomFinding::InvalidRule(e) => write!(f, "policy SBOM rule cannot be applied: {e}"),
            SbomFinding::NoPackages { format } => write!(f, "SBOM ({format}) lists no packages"),
            SbomFinding::TooOld { age, max_age } => {
                let unit = Unit::of(*max_age);
                let age = unit.count_ceil(*age);
                write!(f, "SBOM is {age} {} old, policy allows {}", unit.name(age), unit.count_ceil(*max_age))
            }
            SbomFinding::NoCreationTime { max_age } => {
                write!(f, "SBOM has no creation time, policy allows {}", Unit::describe(*max_age))
            }
            SbomFinding::InvalidCreationTime { created, max_age } => write!(
                f,
                "SBOM creation time {created:?} is not an RFC 3339 time, policy allows {}",
                Unit::describe(*max_age)
            ),
            SbomFinding::DeniedPackage { format, package, pattern } => {
                write!(f, "SBOM ({format}) lists denied package {package} (matches {pattern})")
            }
            SbomFinding::DeniedLicense { format, package, licenses, expression } => {
                let s = if licenses.len() == 1 { "" } else { "s" };
                write!(f, "SBOM ({format}) denies license{s} {} in {package}", licenses.join(", "))?;
                write_expression(f, expression)
            }
            SbomFinding::LicenseNotAllowed { format, package, licenses, expression, allowed } => {
                let (s, verb) = if licenses.len() == 1 { ("", "is") } else { ("s", "are") };
                write!(
                    f,
                    "SBOM ({format}) license{s} {} of {package} {verb} not in the allowed list [{}]",
                    licenses.join(", "),
                    allowed.join(", ")
                )?;
                write_expression(f, expression)
            }
            SbomFinding::NoLicense { format, package, allowed } => write!(
                f,
                "SBOM ({format}) package {package} has no license information, policy allows only [{}]",
                allowed.join(", ")
            ),
            SbomFinding::More(n) => write!(f, "… and {n} more"),
        }
    }
}

fn write_expression(f: &mut fmt::Formatter<'_>, expression: &Option<String>) -> fmt::Result {
    match expression {
        Some(e) => write!(f, " (license expression: {e})"),
        None => Ok(()),
    }
}

/// The unit a `maxAge` is stated in: the largest that divides it.
#[derive(Clone, Copy)]
enum Unit {
    Days,
    Hours,
    Minutes,
    Seconds,
}

impl Unit {
    fn of(d: Duration) -> Unit {
        let s = d.as_secs();
        [Unit::Days, Unit::Hours, Unit::Minutes]
            .into_iter()
            .find(|u| s > 0 && s.is_multiple_of(u.secs()))
            .unwrap_or(Unit::Seconds)
    }

    fn secs(self) -> u64 {
        match self {
            Unit::Days => 86_400,
            Unit::Hours => 3_600,
            Unit::Minutes => 60,
            Unit::Seconds => 1,
        }
    }

    /// Whole units, rounded up: an SBOM 30 days and 2 hours old is "31 days old" next to a
    /// limit of 30.
    fn count_ceil(self, d: Duration) -> u64 {
        let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        s.div_ceil(self.secs())
    }

    fn name(self, n: u64) -> &'static str {
        match (self, n == 1) {
            (Unit::Days, true) => "day",
            (Unit::Days, false) => "days",
            (Unit::Hours, true) => "hour",
            (Unit::Hours, false) => "hours",
            (Unit::Minutes, true) => "minute",
            (Unit::Minutes, false) => "minutes",
            (Unit::Seconds, true) => "second",
            (Unit::Seconds, false) => "seconds",
        }
    }

    fn describe(d: Duration) -> String {
        let unit = Unit::of(d);
        let n = unit.count_ceil(d);
        format!("{n} {}", unit.name(n))
    }
}

/// Checks an SBOM predicate against a rule, as of `now`.
///
/// A predicate that is a JSON string holding the document (cosign `--type spdx` with a JSON
/// file) is read as that document.
pub fn evaluate(
    predicate_type: &str,
    predicate: &Value,
    rule: &SbomRule,
    now: SystemTime,
) -> Result<SbomSummary, Vec<SbomFinding>> {
    let Some(format) = SbomFormat::from_predicate_type(predicate_type) else {
        return Err(vec![SbomFinding::UnsupportedPredicateType { predicate_type: predicate_type.to_owned() }]);
    };
    let malformed = |detail: String| vec![SbomFinding::Malformed { format, detail }];
    let parsed;
    let document = match predicate {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(v) => {
                parsed = v;
                &parsed
            }
            Err(_) => {
                return Err(malformed(
                    "it is text, not JSON (tag-value SPDX and XML are not read; attest the JSON form, \
                     e.g. cosign attest --type spdxjson)"
                        .into(),
                ))
            }
        },
        v => v,
    };
    let mut ev = Evaluator::new(format, rule);
    let created = match format {
        SbomFormat::CycloneDx => cyclonedx(document, &mut ev),
        SbomFormat::Spdx => spdx(document, &mut ev),
    }
    .map_err(malformed)?;
    ev.finish(created, now)
}

// ---------------------------------------------------------------------------------------------
// The two formats: walk the document, hand each package to the evaluator.

/// A borrowed JSON string; its type error says "expected a string".
#[derive(Clone, Copy)]
struct Text<'a>(&'a str);

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

fn text(t: Option<Text<'_>>) -> Option<&str> {
    t.map(|t| t.0)
}

/// One CycloneDX component, without its nested `components` (walked separately, with an
/// explicit stack, so no nesting depth overflows ours).
#[derive(Deserialize)]
#[serde(expecting = "a component object")]
struct CdxComponent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    version: Option<Text<'a>>,
    #[serde(borrow, default)]
    purl: Option<Text<'a>>,
    #[serde(borrow, default)]
    licenses: Option<Vec<CdxLicenseChoice<'a>>>,
    /// Nested components, when the fast reader has seen them.
    #[serde(skip)]
    children: Option<&'a [Value]>,
}

#[derive(Deserialize)]
struct CdxLicenseChoice<'a> {
    #[serde(borrow, default)]
    license: Option<CdxLicense<'a>>,
    #[serde(borrow, default)]
    expression: Option<Text<'a>>,
    #[serde(borrow, default)]
    acknowledgement: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct CdxLicense<'a> {
    #[serde(borrow, default)]
    id: Option<Text<'a>>,
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    acknowledgement: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(expecting = "a metadata object")]
struct CdxMetadata<'a> {
    #[serde(borrow, default)]
    timestamp: Option<Text<'a>>,
}

/// Deserializes one part of the document; on error, deserializes it again to name the path.
fn part<'a, T: Deserialize<'a>>(value: &'a Value, at: impl FnOnce() -> String) -> Result<T, String> {
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
fn read_text(v: &Value) -> Option<Option<Text<'_>>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(Text(s))),
        _ => None,
    }
}

/// An array of `T`: `Some(None)` for null, `None` when not an array or an element is not a `T`.
fn read_list<'a, T>(v: &'a Value, read: impl Fn(&'a Value) -> Option<T>) -> Option<Option<Vec<T>>> {
    match v {
        Value::Null => Some(None),
        Value::Array(a) => a.iter().map(read).collect::<Option<Vec<T>>>().map(Some),
        _ => None,
    }
}

impl<'a> CdxComponent<'a> {
    fn read(v: &'a Value) -> Option<Self> {
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
    fn read(v: &'a Value) -> Option<Self> {
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
    fn read(v: &'a Value) -> Option<Self> {
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

fn kind_of(v: &Value) -> &'static str {
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
fn cyclonedx<'a>(doc: &'a Value, ev: &mut Evaluator<'_, 'a>) -> Result<Option<&'a str>, String> {
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
    fn push_children<'a>(
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
struct SpdxDocument<'a> {
    #[serde(borrow, default)]
    spdx_version: Option<Text<'a>>,
    #[serde(rename = "SPDXID", borrow, default)]
    spdx_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    creation_info: Option<SpdxCreationInfo<'a>>,
    #[serde(borrow, default)]
    document_describes: Option<Vec<Text<'a>>>,
    // `packages` and `relationships` are walked one by one (see `spdx`).
}

#[derive(Deserialize)]
struct SpdxCreationInfo<'a> {
    #[serde(borrow, default)]
    created: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage<'a> {
    #[serde(rename = "SPDXID", borrow, default)]
    spdx_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    version_info: Option<Text<'a>>,
    #[serde(borrow, default)]
    license_concluded: Option<Text<'a>>,
    #[serde(borrow, default)]
    license_declared: Option<Text<'a>>,
    #[serde(borrow, default)]
    primary_package_purpose: Option<Text<'a>>,
    #[serde(borrow, default)]
    external_refs: Option<Vec<SpdxExternalRef<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxExternalRef<'a> {
    #[serde(borrow, default)]
    reference_type: Option<Text<'a>>,
    #[serde(borrow, default)]
    reference_locator: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpdxRelationship<'a> {
    #[serde(borrow, default)]
    spdx_element_id: Option<Text<'a>>,
    #[serde(borrow, default)]
    related_spdx_element: Option<Text<'a>>,
    #[serde(borrow, default)]
    relationship_type: Option<Text<'a>>,
}

/// `NOASSERTION`, `NONE` and blanks say nothing about a license.
fn spdx_license(value: Option<Text<'_>>) -> Option<&str> {
    text(value).map(str::trim).filter(|v| !v.is_empty() && *v != "NOASSERTION" && *v != "NONE")
}

/// Reads an SPDX 2 document; returns its creation time.
fn spdx<'a>(doc: &'a Value, ev: &mut Evaluator<'_, 'a>) -> Result<Option<&'a str>, String> {
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

/// One package as both formats present it.
struct Package<'p, 'a> {
    purls: &'p [&'a str],
    name: Option<&'a str>,
    version: Option<&'a str>,
    /// `None` for what is not a package (not counted, licenses not checked).
    license: Option<License<'p, 'a>>,
}

enum License<'p, 'a> {
    CycloneDx(&'p [CdxLicenseChoice<'a>]),
    /// The expression, `None` when the package states none.
    Spdx(Option<&'a str>),
}

/// The licenses that make an expression fail; it passes when both are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Verdict<'a> {
    denied: Vec<&'a str>,
    not_allowed: Vec<&'a str>,
}

impl<'a> Verdict<'a> {
    fn passes(&self) -> bool {
        self.denied.is_empty() && self.not_allowed.is_empty()
    }

    /// Both must hold: every failing license counts.
    fn and(mut self, other: &Verdict<'a>) -> Self {
        for (into, from) in [(&mut self.denied, &other.denied), (&mut self.not_allowed, &other.not_allowed)] {
            for l in from {
                if !into.iter().any(|x| canonical(x) == canonical(l)) {
                    into.push(l);
                }
            }
        }
        self
    }

    /// Either may hold: passes when one does; otherwise every alternative's failures count.
    fn or(self, other: Verdict<'a>) -> Self {
        if self.passes() || other.passes() {
            Verdict::default()
        } else {
            self.and(&other)
        }
    }
}

/// How license ids compare: case-insensitively, with the GNU variants of one version equal.
fn canonical(id: &str) -> String {
    let mut s = id.trim().trim_end_matches('+').to_ascii_lowercase();
    for suffix in ["-or-later", "-only"] {
        if let Some(stripped) = s.strip_suffix(suffix) {
            s.truncate(stripped.len());
            break;
        }
    }
    s
}

/// A denied package URL, compiled.
struct PackagePattern {
    /// `type/namespace/name`, normalised like the SBOM's purls.
    path: String,
    /// A glob over the version; `None` matches any.
    version: Option<String>,
}

impl PackagePattern {
    fn parse(pattern: &str) -> Result<Self, &'static str> {
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
struct Purl<'s> {
    path: Cow<'s, str>,
    version: Option<Cow<'s, str>>,
    has_qualifiers_or_subpath: bool,
}

impl<'s> Purl<'s> {
    fn parse(s: &'s str) -> Result<Self, &'static str> {
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

fn percent_decode(s: &str) -> Cow<'_, str> {
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

struct Evaluator<'r, 'a> {
    format: SbomFormat,
    rule: &'r SbomRule,
    denied: HashSet<String>,
    allowed: HashSet<String>,
    patterns: HashMap<String, Vec<(Option<String>, &'r str)>>,
    /// Verdicts per distinct license text within this evaluation: an SBOM of 10,000 packages
    /// has a few dozen distinct licenses.
    expressions: HashMap<&'a str, Verdict<'a>>,
    names: HashMap<&'a str, Verdict<'a>>,
    packages: usize,
    rule_findings: Vec<SbomFinding>,
    findings: Vec<SbomFinding>,
    seen: HashSet<SbomFinding>,
}

impl<'r, 'a> Evaluator<'r, 'a> {
    fn new(format: SbomFormat, rule: &'r SbomRule) -> Self {
        let mut patterns: HashMap<String, Vec<(Option<String>, &'r str)>> = HashMap::new();
        let mut rule_findings = Vec::new();
        if let Err(problems) = rule.validate() {
            rule_findings.extend(problems.into_iter().map(SbomFinding::InvalidRule));
        }
        for source in &rule.denied_packages {
            if let Ok(p) = PackagePattern::parse(source) {
                patterns.entry(p.path).or_default().push((p.version, source));
            }
        }
        Evaluator {
            format,
            rule,
            denied: rule.denied_licenses.iter().map(|l| canonical(l)).collect(),
            allowed: rule.allowed_licenses.iter().map(|l| canonical(l)).collect(),
            patterns,
            expressions: HashMap::new(),
            names: HashMap::new(),
            packages: 0,
            rule_findings,
            findings: Vec::new(),
            seen: HashSet::new(),
        }
    }

    fn report(&mut self, finding: SbomFinding) {
        if !self.seen.contains(&finding) {
            self.seen.insert(finding.clone());
            self.findings.push(finding);
        }
    }

    /// One license id (or a license's name, as CycloneDX allows).
    fn leaf(&self, id: &'a str) -> Verdict<'a> {
        let key = canonical(id);
        if self.denied.contains(&key) {
            Verdict { denied: vec![id], not_allowed: vec![] }
        } else if !self.allowed.is_empty() && !self.allowed.contains(&key) {
            Verdict { denied: vec![], not_allowed: vec![id] }
        } else {
            Verdict::default()
        }
    }

    /// A license text that is not an SPDX expression: one license, denied when any word is.
    fn opaque(&self, text: &'a str) -> Verdict<'a> {
        let mut denied: Vec<&'a str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || ".-+:".contains(c)))
            .filter(|w| !w.is_empty() && self.denied.contains(&canonical(w)))
            .collect();
        denied.dedup();
        if !denied.is_empty() {
            return Verdict { denied, not_allowed: vec![] };
        }
        self.leaf(text.trim())
    }

    fn name_verdict(&mut self, name: &'a str) -> Verdict<'a> {
        if let Some(v) = self.names.get(name) {
            return v.clone();
        }
        let v = self.leaf(name.trim());
        self.names.insert(name, v.clone());
        v
    }

    fn expression_verdict(&mut self, expression: &'a str) -> Verdict<'a> {
        if let Some(v) = self.expressions.get(expression) {
            return v.clone();
        }
        let v = match Expression::new(expression).and_then(|mut p| p.evaluate(self)) {
            Some(v) => v,
            None => self.opaque(expression),
        };
        self.expressions.insert(expression, v.clone());
        v
    }

    fn package(&mut self, p: Package<'_, 'a>) {
        let label = || match (p.purls.first(), p.name, p.version) {
            (Some(purl), _, _) => (*purl).to_owned(),
            (None, Some(name), Some(version)) => format!("{name}@{version}"),
            (None, Some(name), None) => name.to_owned(),
            (None, None, _) => "(unnamed)".to_owned(),
        };
        if !self.patterns.is_empty() {
            for &purl in p.purls {
                if let Some(pattern) = self.denied_by(purl) {
                    let finding = SbomFinding::DeniedPackage {
                        format: self.format,
                        package: purl.to_owned(),
                        pattern: pattern.into(),
                    };
                    self.report(finding);
                    break;
                }
            }
        }
        let Some(license) = p.license else { return };
        self.packages += 1;
        if self.denied.is_empty() && self.allowed.is_empty() {
            return;
        }
        let (verdict, expression): (Option<Verdict<'a>>, Box<dyn Fn() -> String + '_>) = match license {
            License::Spdx(None) => (None, Box::new(String::new)),
            License::Spdx(Some(e)) => (Some(self.expression_verdict(e)), Box::new(move || e.trim().to_owned())),
            License::CycloneDx(choices) => {
                // A concluded license, when the SBOM states one, is what the package is under.
                let concluded = |c: &CdxLicenseChoice<'_>| {
                    text(c.acknowledgement).or(c.license.as_ref().and_then(|l| text(l.acknowledgement)))
                        == Some("concluded")
                };
                let any_concluded = choices.iter().any(concluded);
                let mut verdict: Option<Verdict<'a>> = None;
                let mut parts: Vec<&'a str> = Vec::new();
                for c in choices.iter().filter(|c| !any_concluded || concluded(c)) {
                    let v = if let Some(e) = text(c.expression) {
                        parts.push(e);
                        self.expression_verdict(e)
                    } else if let Some(id) = c.license.as_ref().and_then(|l| text(l.id).or(text(l.name))) {
                        parts.push(id);
                        self.name_verdict(id)
                    } else {
                        continue;
                    };
                    verdict = Some(match verdict {
                        None => v,
                        Some(acc) => acc.and(&v),
                    });
                }
                let text = move || match parts.as_slice() {
                    [one] => one.trim().to_owned(),
                    many => many
                        .iter()
                        .map(|p| if p.contains(' ') { format!("({})", p.trim()) } else { p.trim().to_owned() })
                        .collect::<Vec<_>>()
                        .join(" AND "),
                };
                (verdict, Box::new(text))
            }
        };
        let format = self.format;
        let allowed = &self.rule.allowed_licenses;
        let mut found = Vec::new();
        match verdict {
            None if !allowed.is_empty() => {
                found.push(SbomFinding::NoLicense { format, package: label(), allowed: allowed.clone() })
            }
            None => {}
            Some(v) if v.passes() => {}
            Some(v) => {
                let whole = expression();
                let expression_of = |licenses: &[&str]| match licenses {
                    [one] if one.trim() == whole => None,
                    _ => Some(whole.clone()),
                };
                let owned = |l: &[&str]| l.iter().map(|s| s.trim().to_owned()).collect::<Vec<_>>();
                if !v.denied.is_empty() {
                    found.push(SbomFinding::DeniedLicense {
                        format,
                        package: label(),
                        licenses: owned(&v.denied),
                        expression: expression_of(&v.denied),
                    });
                }
                if !v.not_allowed.is_empty() {
                    found.push(SbomFinding::LicenseNotAllowed {
                        format,
                        package: label(),
                        licenses: owned(&v.not_allowed),
                        expression: expression_of(&v.not_allowed),
                        allowed: allowed.clone(),
                    });
                }
            }
        }
        for f in found {
            self.report(f);
        }
    }

    fn denied_by(&self, purl: &str) -> Option<&'r str> {
        let purl = Purl::parse(purl).ok()?;
        let candidates = self.patterns.get(purl.path.as_ref())?;
        let version = purl.version.as_deref().unwrap_or("");
        candidates.iter().find(|(glob, _)| glob.as_deref().is_none_or(|g| star_match(g, version))).map(|(_, s)| *s)
    }

    fn finish(self, created: Option<&str>, now: SystemTime) -> Result<SbomSummary, Vec<SbomFinding>> {
        let mut all = self.rule_findings;
        if self.packages == 0 {
            all.push(SbomFinding::NoPackages { format: self.format });
        }
        if let Some(max_age) = self.rule.max_age {
            match created.map(|c| (c, parse_rfc3339(c))) {
                None => all.push(SbomFinding::NoCreationTime { max_age }),
                Some((c, None)) => all.push(SbomFinding::InvalidCreationTime { created: c.to_owned(), max_age }),
                Some((_, Some(created))) => {
                    let now = match now.duration_since(UNIX_EPOCH) {
                        Ok(d) => d.as_secs() as i64,
                        Err(e) => -(e.duration().as_secs() as i64),
                    };
                    // An SBOM from the future (clock skew) is new, not invalid.
                    let age = Duration::from_secs(now.saturating_sub(created).max(0) as u64);
                    if age > max_age {
                        all.push(SbomFinding::TooOld { age, max_age });
                    }
                }
            }
        }
        all.extend(self.findings);
        if all.is_empty() {
            return Ok(SbomSummary {
                format: self.format,
                components: self.packages,
                created: created.map(str::to_owned),
            });
        }
        if all.len() > MAX_FINDINGS {
            let more = all.len() - MAX_FINDINGS;
            all.truncate(MAX_FINDINGS);
            all.push(SbomFinding::More(more));
        }
        Err(all)
    }
}

// ---------------------------------------------------------------------------------------------
// SPDX license expressions, evaluated as they are parsed.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    And,
    Or,
    With,
    Id(&'a str),
}

/// A recursive-descent evaluator over `or := and (OR and)*`, `and := with (AND with)*`,
/// `with := id [WITH id] | ( or )`. Operators are read in any case (npm writes `or`).
struct Expression<'a> {
    tokens: Vec<Token<'a>>,
    pos: usize,
    depth: usize,
}

impl<'a> Expression<'a> {
    /// Tokenises; `None` when the text holds characters no SPDX id has.
    fn new(text: &'a str) -> Option<Self> {
        let mut tokens = Vec::new();
        let mut rest = text;
        loop {
            rest = rest.trim_start();
            let Some(c) = rest.chars().next() else { break };
            match c {
                '(' => {
                    tokens.push(Token::Open);
                    rest = rest.strip_prefix('(').unwrap_or_default();
                }
                ')' => {
                    tokens.push(Token::Close);
                    rest = rest.strip_prefix(')').unwrap_or_default();
                }
                _ => {
                    let end = rest.find(|c: char| c.is_whitespace() || c == '(' || c == ')').unwrap_or(rest.len());
                    let (word, after) = rest.split_at_checked(end)?;
                    if !word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+:".contains(&b)) {
                        return None;
                    }
                    tokens.push(match word {
                        w if w.eq_ignore_ascii_case("AND") => Token::And,
                        w if w.eq_ignore_ascii_case("OR") => Token::Or,
                        w if w.eq_ignore_ascii_case("WITH") => Token::With,
                        w => Token::Id(w),
                    });
                    rest = after;
                }
            }
        }
        (!tokens.is_empty()).then_some(Expression { tokens, pos: 0, depth: 0 })
    }

    fn next(&mut self) -> Option<Token<'a>> {
        let t = self.tokens.get(self.pos).copied();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    /// The verdict of the whole text; `None` when it is not an SPDX expression.
    fn evaluate(&mut self, ev: &Evaluator<'_, 'a>) -> Option<Verdict<'a>> {
        let v = self.or(ev)?;
        (self.pos == self.tokens.len()).then_some(v)
    }

    fn or(&mut self, ev: &Evaluator<'_, 'a>) -> Option<Verdict<'a>> {
        let mut v = self.and(ev)?;
        while self.peek() == Some(Token::Or) {
            self.pos += 1;
            v = v.or(self.and(ev)?);
        }
        Some(v)
    }

    fn and(&mut self, ev: &Evaluator<'_, 'a>) -> Option<Verdict<'a>> {
        let mut v = self.with(ev)?;
        while self.peek() == Some(Token::And) {
            self.pos += 1;
            v = v.and(&self.with(ev)?);
        }
        Some(v)
    }

    fn with(&mut self, ev: &Evaluator<'_, 'a>) -> Option<Verdict<'a>> {
        match self.next()? {
            Token::Id(id) => {
                if self.peek() == Some(Token::With) {
                    self.pos += 1;
                    // The exception adds permissions; the license is what the lists judge.
                    let Token::Id(_) = self.next()? else { return None };
                }
                Some(ev.leaf(id))
            }
            Token::Open => {
                self.depth += 1;
                if self.depth > MAX_EXPRESSION_DEPTH {
                    return None;
                }
                let v = self.or(ev)?;
                self.depth -= 1;
                (self.next()? == Token::Close).then_some(v)
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 3339 times.

/// Seconds since the Unix epoch of an RFC 3339 date-time (`2024-05-01T12:00:00Z`, fractions and
/// offsets allowed); `None` when it is not one.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().all(u8::is_ascii_digit).then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b.get(i + 3) == Some(&b':') => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    const CDX: &str = "https://cyclonedx.org/bom";
    const SPDX: &str = "https://spdx.dev/Document";
    const DAY: u64 = 86_400;

    /// 2026-01-31T00:00:00Z.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_769_817_600)
    }

    fn deny(licenses: &[&str]) -> SbomRule {
        SbomRule { denied_licenses: licenses.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    fn allow(licenses: &[&str]) -> SbomRule {
        SbomRule { allowed_licenses: licenses.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    fn deny_packages(patterns: &[&str]) -> SbomRule {
        SbomRule { denied_packages: patterns.iter().map(|s| s.to_string()).collect(), ..Default::default() }
    }

    fn cdx(components: Value) -> Value {
        json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "metadata": { "timestamp": "2026-01-01T00:00:00Z", "component": { "type": "container", "name": "app" } },
            "components": components,
        })
    }

    fn cdx_expr(purl: &str, expression: &str) -> Value {
        json!({ "type": "library", "name": "x", "purl": purl, "licenses": [{ "expression": expression }] })
    }

    fn spdx(packages: Value) -> Value {
        json!({
            "spdxVersion": "SPDX-2.3",
            "SPDXID": "SPDXRef-DOCUMENT",
            "creationInfo": { "created": "2026-01-01T00:00:00Z", "creators": ["Tool: test"] },
            "packages": packages,
        })
    }

    fn spdx_pkg(purl: &str, concluded: &str, declared: &str) -> Value {
        json!({
            "SPDXID": format!("SPDXRef-{}", purl.replace([':', '/', '@'], "-")),
            "name": "x",
            "licenseConcluded": concluded,
            "licenseDeclared": declared,
            "externalRefs": [{ "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl }],
        })
    }

    fn messages(r: Result<SbomSummary, Vec<SbomFinding>>) -> Vec<String> {
        match r {
            Ok(_) => vec![],
            Err(f) => f.iter().map(ToString::to_string).collect(),
        }
    }

    /// The verdict of one SPDX license expression against a rule, as messages.
    fn expression(rule: &SbomRule, e: &str) -> Vec<String> {
        let doc = spdx(json!([spdx_pkg("pkg:pypi/foo@1.0", e, "NOASSERTION")]));
        messages(evaluate(SPDX, &doc, rule, now()))
    }

    #[test]
    fn message_denied_license_cyclonedx() {
        let doc = cdx(json!([{ "type": "library", "name": "left-pad", "version": "1.3.0",
            "purl": "pkg:npm/left-pad@1.3.0", "licenses": [{ "license": { "id": "AGPL-3.0-only" } }] }]));
        assert_eq!(
            messages(evaluate(CDX, &doc, &deny(&["AGPL-3.0-only"]), now())),
            ["SBOM (CycloneDX) denies license AGPL-3.0-only in pkg:npm/left-pad@1.3.0"]
        );
    }

    #[test]
    fn message_license_not_allowed_spdx() {
        assert_eq!(
            expression(&allow(&["MIT", "Apache-2.0"]), "GPL-3.0-only"),
            ["SBOM (SPDX) license GPL-3.0-only of pkg:pypi/foo@1.0 is not in the allowed list [MIT, Apache-2.0]"]
        );
    }

    #[test]
    fn message_denied_package() {
        let doc = cdx(json!([{ "type": "library", "name": "log4j-core", "version": "2.14.1",
            "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1" }]));
        let rule = deny_packages(&["pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*"]);
        assert_eq!(
            messages(evaluate(CDX, &doc, &rule, now())),
            ["SBOM (CycloneDX) lists denied package pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1 \
              (matches pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*)"]
        );
    }

    #[rstest]
    #[case::old("2025-12-17T00:00:00Z", 30, Some("SBOM is 45 days old, policy allows 30"))]
    #[case::a_little_over("2025-12-31T22:00:00Z", 30, Some("SBOM is 31 days old, policy allows 30"))]
    #[case::exactly_at_limit("2026-01-01T00:00:00Z", 30, None)]
    #[case::fresh("2026-01-30T12:00:00.123+02:00", 1, None)]
    #[case::offset_counts("2026-01-30T01:00:00+02:00", 1, Some("SBOM is 2 days old, policy allows 1"))]
    #[case::future_is_new("2026-03-01T00:00:00Z", 1, None)]
    fn max_age(#[case] created: &str, #[case] days: u64, #[case] want: Option<&str>) {
        let mut doc = spdx(json!([spdx_pkg("pkg:npm/a@1", "MIT", "MIT")]));
        doc["creationInfo"]["created"] = json!(created);
        let rule = SbomRule { max_age: Some(Duration::from_secs(days * DAY)), ..Default::default() };
        assert_eq!(messages(evaluate(SPDX, &doc, &rule, now())), want.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn max_age_without_or_with_a_bad_creation_time() {
        let rule = SbomRule { max_age: Some(Duration::from_secs(30 * DAY)), ..Default::default() };
        let mut doc = cdx(json!([{ "type": "library", "name": "a" }]));
        doc["metadata"].as_object_mut().unwrap().remove("timestamp");
        assert_eq!(messages(evaluate(CDX, &doc, &rule, now())), ["SBOM has no creation time, policy allows 30 days"]);
        doc["metadata"]["timestamp"] = json!("yesterday");
        assert_eq!(
            messages(evaluate(CDX, &doc, &rule, now())),
            ["SBOM creation time \"yesterday\" is not an RFC 3339 time, policy allows 30 days"]
        );
        // Without maxAge, the creation time is not needed.
        assert!(evaluate(CDX, &doc, &SbomRule::default(), now()).is_ok());
    }

    #[test]
    fn max_age_in_hours() {
        let rule = SbomRule { max_age: Some(Duration::from_secs(36 * 3600)), ..Default::default() };
        let doc = spdx(json!([spdx_pkg("pkg:npm/a@1", "MIT", "MIT")]));
        assert_eq!(messages(evaluate(SPDX, &doc, &rule, now())), ["SBOM is 720 hours old, policy allows 36"]);
    }

    #[test]
    fn empty_sboms() {
        assert_eq!(
            messages(evaluate(SPDX, &spdx(json!([])), &SbomRule::default(), now())),
            ["SBOM (SPDX) lists no packages"]
        );
        let mut doc = cdx(json!([]));
        doc.as_object_mut().unwrap().remove("components");
        // The subject alone is not a package.
        assert_eq!(messages(evaluate(CDX, &doc, &SbomRule::default(), now())), ["SBOM (CycloneDX) lists no packages"]);
        // Nor are files and operating systems.
        let doc =
            cdx(json!([{ "type": "file", "name": "/etc/passwd" }, { "type": "operating-system", "name": "debian" }]));
        assert_eq!(messages(evaluate(CDX, &doc, &SbomRule::default(), now())), ["SBOM (CycloneDX) lists no packages"]);
    }

    #[rstest]
    #[case::not_an_object(CDX, json!([1, 2]), "SBOM predicate is not a CycloneDX document: expected a JSON object, found an array")]
    #[case::wrong_bom_format(CDX, json!({"bomFormat": "SPDX"}), "SBOM predicate is not a CycloneDX document: bomFormat is \"SPDX\", not \"CycloneDX\"")]
    #[case::components_not_array(CDX, json!({"components": {"a": 1}}), "SBOM predicate is not a CycloneDX document: components: expected an array, found an object")]
    #[case::bad_purl_type(CDX, json!({"components": [{"name": "a"}, {"name": "b", "components": [{"purl": 7}]}]}),
        "SBOM predicate is not a CycloneDX document: components[1].components[0].purl: invalid type: integer `7`, expected a string")]
    #[case::bad_license(CDX, json!({"components": [{"licenses": [{"license": {"id": ["MIT"]}}]}]}),
        "SBOM predicate is not a CycloneDX document: components[0].licenses[0].license.id: invalid type: sequence, expected a string")]
    #[case::bad_timestamp_type(CDX, json!({"metadata": {"timestamp": 5}}),
        "SBOM predicate is not a CycloneDX document: metadata.timestamp: invalid type: integer `5`, expected a string")]
    #[case::spdx_not_object(SPDX, json!(true), "SBOM predicate is not an SPDX document: invalid type: boolean `true`, expected an SPDX document object")]
    #[case::spdx_packages(SPDX, json!({"packages": {}}), "SBOM predicate is not an SPDX document: packages: expected an array, found an object")]
    #[case::spdx_external_ref(SPDX, json!({"packages": [{"externalRefs": [{"referenceType": "purl", "referenceLocator": {}}]}]}),
        "SBOM predicate is not an SPDX document: packages[0].externalRefs[0].referenceLocator: invalid type: map, expected a string")]
    #[case::spdx_relationship(SPDX, json!({"relationships": [{"relationshipType": "CONTAINS", "spdxElementId": 1}, {"relationshipType": "DESCRIBES", "relatedSpdxElement": 2}]}),
        "SBOM predicate is not an SPDX document: relationships[1].relatedSpdxElement: invalid type: integer `2`, expected a string")]
    #[case::spdx_license(SPDX, json!({"packages": [{"name": "a"}, {"licenseDeclared": 1}]}),
        "SBOM predicate is not an SPDX document: packages[1].licenseDeclared: invalid type: integer `1`, expected a string")]
    #[case::spdx3(SPDX, json!({"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": []}),
        "SBOM predicate is not an SPDX document: it is SPDX 3 (JSON-LD); trustgate reads SPDX 2.x JSON")]
    #[case::spdx_version(SPDX, json!({"spdxVersion": "SPDX-1.2"}),
        "SBOM predicate is not an SPDX document: spdxVersion is \"SPDX-1.2\"; trustgate reads SPDX 2.x JSON")]
    #[case::tag_value(SPDX, json!("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0"),
        "SBOM predicate is not an SPDX document: it is text, not JSON (tag-value SPDX and XML are not read; attest the JSON form, e.g. cosign attest --type spdxjson)")]
    fn malformed(#[case] predicate_type: &str, #[case] predicate: Value, #[case] want: &str) {
        let rule = deny(&["GPL-3.0-only"]);
        assert_eq!(messages(evaluate(predicate_type, &predicate, &rule, now())), [want]);
    }

    #[rstest]
    #[case::cyclonedx("https://cyclonedx.org/bom", Some(SbomFormat::CycloneDx))]
    #[case::cyclonedx_v16("https://cyclonedx.org/bom/v1.6", Some(SbomFormat::CycloneDx))]
    #[case::cyclonedx_v1("https://cyclonedx.org/bom/v1", Some(SbomFormat::CycloneDx))]
    #[case::spdx("https://spdx.dev/Document", Some(SbomFormat::Spdx))]
    #[case::spdx_v23("https://spdx.dev/Document/v2.3", Some(SbomFormat::Spdx))]
    #[case::spdx_v3("https://spdx.dev/Document/v3.0", None)]
    #[case::cosign_short_name("cyclonedx", None)]
    #[case::suffix("https://cyclonedx.org/bomb", None)]
    #[case::slsa("https://slsa.dev/provenance/v1", None)]
    fn predicate_types(#[case] predicate_type: &str, #[case] want: Option<SbomFormat>) {
        assert_eq!(SbomFormat::from_predicate_type(predicate_type), want);
    }

    #[test]
    fn message_unsupported_predicate_type() {
        assert_eq!(
            messages(evaluate("https://slsa.dev/provenance/v1", &json!({}), &SbomRule::default(), now())),
            ["predicate type https://slsa.dev/provenance/v1 is not an SBOM type trustgate reads \
              (https://cyclonedx.org/bom, https://spdx.dev/Document)"]
        );
    }

    #[rstest]
    // OR: one acceptable choice is enough.
    #[case::or_deny_one(deny(&["GPL-3.0-only"]), "MIT OR GPL-3.0-only", None)]
    #[case::or_allow_one(allow(&["MIT"]), "MIT OR GPL-3.0-only", None)]
    #[case::or_deny_both(deny(&["GPL-3.0-only", "AGPL-3.0-only"]), "AGPL-3.0-only OR GPL-3.0-only",
        Some("SBOM (SPDX) denies licenses AGPL-3.0-only, GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: AGPL-3.0-only OR GPL-3.0-only)"))]
    // AND: every license counts.
    #[case::and_deny(deny(&["GPL-3.0-only"]), "MIT AND GPL-3.0-only",
        Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: MIT AND GPL-3.0-only)"))]
    #[case::and_allow(allow(&["MIT"]), "MIT AND GPL-3.0-only",
        Some("SBOM (SPDX) license GPL-3.0-only of pkg:pypi/foo@1.0 is not in the allowed list [MIT] (license expression: MIT AND GPL-3.0-only)"))]
    #[case::and_allow_both(allow(&["MIT", "GPL-3.0-only"]), "MIT AND GPL-3.0-only", None)]
    // AND binds tighter than OR.
    #[case::precedence_pass(deny(&["GPL-3.0-only"]), "GPL-3.0-only AND BSD-3-Clause OR MIT", None)]
    #[case::precedence_or_last(deny(&["BSD-3-Clause"]), "MIT OR GPL-3.0-only AND BSD-3-Clause", None)]
    #[case::precedence_fail(deny(&["MIT"]), "MIT AND BSD-3-Clause OR MIT AND ISC",
        Some("SBOM (SPDX) denies license MIT in pkg:pypi/foo@1.0 (license expression: MIT AND BSD-3-Clause OR MIT AND ISC)"))]
    #[case::precedence_allow(allow(&["MIT"]), "BSD-3-Clause AND GPL-3.0-only OR MIT", None)]
    #[case::parentheses(deny(&["GPL-3.0-only"]), "(MIT OR BSD-3-Clause) AND GPL-3.0-only",
        Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: (MIT OR BSD-3-Clause) AND GPL-3.0-only)"))]
    #[case::parentheses_rescue(deny(&["GPL-3.0-only"]), "MIT AND (BSD-3-Clause OR GPL-3.0-only)", None)]
    #[case::nested(allow(&["MIT", "Apache-2.0"]), "((MIT AND (Apache-2.0 OR GPL-2.0-only)) OR (AGPL-3.0-only))", None)]
    #[case::only_failing_side_reported(deny(&["GPL-3.0-only", "AGPL-3.0-only"]), "(MIT OR AGPL-3.0-only) AND GPL-3.0-only",
        Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: (MIT OR AGPL-3.0-only) AND GPL-3.0-only)"))]
    // WITH: the license is the part before WITH.
    #[case::with_deny(deny(&["GPL-2.0-only"]), "GPL-2.0-only WITH Classpath-exception-2.0",
        Some("SBOM (SPDX) denies license GPL-2.0-only in pkg:pypi/foo@1.0 (license expression: GPL-2.0-only WITH Classpath-exception-2.0)"))]
    #[case::with_allow(allow(&["GPL-2.0-only"]), "GPL-2.0-only WITH Classpath-exception-2.0", None)]
    #[case::with_or(deny(&["GPL-2.0-only"]), "GPL-2.0-only WITH Classpath-exception-2.0 OR MIT", None)]
    // Ids: case, '+', GNU variants, LicenseRefs.
    #[case::case_insensitive(deny(&["agpl-3.0-ONLY"]), "AGPL-3.0-only",
        Some("SBOM (SPDX) denies license AGPL-3.0-only in pkg:pypi/foo@1.0"))]
    #[case::plus(deny(&["GPL-2.0"]), "GPL-2.0+", Some("SBOM (SPDX) denies license GPL-2.0+ in pkg:pypi/foo@1.0"))]
    #[case::gnu_variants(deny(&["GPL-3.0-only"]), "GPL-3.0-or-later",
        Some("SBOM (SPDX) denies license GPL-3.0-or-later in pkg:pypi/foo@1.0"))]
    #[case::deprecated_gnu(allow(&["LGPL-2.1-only"]), "LGPL-2.1", None)]
    #[case::license_ref(allow(&["LicenseRef-Acme-Internal"]), "LicenseRef-acme-internal", None)]
    #[case::lowercase_operators(deny(&["GPL-3.0-only"]), "(mit or gpl-3.0-only)", None)]
    #[case::deny_wins_over_allow(SbomRule { denied_licenses: vec!["MIT".into()], allowed_licenses: vec!["MIT".into()], ..Default::default() },
        "MIT", Some("SBOM (SPDX) denies license MIT in pkg:pypi/foo@1.0"))]
    #[case::deny_and_not_allowed(SbomRule { denied_licenses: vec!["GPL-3.0-only".into()], allowed_licenses: vec!["MIT".into()], ..Default::default() },
        "GPL-3.0-only AND MIT", Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: GPL-3.0-only AND MIT)"))]
    // Not an SPDX expression: one license named by the whole text; denied words still deny.
    #[case::not_spdx_allow(allow(&["MIT"]), "Apache 2.0",
        Some("SBOM (SPDX) license Apache 2.0 of pkg:pypi/foo@1.0 is not in the allowed list [MIT]"))]
    #[case::not_spdx_deny(deny(&["GPL-3.0-only"]), "GPL-3.0-only / MIT",
        Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: GPL-3.0-only / MIT)"))]
    #[case::unbalanced(deny(&["GPL-3.0-only"]), "(MIT OR GPL-3.0-only", Some("SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: (MIT OR GPL-3.0-only)"))]
    #[case::dangling_operator(allow(&["MIT"]), "MIT OR", Some("SBOM (SPDX) license MIT OR of pkg:pypi/foo@1.0 is not in the allowed list [MIT]"))]
    fn license_expressions(#[case] rule: SbomRule, #[case] e: &str, #[case] want: Option<&str>) {
        assert_eq!(expression(&rule, e), want.into_iter().collect::<Vec<_>>(), "{e}");
    }

    #[test]
    fn denied_and_not_allowed_in_one_expression() {
        let rule = SbomRule {
            denied_licenses: vec!["GPL-3.0-only".into()],
            allowed_licenses: vec!["MIT".into()],
            ..Default::default()
        };
        assert_eq!(
            expression(&rule, "GPL-3.0-only AND Zlib AND MIT"),
            [
                "SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/foo@1.0 (license expression: GPL-3.0-only AND Zlib AND MIT)",
                "SBOM (SPDX) license Zlib of pkg:pypi/foo@1.0 is not in the allowed list [MIT] (license expression: GPL-3.0-only AND Zlib AND MIT)",
            ]
        );
        assert_eq!(
            expression(&allow(&["MIT"]), "Zlib AND ISC"),
            ["SBOM (SPDX) licenses Zlib, ISC of pkg:pypi/foo@1.0 are not in the allowed list [MIT] (license expression: Zlib AND ISC)"]
        );
    }

    #[test]
    fn deeply_parenthesised_expression_is_not_spdx() {
        let e = format!("{}MIT{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(expression(&allow(&["MIT"]), &e).len(), 1);
        let e = format!("{}MIT{}", "(".repeat(20), ")".repeat(20));
        assert!(expression(&allow(&["MIT"]), &e).is_empty());
    }

    #[rstest]
    #[case::both_noassertion("NOASSERTION", "NOASSERTION")]
    #[case::none("NONE", "NOASSERTION")]
    #[case::empty("", "NONE")]
    fn no_license_information(#[case] concluded: &str, #[case] declared: &str) {
        let doc = spdx(json!([spdx_pkg("pkg:pypi/foo@1.0", concluded, declared)]));
        // A deny-list cannot object to what is not stated…
        assert!(evaluate(SPDX, &doc, &deny(&["GPL-3.0-only"]), now()).is_ok());
        // …an allow-list can: only the listed licenses are acceptable.
        assert_eq!(
            messages(evaluate(SPDX, &doc, &allow(&["MIT", "Apache-2.0"]), now())),
            ["SBOM (SPDX) package pkg:pypi/foo@1.0 has no license information, policy allows only [MIT, Apache-2.0]"]
        );
    }

    #[test]
    fn spdx_prefers_concluded_then_declared() {
        let rule = deny(&["GPL-3.0-only"]);
        let doc = spdx(json!([spdx_pkg("pkg:pypi/a@1", "MIT", "GPL-3.0-only")]));
        assert!(evaluate(SPDX, &doc, &rule, now()).is_ok());
        let doc = spdx(json!([spdx_pkg("pkg:pypi/a@1", "NOASSERTION", "GPL-3.0-only")]));
        assert_eq!(
            messages(evaluate(SPDX, &doc, &rule, now())),
            ["SBOM (SPDX) denies license GPL-3.0-only in pkg:pypi/a@1"]
        );
    }

    #[test]
    fn spdx_subject_is_matched_but_not_counted() {
        let mut root = spdx_pkg("pkg:oci/app@sha256%3Aabc", "NOASSERTION", "NOASSERTION");
        root["SPDXID"] = json!("SPDXRef-root");
        let mut doc = spdx(json!([root]));
        doc["relationships"] = json!([{ "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-root" }]);
        assert_eq!(messages(evaluate(SPDX, &doc, &allow(&["MIT"]), now())), ["SBOM (SPDX) lists no packages"]);
        assert_eq!(
            messages(evaluate(SPDX, &doc, &deny_packages(&["pkg:oci/app"]), now())),
            [
                "SBOM (SPDX) lists no packages",
                "SBOM (SPDX) lists denied package pkg:oci/app@sha256%3Aabc (matches pkg:oci/app)"
            ]
        );
        // documentDescribes (SPDX 2.2) says the same.
        doc.as_object_mut().unwrap().remove("relationships");
        doc["documentDescribes"] = json!(["SPDXRef-root"]);
        assert_eq!(messages(evaluate(SPDX, &doc, &allow(&["MIT"]), now())), ["SBOM (SPDX) lists no packages"]);
    }

    #[rstest]
    #[case::exact("pkg:npm/event-stream@3.3.6", "pkg:npm/event-stream@3.3.6", true)]
    #[case::other_version("pkg:npm/event-stream@3.3.6", "pkg:npm/event-stream@3.3.5", false)]
    #[case::any_version("pkg:npm/event-stream", "pkg:npm/event-stream@4.0.0", true)]
    #[case::unversioned_purl("pkg:npm/event-stream", "pkg:npm/event-stream", true)]
    #[case::wildcard(
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        true
    )]
    #[case::wildcard_no_match(
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.15.0",
        false
    )]
    #[case::wildcard_middle(
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.*.1",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        true
    )]
    #[case::wildcard_prefix(
        "pkg:golang/golang.org/x/net@*-2023*",
        "pkg:golang/golang.org/x/net@v0.0.0-20230101-abc",
        true
    )]
    #[case::other_namespace(
        "pkg:maven/org.apache.logging.log4j/log4j-core",
        "pkg:maven/org.example/log4j-core@2.14.1",
        false
    )]
    #[case::name_is_not_a_prefix("pkg:npm/left-pad", "pkg:npm/left-pad-extra@1.0.0", false)]
    #[case::qualifiers_ignored(
        "pkg:deb/debian/openssl@3.0.*",
        "pkg:deb/debian/openssl@3.0.11-1?arch=amd64&distro=debian-12",
        true
    )]
    #[case::subpath_ignored(
        "pkg:golang/github.com/acme/lib@v1.2.3",
        "pkg:golang/github.com/acme/lib@v1.2.3#sub/pkg",
        true
    )]
    #[case::names_case_sensitive("pkg:maven/org.acme/Lib", "pkg:maven/org.acme/lib@1", false)]
    #[case::type_case_insensitive("pkg:npm/left-pad", "pkg:NPM/left-pad@1.3.0", true)]
    #[case::pypi_normalised("pkg:pypi/pyyaml@6.*", "pkg:pypi/PyYAML@6.0.1", true)]
    #[case::pypi_underscore("pkg:pypi/typing-extensions", "pkg:pypi/typing_extensions@4.0", true)]
    #[case::npm_scope_encoded("pkg:npm/@babel/core@7.*", "pkg:npm/%40babel/core@7.24.0", true)]
    #[case::npm_scope_plain("pkg:npm/%40babel/core", "pkg:npm/@babel/core@7.24.0", true)]
    #[case::other_type("pkg:npm/requests", "pkg:pypi/requests@2.31.0", false)]
    #[case::version_wildcard_needs_version("pkg:npm/a@1.*", "pkg:npm/a", false)]
    #[case::not_a_purl_in_sbom("pkg:npm/a", "npm/a@1", false)]
    fn denied_packages(#[case] pattern: &str, #[case] purl: &str, #[case] denied: bool) {
        let doc = cdx(json!([{ "type": "library", "name": "x", "purl": purl }]));
        let found = messages(evaluate(CDX, &doc, &deny_packages(&[pattern]), now()));
        let want = format!("SBOM (CycloneDX) lists denied package {purl} (matches {pattern})");
        assert_eq!(found, if denied { vec![want] } else { vec![] }, "{pattern} vs {purl}");
    }

    #[test]
    fn denied_package_as_the_subject() {
        let mut doc = cdx(json!([{ "type": "library", "name": "a", "purl": "pkg:npm/a@1" }]));
        doc["metadata"]["component"]["purl"] = json!("pkg:npm/event-stream@3.3.6");
        assert_eq!(
            messages(evaluate(CDX, &doc, &deny_packages(&["pkg:npm/event-stream@3.3.6"]), now())),
            ["SBOM (CycloneDX) lists denied package pkg:npm/event-stream@3.3.6 (matches pkg:npm/event-stream@3.3.6)"]
        );
    }

    #[rstest]
    #[case::no_scheme("npm/left-pad", "denied package \"npm/left-pad\" is not a package URL: it must start with pkg:")]
    #[case::no_name("pkg:npm", "denied package \"pkg:npm\" is not a package URL: it has no type/name")]
    #[case::star_in_name(
        "pkg:npm/left-*",
        "denied package \"pkg:npm/left-*\" is not a package URL: '*' is allowed only in the version"
    )]
    #[case::qualifiers("pkg:deb/debian/openssl@3?arch=amd64", "denied package \"pkg:deb/debian/openssl@3?arch=amd64\" is not a package URL: qualifiers (?…) and subpaths (#…) are not matched; remove them")]
    fn invalid_package_patterns(#[case] pattern: &str, #[case] want: &str) {
        let rule = deny_packages(&[pattern]);
        assert_eq!(rule.validate().unwrap_err().iter().map(ToString::to_string).collect::<Vec<_>>(), [want]);
        // Evaluation fails closed, naming the problem.
        let doc = cdx(json!([{ "type": "library", "name": "a", "purl": "pkg:npm/a@1" }]));
        assert_eq!(
            messages(evaluate(CDX, &doc, &rule, now())),
            [format!("policy SBOM rule cannot be applied: {want}")]
        );
    }

    #[test]
    fn valid_rule() {
        let rule = SbomRule {
            denied_licenses: vec!["AGPL-3.0-only".into()],
            allowed_licenses: vec!["MIT".into(), "LicenseRef-Acme".into()],
            denied_packages: vec!["pkg:npm/event-stream@3.3.6".into(), "pkg:maven/org.acme/lib@2.*".into()],
            max_age: Some(Duration::from_secs(DAY)),
        };
        assert_eq!(rule.validate(), Ok(()));
        assert_eq!(allow(&["Apache 2.0", "MIT License"]).validate(), Ok(()));
        assert_eq!(
            deny(&["MIT or GPL-3.0-only", "(MIT)", " "]).validate(),
            Err(vec![
                SbomRuleError::License("MIT or GPL-3.0-only".into()),
                SbomRuleError::License("(MIT)".into()),
                SbomRuleError::License(" ".into())
            ])
        );
    }

    #[test]
    fn cyclonedx_license_forms() {
        let rule = SbomRule {
            denied_licenses: vec!["GPL-3.0-only".into()],
            allowed_licenses: vec!["MIT".into(), "Apache-2.0".into(), "GPL-3.0-only".into()],
            ..Default::default()
        };
        let doc = cdx(json!([
            { "type": "library", "name": "by-id", "purl": "pkg:npm/a@1", "licenses": [{ "license": { "id": "MIT" } }] },
            { "type": "library", "name": "by-name", "purl": "pkg:npm/b@1", "licenses": [{ "license": { "name": "Apache 2.0" } }] },
            cdx_expr("pkg:npm/c@1", "MIT OR GPL-3.0-only"),
            // Several entries all apply.
            { "type": "library", "name": "d", "purl": "pkg:npm/d@1",
              "licenses": [{ "license": { "id": "MIT" } }, { "expression": "GPL-3.0-only OR GPL-3.0-or-later" }] },
            // A concluded license wins over declared ones.
            { "type": "library", "name": "e", "purl": "pkg:npm/e@1",
              "licenses": [{ "license": { "id": "GPL-3.0-only", "acknowledgement": "declared" } },
                           { "license": { "id": "MIT", "acknowledgement": "concluded" } }] },
            { "type": "library", "name": "f", "version": "2.0", "licenses": [] },
            { "type": "library", "name": "g", "purl": "pkg:npm/g@1", "licenses": [{ "license": { "url": "https://example.com" } }] },
        ]));
        assert_eq!(
            messages(evaluate(CDX, &doc, &rule, now())),
            [
                "SBOM (CycloneDX) license Apache 2.0 of pkg:npm/b@1 is not in the allowed list [MIT, Apache-2.0, GPL-3.0-only]",
                "SBOM (CycloneDX) denies license GPL-3.0-only in pkg:npm/d@1 \
                 (license expression: MIT AND (GPL-3.0-only OR GPL-3.0-or-later))",
                "SBOM (CycloneDX) package f@2.0 has no license information, policy allows only [MIT, Apache-2.0, GPL-3.0-only]",
                "SBOM (CycloneDX) package pkg:npm/g@1 has no license information, policy allows only [MIT, Apache-2.0, GPL-3.0-only]",
            ]
        );
    }

    #[test]
    fn nested_cyclonedx_components_in_document_order() {
        let doc = cdx(json!([
            { "type": "library", "name": "a", "purl": "pkg:npm/a@1", "licenses": [{ "license": { "id": "GPL-3.0-only" } }],
              "components": [
                { "type": "library", "name": "b", "purl": "pkg:npm/b@1", "licenses": [{ "license": { "id": "GPL-3.0-only" } }],
                  "components": [{ "type": "library", "name": "c", "purl": "pkg:npm/c@1",
                                   "licenses": [{ "license": { "id": "GPL-3.0-only" } }] }] } ] },
            { "type": "library", "name": "d", "purl": "pkg:npm/d@1", "licenses": [{ "license": { "id": "GPL-3.0-only" } }] },
        ]));
        let found = messages(evaluate(CDX, &doc, &deny(&["GPL-3.0-only"]), now()));
        let names: Vec<_> = found.iter().map(|m| m.rsplit(' ').next().unwrap()).collect();
        assert_eq!(names, ["pkg:npm/a@1", "pkg:npm/b@1", "pkg:npm/c@1", "pkg:npm/d@1"]);
        let summary = evaluate(CDX, &doc, &SbomRule::default(), now()).unwrap();
        assert_eq!(summary.components, 4);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        // Built from the inside out without recursion; serde_json's parser would refuse this
        // depth, but a Value can be built by other means.
        // (json! would clone an interpolated Value recursively, so the levels are moved in.)
        let mut component = cdx_expr("pkg:npm/deep@1", "AGPL-3.0-only");
        for _ in 0..100_000 {
            let mut level = serde_json::Map::new();
            level.insert("type".into(), "library".into());
            level.insert("components".into(), Value::Array(vec![component]));
            component = Value::Object(level);
        }
        let mut doc = cdx(json!([]));
        doc["components"] = Value::Array(vec![component]);
        let found = messages(evaluate(CDX, &doc, &deny(&["AGPL-3.0-only"]), now()));
        // Dropping a Value this deep recurses in serde_json; take it apart by hand, before an
        // assertion can fail and unwind.
        let mut stack = vec![doc];
        while let Some(mut v) = stack.pop() {
            match &mut v {
                Value::Array(a) => stack.append(a),
                Value::Object(o) => stack.extend(std::mem::take(o).into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
        assert_eq!(found, ["SBOM (CycloneDX) denies license AGPL-3.0-only in pkg:npm/deep@1"]);
    }

    #[test]
    fn findings_are_capped_and_deduplicated() {
        let components: Vec<Value> = (0..50).map(|i| cdx_expr(&format!("pkg:npm/p{i}@1"), "AGPL-3.0-only")).collect();
        let mut components = components;
        // The same package twice (syft lists a package once per location) is one finding.
        components.push(cdx_expr("pkg:npm/p0@1", "AGPL-3.0-only"));
        let found = evaluate(CDX, &cdx(Value::Array(components)), &deny(&["AGPL-3.0-only"]), now()).unwrap_err();
        assert_eq!(found.len(), MAX_FINDINGS + 1);
        assert_eq!(found[0].to_string(), "SBOM (CycloneDX) denies license AGPL-3.0-only in pkg:npm/p0@1");
        assert_eq!(found[MAX_FINDINGS].to_string(), "… and 30 more");
        assert_eq!(found[MAX_FINDINGS].kind(), "sbom-more-findings");
    }

    #[test]
    fn document_findings_come_first() {
        let rule = SbomRule {
            denied_licenses: vec!["AGPL-3.0-only".into()],
            max_age: Some(Duration::from_secs(7 * DAY)),
            ..Default::default()
        };
        let doc = cdx(json!([cdx_expr("pkg:npm/a@1", "AGPL-3.0-only")]));
        let found = evaluate(CDX, &doc, &rule, now()).unwrap_err();
        assert_eq!(found.iter().map(SbomFinding::kind).collect::<Vec<_>>(), ["sbom-too-old", "sbom-denied-license"]);
    }

    #[test]
    fn summary_of_a_passing_sbom() {
        let doc = spdx(json!([spdx_pkg("pkg:npm/a@1", "MIT", "MIT"), spdx_pkg("pkg:npm/b@1", "ISC", "ISC")]));
        assert_eq!(
            evaluate("https://spdx.dev/Document/v2.3", &doc, &deny(&["AGPL-3.0-only"]), now()),
            Ok(SbomSummary { format: SbomFormat::Spdx, components: 2, created: Some("2026-01-01T00:00:00Z".into()) })
        );
    }

    #[test]
    fn predicate_as_a_json_string() {
        // cosign attest --type spdx with a JSON file puts the document in a string.
        let doc = spdx(json!([spdx_pkg("pkg:npm/a@1", "AGPL-3.0-only", "NOASSERTION")]));
        let predicate = Value::String(doc.to_string());
        assert_eq!(
            messages(evaluate(SPDX, &predicate, &deny(&["AGPL-3.0-only"]), now())),
            ["SBOM (SPDX) denies license AGPL-3.0-only in pkg:npm/a@1"]
        );
    }

    #[rstest]
    #[case("1970-01-01T00:00:00Z", Some(0))]
    #[case("2026-01-31T00:00:00Z", Some(1_769_817_600))]
    #[case("2024-02-29T12:30:15.5Z", Some(1_709_209_815))]
    #[case("2024-02-29t12:30:15-01:30", Some(1_709_215_215))]
    #[case("2023-02-29T00:00:00Z", None)]
    #[case("2026-01-31T00:00:00", None)]
    #[case("2026-01-31", None)]
    #[case("2026-01-31T24:00:00Z", None)]
    #[case("2026-01-31T00:00:00.Z", None)]
    fn rfc3339(#[case] s: &str, #[case] want: Option<i64>) {
        assert_eq!(parse_rfc3339(s), want);
    }

    // Real syft output (tests/fixtures/sbom/README.md says how it was made).

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/sbom/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
    }

    /// The fixtures were made on 2026-11-23.
    fn fixture_now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_824_000) // 2026-11-28T00:00:00Z
    }

    #[rstest]
    #[case::cyclonedx(CDX, "demo-app.cyclonedx.json", "CycloneDX")]
    #[case::spdx(SPDX, "demo-app.spdx.json", "SPDX")]
    fn syft_denied_license_and_package(#[case] predicate_type: &str, #[case] file: &str, #[case] format: &str) {
        let doc = fixture(file);
        let rule = SbomRule {
            denied_licenses: vec!["AGPL-3.0-only".into(), "GPL-3.0-only".into()],
            denied_packages: vec!["pkg:npm/event-stream@3.3.*".into()],
            max_age: Some(Duration::from_secs(30 * DAY)),
            ..Default::default()
        };
        // dual-licensed is "MIT OR GPL-3.0-only": MIT can be chosen.
        assert_eq!(
            messages(evaluate(predicate_type, &doc, &rule, fixture_now())),
            [
                format!("SBOM ({format}) denies license AGPL-3.0-only in pkg:npm/copyleft-widget@2.1.0"),
                format!("SBOM ({format}) lists denied package pkg:npm/event-stream@3.3.6 (matches pkg:npm/event-stream@3.3.*)"),
                format!("SBOM ({format}) denies license GPL-3.0-only in pkg:pypi/gplthing@1.0"),
            ]
        );
    }

    #[test]
    fn syft_allow_list() {
        let rule = allow(&["MIT", "Apache-2.0", "AGPL-3.0-only", "GPL-3.0-only"]);
        // syft could not map "Apache 2.0" to an SPDX id: CycloneDX keeps the name, SPDX makes a
        // LicenseRef of it. Either must be listed as written to be allowed.
        let list = "[MIT, Apache-2.0, AGPL-3.0-only, GPL-3.0-only]";
        assert_eq!(
            messages(evaluate(CDX, &fixture("demo-app.cyclonedx.json"), &rule, fixture_now())),
            [format!(
                "SBOM (CycloneDX) license Apache 2.0 of pkg:pypi/requests@2.31.0 is not in the allowed list {list}"
            )]
        );
        assert_eq!(
            messages(evaluate(SPDX, &fixture("demo-app.spdx.json"), &rule, fixture_now())),
            [format!("SBOM (SPDX) license LicenseRef-Apache-2.0 of pkg:pypi/requests@2.31.0 is not in the allowed list {list}")]
        );
        // left-pad is "WTFPL OR MIT"; the subject directory (no license) is not a package.
        let mut rule = rule;
        rule.allowed_licenses.extend(["Apache 2.0".into(), "LicenseRef-Apache-2.0".into()]);
        for (t, f) in [(CDX, "demo-app.cyclonedx.json"), (SPDX, "demo-app.spdx.json")] {
            let summary = evaluate(t, &fixture(f), &rule, fixture_now()).expect(f);
            assert_eq!((summary.components, summary.created.as_deref()), (7, Some("2026-11-23T13:35:23Z")), "{f}");
        }
    }

    #[rstest]
    #[case::cyclonedx(CDX, "empty.cyclonedx.json", "SBOM (CycloneDX) lists no packages")]
    #[case::spdx(SPDX, "empty.spdx.json", "SBOM (SPDX) lists no packages")]
    fn syft_empty(#[case] predicate_type: &str, #[case] file: &str, #[case] want: &str) {
        assert_eq!(messages(evaluate(predicate_type, &fixture(file), &SbomRule::default(), fixture_now())), [want]);
    }

    #[test]
    fn syft_too_old() {
        let rule = SbomRule { max_age: Some(Duration::from_secs(30 * DAY)), ..Default::default() };
        let later = UNIX_EPOCH + Duration::from_secs(1_795_824_000 + 40 * DAY);
        assert_eq!(
            messages(evaluate(SPDX, &fixture("demo-app.spdx.json"), &rule, later)),
            ["SBOM is 45 days old, policy allows 30"]
        );
    }
}
