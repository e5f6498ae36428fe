//! A judging CSP parser: it accepts anything a site sends and says how strong it is.
//!
//! `buttress::headers::Csp` parses policies *we emit* and refuses typos; a scanner must instead
//! read whatever arrives (unknown directives, odd case, repeated directives, empty tokens) the
//! way a browser does (CSP3 §2.2.1 "parse a serialized CSP"): directives split on `;`, the name
//! lowercased, the first occurrence wins, later ones are ignored and reported as duplicates.
//!
//! # Example
//!
//! ```
//! use buttress_audit::csp::{judge, Policy};
//!
//! let p = Policy::parse("Script-Src 'self' 'unsafe-inline'; object-src 'none'; script-src *");
//! assert_eq!(p.get("script-src"), Some(&["'self'".to_owned(), "'unsafe-inline'".to_owned()][..]));
//! assert_eq!(p.duplicates, vec!["script-src".to_owned()]);
//!
//! let verdicts = judge(&[p], &[]);
//! let inline = verdicts.iter().find(|j| j.id == "AUD-CSP-002").unwrap();
//! assert_eq!(inline.verdict, buttress_audit::Verdict::Fail);
//! ```
//!
//! See [CSP Level 3](https://www.w3.org/TR/CSP3/) and
//! [MDN: Content-Security-Policy](https://developer.mozilla.org/docs/Web/HTTP/Headers/Content-Security-Policy).

use std::collections::HashSet;

use crate::model::Verdict;

/// One parsed policy (one header field, or one of its comma-separated policies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Directives in order, names lowercased, first occurrence only.
    pub directives: Vec<(String, Vec<String>)>,
    /// Names of directives that appeared again (and were ignored, as browsers do).
    pub duplicates: Vec<String>,
}

impl Policy {
    /// Parses one serialized policy. Never fails: what a browser would ignore is ignored.
    pub fn parse(text: &str) -> Policy {
        let mut p = Policy::default();
        // Names seen, to find repeats in one look each (a site may send thousands).
        let mut seen: HashSet<String> = HashSet::new();
        let mut repeated: HashSet<String> = HashSet::new();
        for part in text.split(';') {
            let mut tokens = part
                .split(|c: char| c.is_ascii_whitespace())
                .filter(|t| !t.is_empty());
            let Some(name) = tokens.next() else { continue };
            let name = name.to_ascii_lowercase();
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                continue;
            }
            if !seen.insert(name.clone()) {
                if repeated.insert(name.clone()) {
                    p.duplicates.push(name);
                }
                continue;
            }
            p.directives
                .push((name, tokens.map(|t| t.to_owned()).collect()));
        }
        p
    }

    /// Parses a header value that may hold several policies separated by commas.
    pub fn parse_list(header: &str) -> Vec<Policy> {
        header
            .split(',')
            .map(Policy::parse)
            .filter(|p| !p.directives.is_empty())
            .collect()
    }

    /// The sources of directive `name` (lowercase), if present.
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.directives
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_slice())
    }

    /// The directive that governs `name` after the fallback to `default-src`, with its name.
    pub fn effective<'a>(&'a self, name: &'a str) -> Option<(&'a str, &'a [String])> {
        self.get(name)
            .map(|s| (name, s))
            .or_else(|| self.get("default-src").map(|s| ("default-src", s)))
    }

    /// Script sources: `script-src`, else `default-src`.
    pub fn scripts(&self) -> Option<(&'static str, &[String])> {
        self.get("script-src")
            .map(|s| ("script-src", s))
            .or_else(|| self.get("default-src").map(|s| ("default-src", s)))
    }
}

fn has(sources: &[String], token: &str) -> bool {
    sources.iter().any(|s| s.eq_ignore_ascii_case(token))
}

fn nonce_or_hash(sources: &[String]) -> bool {
    sources.iter().any(|s| {
        let l = s.to_ascii_lowercase();
        ["'nonce-", "'sha256-", "'sha384-", "'sha512-"]
            .iter()
            .any(|p| l.starts_with(p))
    })
}

