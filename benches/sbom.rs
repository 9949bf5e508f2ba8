//! Evaluation of a 10,000-package SBOM against a policy's rule, in both formats: the cost the
//! webhook pays per SBOM attestation once its signature has verified (the decision cache then
//! spares it for the same digest and policy).
//!
//! The SBOMs are synthetic but shaped like syft's: package URLs with qualifiers, a few dozen
//! distinct license texts (ids, `OR`/`AND`/`WITH` expressions, a name that is not an SPDX id),
//! nested CycloneDX components, an SPDX document root, and 1 % of the packages denied by
//! license or by package URL, so findings are built, deduplicated and capped as in a denial.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};
use trustgate::policy::predicate::{CYCLONEDX as CYCLONEDX_PREDICATE_TYPE, SPDX as SPDX_PREDICATE_TYPE};
use trustgate::policy::sbom::{evaluate, SbomRule};

const PACKAGES: usize = 10_000;

const LICENSES: &[&str] = &[
    "MIT",
    "Apache-2.0",
    "MIT OR Apache-2.0",
    "BSD-3-Clause",
    "ISC",
    "(MIT OR GPL-3.0-only) AND ISC",
    "GPL-2.0-only WITH Classpath-exception-2.0 OR MIT",
    "Apache-2.0 AND (MIT OR BSD-2-Clause)",
    "LicenseRef-Acme-Internal",
    "BSD-2-Clause",
];

/// 2026-01-31T00:00:00Z; the SBOMs are from 2026-01-30.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_769_817_600)
}

/// Package `i`: its package URL and license text. Every 100th is denied: by license (odd
/// hundreds) or by package URL (even hundreds).
fn package(i: usize) -> (String, String) {
    if i.is_multiple_of(100) && (i / 100) % 2 == 1 {
        (format!("pkg:npm/copyleft-{i}@1.0.0"), "AGPL-3.0-only".to_owned())
    } else if i.is_multiple_of(100) {
        (format!("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.{}", i / 100), "Apache-2.0".to_owned())
    } else if i % 250 == 7 {
        // A few license texts of their own, as real SBOMs have.
        (format!("pkg:pypi/pkg-{i}@0.{}.0", i % 13), format!("LicenseRef-scancode-{i} OR MIT"))
    } else {
        (format!("pkg:npm/pkg-{i}@1.{}.{}?arch=amd64", i % 50, i % 7), LICENSES[i % LICENSES.len()].to_owned())
    }
}

fn cyclonedx_component(i: usize) -> Value {
    let (purl, license) = package(i);
    let licenses = if license.contains(' ') {
        json!([{ "expression": license }])
    } else {
        json!([{ "license": { "id": license } }])
    };
    json!({
        "bom-ref": format!("{purl}&package-id={i:016x}"),
        "type": "library",
        "name": format!("pkg-{i}"),
        "version": "1.0.0",
        "licenses": licenses,
        "cpe": format!("cpe:2.3:a:pkg-{i}:pkg-{i}:1.0.0:*:*:*:*:*:*:*"),
        "purl": purl,
        "properties": [
            { "name": "syft:package:foundBy", "value": "javascript-lock-cataloger" },
            { "name": "syft:package:type", "value": "npm" },
            { "name": "syft:location:0:path", "value": "/app/package-lock.json" },
        ],
    })
}

/// 10,000 components, every tenth with two nested ones.
fn cyclonedx() -> Value {
    let mut components = Vec::new();
    let mut i = 0;
    while i < PACKAGES {
        let mut c = cyclonedx_component(i);
        if i % 10 == 0 && i + 2 < PACKAGES {
            c["components"] = json!([cyclonedx_component(i + 1), cyclonedx_component(i + 2)]);
            i += 2;
        }
        components.push(c);
        i += 1;
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": "2026-01-30T12:00:00Z",
            "tools": { "components": [{ "type": "application", "author": "anchore", "name": "syft", "version": "1.18.1" }] },
            "component": { "bom-ref": "root", "type": "container", "name": "registry.acme.io/app", "version": "sha256:ab12" },
        },
        "components": components,
    })
}

