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

mod document;
mod license;
mod purl;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use super::glob::star_match;
use super::predicate::{PredicateType, CYCLONEDX, SPDX};
use document::{cyclonedx, spdx, text, CdxLicenseChoice};
use license::{canonical, Expression, LicenseFailures};
use purl::{PackagePattern, Purl};

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

struct Evaluator<'r, 'a> {
    format: SbomFormat,
    rule: &'r SbomRule,
    denied: HashSet<String>,
    allowed: HashSet<String>,
    patterns: HashMap<String, Vec<(Option<String>, &'r str)>>,
    /// Verdicts per distinct license text within this evaluation: an SBOM of 10,000 packages
    /// has a few dozen distinct licenses.
    expressions: HashMap<&'a str, LicenseFailures<'a>>,
    names: HashMap<&'a str, LicenseFailures<'a>>,
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
    fn leaf(&self, id: &'a str) -> LicenseFailures<'a> {
        let key = canonical(id);
        if self.denied.contains(&key) {
            LicenseFailures { denied: vec![id], not_allowed: vec![] }
        } else if !self.allowed.is_empty() && !self.allowed.contains(&key) {
            LicenseFailures { denied: vec![], not_allowed: vec![id] }
        } else {
            LicenseFailures::default()
        }
    }

    /// A license text that is not an SPDX expression: one license, denied when any word is.
    fn opaque(&self, text: &'a str) -> LicenseFailures<'a> {
        let mut denied: Vec<&'a str> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || ".-+:".contains(c)))
            .filter(|w| !w.is_empty() && self.denied.contains(&canonical(w)))
            .collect();
        denied.dedup();
        if !denied.is_empty() {
            return LicenseFailures { denied, not_allowed: vec![] };
        }
        self.leaf(text.trim())
    }

    fn name_verdict(&mut self, name: &'a str) -> LicenseFailures<'a> {
        if let Some(v) = self.names.get(name) {
            return v.clone();
        }
        let v = self.leaf(name.trim());
        self.names.insert(name, v.clone());
        v
    }

    fn expression_verdict(&mut self, expression: &'a str) -> LicenseFailures<'a> {
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
        let (verdict, expression): (Option<LicenseFailures<'a>>, Box<dyn Fn() -> String + '_>) = match license {
            License::Spdx(None) => (None, Box::new(String::new)),
            License::Spdx(Some(e)) => (Some(self.expression_verdict(e)), Box::new(move || e.trim().to_owned())),
            License::CycloneDx(choices) => {
                // A concluded license, when the SBOM states one, is what the package is under.
                let concluded = |c: &CdxLicenseChoice<'_>| {
                    text(c.acknowledgement).or(c.license.as_ref().and_then(|l| text(l.acknowledgement)))
                        == Some("concluded")
                };
                let any_concluded = choices.iter().any(concluded);
                let mut verdict: Option<LicenseFailures<'a>> = None;
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

/// Seconds since the Unix epoch of an RFC 3339 date-time (`2024-05-01T12:00:00Z`, fractions and
/// offsets allowed); `None` when it is not one.
fn parse_rfc3339(s: &str) -> Option<i64> {
    s.trim().parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests;
