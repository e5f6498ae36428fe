//! SARIF 2.1.0 for code scanning in CI: one rule per check, one result per warn or fail.

use serde_json::{json, Value};

use crate::judge::Report;
use crate::model::{Verdict, CHECKS};

/// The report as a SARIF 2.1.0 log. Fails are `error`, warns `warning`; passes and infos are
/// left out. Each result points at the page URL, and the run's properties carry the grade.
/// Control and bidi characters in strings are written as `\u` escapes.
pub fn sarif(r: &Report) -> String {
    let rules: Vec<Value> = CHECKS
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.id.replace('-', ""),
                "shortDescription": { "text": c.title },
                "helpUri": "https://example.invalid/buttress/docs/audit.md",
                "properties": {
                    "layer": c.layer,
                    "source": if c.observatory.is_some() { "observatory" } else { "ours" },
                    "observatoryTest": c.observatory,
                    "failWeight": c.fail_weight,
                    "warnWeight": c.warn_weight,
                },
            })
        })
        .collect();
    let uri = r.final_url.clone().unwrap_or_else(|| r.target.clone());
    let results: Vec<Value> = r
        .findings
        .iter()
        .filter(|f| matches!(f.verdict, Verdict::Warn | Verdict::Fail))
        .map(|f| {
            let index = CHECKS.iter().position(|c| c.id == f.id).unwrap_or(0);
            json!({
                "ruleId": f.id,
                "ruleIndex": index,
                "level": if f.verdict == Verdict::Fail { "error" } else { "warning" },
                "message": { "text": format!("{}: {}. Fix: {}", f.title, f.evidence, f.fix) },
                "locations": [{
                    "physicalLocation": { "artifactLocation": { "uri": uri } }
                }],
                "properties": { "modifier": f.modifier, "verdict": f.verdict },
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "buttress-audit",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://example.invalid/buttress",
                "rules": rules,
            }},
            "invocations": [{ "executionSuccessful": true }],
            "results": results,
            "properties": { "target": r.target, "grade": r.grade, "score": r.score },
        }],
    });
    super::text::json(&doc).unwrap_or_default()
}