fn spdx() -> Value {
    let mut packages: Vec<Value> = (0..PACKAGES)
        .map(|i| {
            let (purl, license) = package(i);
            json!({
                "name": format!("pkg-{i}"),
                "SPDXID": format!("SPDXRef-Package-npm-pkg-{i}"),
                "versionInfo": "1.0.0",
                "supplier": "NOASSERTION",
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": license,
                "copyrightText": "NOASSERTION",
                "externalRefs": [
                    { "referenceCategory": "SECURITY", "referenceType": "cpe23Type",
                      "referenceLocator": format!("cpe:2.3:a:pkg-{i}:pkg-{i}:1.0.0:*:*:*:*:*:*:*") },
                    { "referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl },
                ],
            })
        })
        .collect();
    packages.push(json!({
        "name": "registry.acme.io/app", "SPDXID": "SPDXRef-DocumentRoot-Image", "versionInfo": "sha256:ab12",
        "licenseConcluded": "NOASSERTION", "licenseDeclared": "NOASSERTION", "primaryPackagePurpose": "CONTAINER",
    }));
    let mut relationships: Vec<Value> = (0..PACKAGES)
        .map(|i| {
            json!({ "spdxElementId": "SPDXRef-DocumentRoot-Image", "relationshipType": "CONTAINS",
                    "relatedSpdxElement": format!("SPDXRef-Package-npm-pkg-{i}") })
        })
        .collect();
    relationships.push(json!({ "spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                               "relatedSpdxElement": "SPDXRef-DocumentRoot-Image" }));
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "registry.acme.io/app",
        "creationInfo": { "created": "2026-01-30T12:00:00Z", "creators": ["Tool: syft-1.18.1"] },
        "packages": packages,
        "relationships": relationships,
    })
}

/// A deny-list policy: two licenses, two packages, a maximum age.
fn deny_rule() -> SbomRule {
    SbomRule {
        denied_licenses: vec!["AGPL-3.0-only".into(), "GPL-3.0-only".into(), "SSPL-1.0".into()],
        allowed_licenses: vec![],
        denied_packages: vec![
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.*".into(),
            "pkg:npm/event-stream@3.3.6".into(),
        ],
        max_age: Some(Duration::from_secs(30 * 86_400)),
    }
}

/// An allow-list policy every package passes.
fn allow_rule() -> SbomRule {
    SbomRule {
        allowed_licenses: ["MIT", "Apache-2.0", "BSD-3-Clause", "BSD-2-Clause", "ISC", "AGPL-3.0-only"]
            .into_iter()
            .chain(["LicenseRef-Acme-Internal"])
            .map(String::from)
            .collect(),
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) {
    let cdx = cyclonedx();
    let spdx = spdx();
    let cdx_text = serde_json::to_vec(&cdx).unwrap();
    let spdx_text = serde_json::to_vec(&spdx).unwrap();
    let (deny, allow) = (deny_rule(), allow_rule());

    // The shape the benchmark claims: 1 % denied, capped to 20 findings and "… and N more".
    for (t, doc) in [(CYCLONEDX_PREDICATE_TYPE, &cdx), (SPDX_PREDICATE_TYPE, &spdx)] {
        let findings = evaluate(t, doc, &deny, now()).unwrap_err();
        assert_eq!(findings.len(), 21, "{t}");
        assert_eq!(findings[20].to_string(), "… and 80 more", "{t}");
        assert_eq!(evaluate(t, doc, &allow, now()).map(|s| s.components), Ok(PACKAGES), "{t}");
    }

    let mut g = c.benchmark_group("sbom 10,000 packages");
    g.sample_size(50);
    g.bench_function("CycloneDX, deny-list, 100 denials", |b| {
        b.iter(|| evaluate(CYCLONEDX_PREDICATE_TYPE, &cdx, &deny, now()))
    });
    g.bench_function("CycloneDX, allow-list, admitted", |b| {
        b.iter(|| evaluate(CYCLONEDX_PREDICATE_TYPE, &cdx, &allow, now()))
    });
    g.bench_function("SPDX, deny-list, 100 denials", |b| b.iter(|| evaluate(SPDX_PREDICATE_TYPE, &spdx, &deny, now())));
    g.bench_function("SPDX, allow-list, admitted", |b| b.iter(|| evaluate(SPDX_PREDICATE_TYPE, &spdx, &allow, now())));
    // For scale: what parsing the predicate's JSON costs the caller before evaluate.
    g.bench_function(format!("CycloneDX, parse JSON ({} KiB)", cdx_text.len() / 1024), |b| {
        b.iter_batched(|| (), |_| serde_json::from_slice::<Value>(&cdx_text).unwrap(), BatchSize::SmallInput)
    });
    g.bench_function(format!("SPDX, parse JSON ({} KiB)", spdx_text.len() / 1024), |b| {
        b.iter_batched(|| (), |_| serde_json::from_slice::<Value>(&spdx_text).unwrap(), BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(sbom_benches, benches);
criterion_main!(sbom_benches);