fn is_broad(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l == "*"
        || (l.ends_with(':') && !l.starts_with('\'') && l != "data:" && l != "blob:")
        || l.starts_with("http://*")
        || l.starts_with("https://*")
}

fn render(name: &str, sources: &[String]) -> String {
    if sources.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {}", sources.join(" "))
    }
}

/// The judgement of one detail check (`AUD-CSP-002` to `AUD-CSP-011`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Check id.
    pub id: &'static str,
    /// pass, info, warn or fail.
    pub verdict: Verdict,
    /// The directive that decided it.
    pub evidence: String,
    /// What to change.
    pub fix: &'static str,
}

/// Judges enforced policies (`Content-Security-Policy`, `<meta http-equiv>`) and report-only
/// ones. Several enforced policies all apply, so a weakness counts only if every one has it.
pub fn judge(enforced: &[Policy], report_only: &[Policy]) -> Vec<Judgement> {
    let mut out = Vec::new();
    let j = |id, verdict, evidence: String, fix| Judgement {
        id,
        verdict,
        evidence,
        fix,
    };
    out.push(match (enforced.is_empty(), report_only.is_empty()) {
        (true, true) => j(
            "AUD-CSP-011",
            Verdict::Info,
            "no policy at all (see AUD-CSP-001)".into(),
            "",
        ),
        (true, false) => j(
            "AUD-CSP-011",
            Verdict::Fail,
            "only Content-Security-Policy-Report-Only: nothing is blocked".into(),
            "Send the policy as Content-Security-Policy once its reports are clean.",
        ),
        (false, true) => j("AUD-CSP-011", Verdict::Pass, "enforced".into(), ""),
        (false, false) => j(
            "AUD-CSP-011",
            Verdict::Pass,
            "enforced, with a report-only policy beside it".into(),
            "",
        ),
    });
    if enforced.is_empty() {
        for id in [
            "AUD-CSP-002",
            "AUD-CSP-003",
            "AUD-CSP-004",
            "AUD-CSP-005",
            "AUD-CSP-006",
            "AUD-CSP-007",
            "AUD-CSP-008",
            "AUD-CSP-009",
            "AUD-CSP-010",
        ] {
            out.push(j(
                id,
                Verdict::Info,
                "no enforced policy (charged once, by AUD-CSP-001)".into(),
                "",
            ));
        }
        out.sort_by_key(|x| x.id);
        return out;
    }
    // For each check, the strictest policy decides: take the best verdict over the policies.
    let best = |f: &dyn Fn(&Policy) -> (Verdict, String)| -> (Verdict, String) {
        enforced
            .iter()
            .map(f)
            .min_by_key(|(v, _)| *v)
            .unwrap_or((Verdict::Info, String::new()))
    };
    let scripts = |p: &Policy| -> Option<(String, Vec<String>)> {
        p.scripts().map(|(n, s)| (n.to_owned(), s.to_vec()))
    };

    let (v, e) = best(&|p| match scripts(p) {
        None => (
            Verdict::Fail,
            "no script-src or default-src: any inline script runs".into(),
        ),
        Some((n, s)) if has(&s, "'unsafe-inline'") && !nonce_or_hash(&s) => {
            (Verdict::Fail, render(&n, &s))
        }
        Some((n, s)) if has(&s, "'unsafe-inline'") => (
            Verdict::Pass,
            format!(
                "{} ('unsafe-inline' is ignored beside a nonce or hash)",
                render(&n, &s)
            ),
        ),
        Some((n, s)) => (Verdict::Pass, render(&n, &s)),
    });
    out.push(j(
        "AUD-CSP-002",
        v,
        e,
        "Remove 'unsafe-inline' from script-src; give inline scripts a per-response nonce.",
    ));

    let (v, e) = best(&|p| match scripts(p) {
        None => (
            Verdict::Fail,
            "no script-src or default-src: eval() runs".into(),
        ),
        Some((n, s)) if has(&s, "'unsafe-eval'") => (Verdict::Fail, render(&n, &s)),
        Some((n, s)) => (Verdict::Pass, render(&n, &s)),
    });
    out.push(j(
        "AUD-CSP-003",
        v,
        e,
        "Remove 'unsafe-eval'; replace eval()/new Function() with plain code or JSON.parse.",
    ));

    let (v, e) = best(&|p| match scripts(p) {
        None => (
            Verdict::Fail,
            "no script-src or default-src: scripts load from anywhere".into(),
        ),
        Some((n, s)) => {
            let strict_dynamic = has(&s, "'strict-dynamic'") && nonce_or_hash(&s);
            let broad: Vec<&String> = s.iter().filter(|x| is_broad(x)).collect();
            let wild_host = s.iter().any(|x| x.contains("*."));
            if !broad.is_empty() && !strict_dynamic {
                (Verdict::Fail, render(&n, &s))
            } else if wild_host && !strict_dynamic {
                (Verdict::Warn, render(&n, &s))
            } else {
                (Verdict::Pass, render(&n, &s))
            }
        }
    });
    out.push(j(
        "AUD-CSP-004",
        v,
        e,
        "List exact script hosts (or use nonces with 'strict-dynamic'); never *, https: or http:.",
    ));

    let (v, e) = best(&|p| match scripts(p) {
        None => (
            Verdict::Fail,
            "no script-src or default-src: data: scripts run".into(),
        ),
        Some((n, s)) if has(&s, "data:") => (Verdict::Fail, render(&n, &s)),
        Some((n, s)) if has(&s, "blob:") => (Verdict::Warn, render(&n, &s)),
        Some((n, s)) => (Verdict::Pass, render(&n, &s)),
    });
    out.push(j(
        "AUD-CSP-005",
        v,
        e,
        "Remove data: (and blob:) from script-src: they let injected markup carry its own script.",
    ));

    let (v, e) = best(&|p| match p.effective("object-src") {
        None => (Verdict::Fail, "no object-src and no default-src".into()),
        Some((n, s)) if s.len() == 1 && has(s, "'none'") => (Verdict::Pass, render(n, s)),
        Some((n, s)) => (Verdict::Fail, render(n, s)),
    });
    out.push(j(
        "AUD-CSP-006",
        v,
        e,
        "Add object-src 'none' (plugins run script).",
    ));

    let (v, e) = best(&|p| match p.get("base-uri") {
        None => (
            Verdict::Fail,
            "no base-uri (it does not fall back to default-src)".into(),
        ),
        Some(s) if has(s, "'none'") || (s.len() == 1 && has(s, "'self'")) => {
            (Verdict::Pass, render("base-uri", s))
        }
        Some(s) => (Verdict::Warn, render("base-uri", s)),
    });
    out.push(j(
        "AUD-CSP-007",
        v,
        e,
        "Add base-uri 'none' (or 'self'): an injected <base> retargets every relative script.",
    ));

    let (v, e) = best(&|p| match p.get("frame-ancestors") {
        None => (
            Verdict::Warn,
            "no frame-ancestors (it does not fall back to default-src)".into(),
        ),
        Some(s) if s.iter().any(|x| is_broad(x)) => (Verdict::Warn, render("frame-ancestors", s)),
        Some(s) => (Verdict::Pass, render("frame-ancestors", s)),
    });
    out.push(j(
        "AUD-CSP-008",
        v,
        e,
        "Add frame-ancestors 'none' (or 'self'); it supersedes X-Frame-Options.",
    ));

    let (v, e) = best(&|p| match p.get("form-action") {
        None => (
            Verdict::Fail,
            "no form-action (it does not fall back to default-src)".into(),
        ),
        Some(s) if s.iter().any(|x| is_broad(x)) => (Verdict::Warn, render("form-action", s)),
        Some(s) => (Verdict::Pass, render("form-action", s)),
    });
    out.push(j(
        "AUD-CSP-009",
        v,
        e,
        "Add form-action 'self': injected forms then cannot post credentials elsewhere.",
    ));

    let (v, e) = best(&|p| match scripts(p) {
        None => (Verdict::Warn, "no script restriction".into()),
        Some((n, s)) if nonce_or_hash(&s) => (Verdict::Pass, render(&n, &s)),
        Some((n, s)) if s.len() == 1 && has(&s, "'none'") => (
            Verdict::Pass,
            format!("{} (no scripts at all)", render(&n, &s)),
        ),
        Some((n, s)) => (Verdict::Warn, render(&n, &s)),
    });
    out.push(j(
        "AUD-CSP-010",
        v,
        e,
        "Allow scripts by per-response nonce or hash: host allow-lists can be bypassed via JSONP and script gadgets.",
    ));

    out.sort_by_key(|x| x.id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        policy: &'static str,
        id: &'static str,
        expect: Verdict,
    }

    #[test]
    fn table() {
        let cases = [
            Case {
                name: "nonce neutralises unsafe-inline",
                policy: "script-src 'nonce-abc' 'unsafe-inline'",
                id: "AUD-CSP-002",
                expect: Verdict::Pass,
            },
            Case {
                name: "unsafe-inline",
                policy: "default-src 'self' 'unsafe-inline'",
                id: "AUD-CSP-002",
                expect: Verdict::Fail,
            },
            Case {
                name: "eval",
                policy: "script-src 'self' 'unsafe-eval'",
                id: "AUD-CSP-003",
                expect: Verdict::Fail,
            },
            Case {
                name: "wasm eval is fine",
                policy: "script-src 'self' 'wasm-unsafe-eval'",
                id: "AUD-CSP-003",
                expect: Verdict::Pass,
            },
            Case {
                name: "https: scheme",
                policy: "script-src https:",
                id: "AUD-CSP-004",
                expect: Verdict::Fail,
            },
            Case {
                name: "strict-dynamic",
                policy: "script-src 'nonce-a' 'strict-dynamic' https:",
                id: "AUD-CSP-004",
                expect: Verdict::Pass,
            },
            Case {
                name: "data scripts",
                policy: "script-src 'self' data:",
                id: "AUD-CSP-005",
                expect: Verdict::Fail,
            },
            Case {
                name: "object via default none",
                policy: "default-src 'none'",
                id: "AUD-CSP-006",
                expect: Verdict::Pass,
            },
            Case {
                name: "base-uri missing",
                policy: "default-src 'none'",
                id: "AUD-CSP-007",
                expect: Verdict::Fail,
            },
            Case {
                name: "upper-case names",
                policy: "BASE-URI 'NONE'",
                id: "AUD-CSP-007",
                expect: Verdict::Pass,
            },
            Case {
                name: "first wins",
                policy: "form-action 'self'; form-action *",
                id: "AUD-CSP-009",
                expect: Verdict::Pass,
            },
        ];
        for c in cases {
            let got = judge(&[Policy::parse(c.policy)], &[]);
            let j = got.iter().find(|j| j.id == c.id).expect("judged");
            assert_eq!(j.verdict, c.expect, "{}: {j:?}", c.name);
        }
    }

    #[test]
    fn strictest_of_several_policies_decides() {
        let a = Policy::parse("script-src * 'unsafe-inline'");
        let b = Policy::parse("script-src 'self'");
        let got = judge(&[a, b], &[]);
        let j = got.iter().find(|j| j.id == "AUD-CSP-002").expect("judged");
        assert_eq!(j.verdict, Verdict::Pass);
    }

    /// A policy of 100,000 distinct directives once took seconds (each name was compared with
    /// every earlier one); repeats are still found, each reported once.
    #[test]
    fn many_directives_parse_in_linear_time() {
        use std::time::{Duration, Instant};

        let mut text: String = (0..100_000).map(|i| format!("x-{i} a;")).collect();
        text.push_str("x-7 b; x-7 c; x-99999 d");
        let started = Instant::now();
        let p = Policy::parse(&text);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(p.directives.len(), 100_000);
        assert_eq!(p.get("x-7"), Some(&["a".to_owned()][..]));
        assert_eq!(p.duplicates, vec!["x-7".to_owned(), "x-99999".to_owned()]);
    }

    #[test]
    fn garbage_is_read_like_a_browser() {
        let p = Policy::parse(";;  ; bad^name x; img-src\t'self'  ;");
        assert_eq!(
            p.directives,
            vec![("img-src".to_owned(), vec!["'self'".to_owned()])]
        );
        assert_eq!(Policy::parse_list("a b, c d").len(), 2);
    }
}
