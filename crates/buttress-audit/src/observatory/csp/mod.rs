//! Content-Security-Policy: the pieces both analyzers share (headers.py
//! content_security_policy / tests/csp.js); each rule set's parser and test are in a submodule.

mod classic;
mod mdn;

use std::collections::BTreeMap;

use super::plumbing::Set;

pub(super) use classic::classic_csp;
pub(super) use mdn::mdn_csp;

const DANGEROUSLY_BROAD: [&str; 8] = [
    "ftp:",
    "http:",
    "https:",
    "*",
    "http://*",
    "http://*.*",
    "https://*",
    "https://*.*",
];
const UNSAFE_INLINE: [&str; 2] = ["'unsafe-inline'", "data:"];
const NONCES_HASHES: [&str; 4] = ["'sha256-", "'sha384-", "'sha512-", "'nonce-"];
const PASSIVE_DIRECTIVES: [&str; 2] = ["img-src", "media-src"];
const SHORTEST_DIRECTIVE_LENGTH: usize = "img-src".len() - 1;

fn is_broad(s: &str) -> bool {
    DANGEROUSLY_BROAD.contains(&s)
}
fn is_broad_or_inline(s: &str) -> bool {
    is_broad(s) || UNSAFE_INLINE.contains(&s)
}
fn has_nonce_or_hash(set: &Set) -> bool {
    set.iter()
        .any(|s| NONCES_HASHES.iter().any(|p| s.starts_with(p)))
}

/// Directive map whose source sets can be aliased the way Python/JS references alias them:
/// `script_src = csp.get('script-src') or csp.get('default-src') or {'*'}` shares the set.
struct Pool {
    sets: Vec<Set>,
    dirs: BTreeMap<String, usize>,
}

impl Pool {
    fn new(map: BTreeMap<String, Set>) -> Self {
        let mut sets = Vec::new();
        let mut dirs = BTreeMap::new();
        for (k, v) in map {
            dirs.insert(k, sets.len());
            sets.push(v);
        }
        Pool { sets, dirs }
    }
    /// First present directive (Python: and non-empty) among `keys`, else a fresh `{'*'}`.
    fn slot(&mut self, keys: &[&str], empty_is_falsy: bool) -> usize {
        for k in keys {
            if let Some(&i) = self.dirs.get(*k) {
                if !(empty_is_falsy && self.sets[i].is_empty()) {
                    return i;
                }
            }
        }
        self.sets.push(["*".to_string()].into_iter().collect());
        self.sets.len() - 1
    }
    fn get(&self, dir: &str) -> Option<&Set> {
        self.dirs.get(dir).map(|&i| &self.sets[i])
    }
    fn snapshot(&self) -> BTreeMap<String, Vec<String>> {
        self.dirs
            .iter()
            .map(|(k, &i)| (k.clone(), self.sets[i].iter().cloned().collect()))
            .collect()
    }
}

pub(super) struct CspOut {
    pub(super) result: &'static str,
    pub(super) pass: bool,
    /// Parsed policy as the analyzer stores it in `data`; `None` when the test returned early.
    pub(super) data: Option<BTreeMap<String, Vec<String>>>,
}

impl CspOut {
    fn early(result: &'static str) -> Self {
        CspOut {
            result,
            pass: false,
            data: None,
        }
    }
}

fn csp_pass(result: &str) -> bool {
    matches!(
        result,
        "csp-implemented-with-no-unsafe"
            | "csp-implemented-with-no-unsafe-default-src-none"
            | "csp-implemented-with-unsafe-inline-in-style-src-only"
            | "csp-implemented-with-insecure-scheme-in-passive-content-only"
    )
}

#[cfg(test)]
mod tests {
    use crate::observatory::tests::{hardened, hdrs, result_of, run, with, BOTH};
    use crate::observatory::Ruleset;

    #[test]
    fn csp_unsafe_inline_in_script_src_is_penalised() {
        let cases: [(&str, &str, i32); 6] = [
            (
                "default-src 'none'; script-src 'self' 'unsafe-inline'",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
            (
                "default-src 'self' 'unsafe-inline'",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
            (
                "default-src 'none'; script-src 'self' data:",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
            (
                "default-src 'none'; script-src https:",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
            // a nonce makes the analyzers ignore 'unsafe-inline' (mozilla/http-observatory#88, #277)
            (
                "default-src 'none'; script-src 'self' 'unsafe-inline' 'nonce-abc'",
                "csp-implemented-with-no-unsafe-default-src-none",
                10,
            ),
            // no script-src and no default-src: scripts are unrestricted
            (
                "img-src 'self'; object-src 'none'",
                "csp-implemented-with-unsafe-inline",
                -20,
            ),
        ];
        for rules in BOTH {
            for (csp, result, modifier) in cases {
                let h = with(hardened(), "Content-Security-Policy", Some(csp));
                let s = run(rules, &h, true, Some(true));
                let t = result_of(&s, "content-security-policy");
                assert_eq!(
                    (t.result.as_str(), t.modifier),
                    (result, modifier),
                    "{rules:?} {csp}\n{s}"
                );
            }
            // the penalty also forfeits all bonuses (100 - 20 = 80 < 90); in classic the weak CSP
            // no longer excuses the missing X-XSS-Protection either (-10 more)
            let h = with(
                hardened(),
                "Content-Security-Policy",
                Some("default-src 'none'; script-src 'unsafe-inline'"),
            );
            let s = run(rules, &h, true, Some(true));
            let expected = if rules == Ruleset::Classic {
                (70, "B")
            } else {
                (80, "B+")
            };
            assert_eq!((s.score, s.grade), expected, "{rules:?}\n{s}");
        }
    }

    #[test]
    fn csp_other_results() {
        let cases: [(&str, &str); 9] = [
            (
                "default-src 'none'; script-src 'self' 'unsafe-eval'",
                "csp-implemented-with-unsafe-eval",
            ),
            (
                "default-src 'self'; script-src 'self' http://cdn.example.com",
                "csp-implemented-with-insecure-scheme",
            ),
            (
                "default-src 'self'; img-src http://img.example.com",
                "csp-implemented-with-insecure-scheme-in-passive-content-only",
            ),
            (
                "default-src 'none'; style-src 'unsafe-inline'",
                "csp-implemented-with-unsafe-inline-in-style-src-only",
            ),
            ("default-src 'self'", "csp-implemented-with-no-unsafe"),
            (
                "default-src 'none' 'self'",
                "csp-implemented-with-no-unsafe",
            ),
            (
                "default-src 'none'; script-src 'strict-dynamic'",
                "csp-header-invalid",
            ),
            (
                "default-src 'none'; script-src 'self'; script-src 'none'",
                "csp-header-invalid",
            ),
            ("abc", "csp-header-invalid"),
        ];
        for rules in BOTH {
            for (csp, expected) in cases {
                let h = hdrs(&[("content-security-policy", csp)]);
                let s = run(rules, &h, true, None);
                assert_eq!(
                    result_of(&s, "content-security-policy").result,
                    expected,
                    "{rules:?} {csp}\n{s}"
                );
            }
            // strict-dynamic with a nonce drops host and scheme sources from script-src
            let h = hdrs(&[(
                "content-security-policy",
                "default-src 'none'; script-src 'strict-dynamic' 'nonce-x' https: http:",
            )]);
            let s = run(rules, &h, true, None);
            assert_eq!(
                result_of(&s, "content-security-policy").result,
                "csp-implemented-with-no-unsafe-default-src-none",
                "{rules:?}\n{s}"
            );
            // over plain http, http: sources are not flagged
            let h = hdrs(&[(
                "content-security-policy",
                "default-src 'self' http://cdn.example.com",
            )]);
            let s = run(rules, &h, false, None);
            assert_eq!(
                result_of(&s, "content-security-policy").result,
                "csp-implemented-with-no-unsafe"
            );
        }
        // only v2 lower-cases directive names and tolerates repeated report-uri
        let h = hdrs(&[(
            "content-security-policy",
            "DEFAULT-SRC 'none'; report-uri /a; report-uri /b",
        )]);
        let s = run(Ruleset::MdnV2, &h, true, None);
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-implemented-but-duplicate-directives"
        );
        assert_eq!(result_of(&s, "content-security-policy").modifier, 0);
        let s = run(Ruleset::Classic, &h, true, None);
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-header-invalid"
        );
        // v2: report-only is still not implemented
        let h = hdrs(&[("content-security-policy-report-only", "default-src 'none'")]);
        let s = run(Ruleset::MdnV2, &h, true, None);
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-not-implemented-but-reporting-enabled"
        );
        // v2: two policies are intersected; the weaker one does not widen the stricter one
        let h = hdrs(&[
            (
                "content-security-policy",
                "default-src 'none'; script-src 'self'",
            ),
            (
                "content-security-policy",
                "script-src 'self' 'unsafe-inline'",
            ),
        ]);
        let s = run(Ruleset::MdnV2, &h, true, None);
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-implemented-with-no-unsafe-default-src-none",
            "{s}"
        );
    }

    /// Thousands of policies (or a few huge ones) once took minutes to intersect: now they are
    /// refused at once as an invalid CSP, from the header as from `<meta http-equiv>`.
    #[test]
    fn huge_policy_lists_are_invalid_and_fast() {
        use std::time::{Duration, Instant};

        use super::mdn::{MAX_CSP_BYTES, MAX_POLICIES};
        use crate::observatory::{score, Input};

        let many = vec!["default-src 'self'"; 32_000].join(", ");
        let long = format!("default-src 'self' {}", "https://a.example/ ".repeat(2_000));
        assert!(long.len() > MAX_CSP_BYTES);
        // The most work still read: MAX_POLICIES policies of MAX_CSP_BYTES in all, each
        // repeating the sources of the others.
        let sources: Vec<String> = (0..23).map(|i| format!("https://h{i}.example/")).collect();
        let one = format!("default-src 'self' {}", sources.join(" "));
        let at_bound = vec![one.as_str(); MAX_POLICIES].join(",");
        assert!(at_bound.len() <= MAX_CSP_BYTES, "{}", at_bound.len());
        for (csp, expected) in [
            (&many, "csp-header-invalid"),
            (&long, "csp-header-invalid"),
            (&at_bound, "csp-implemented-with-no-unsafe"),
        ] {
            let started = Instant::now();
            let s = run(
                Ruleset::MdnV2,
                &hdrs(&[("content-security-policy", csp)]),
                true,
                None,
            );
            let took = started.elapsed();
            assert!(took < Duration::from_secs(2), "{took:?}");
            assert_eq!(result_of(&s, "content-security-policy").result, expected);
        }
        let h = hdrs(&[
            ("content-type", "text/html"),
            ("content-security-policy", "default-src 'self'"),
        ]);
        let meta = "<meta http-equiv=content-security-policy content=\"img-src 'self'\">"
            .repeat(MAX_POLICIES);
        let started = Instant::now();
        let s = score(
            Ruleset::MdnV2,
            &Input {
                headers: &h,
                https: true,
                http_redirects_to_https: None,
                html: Some(&meta),
            },
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            result_of(&s, "content-security-policy").result,
            "csp-header-invalid",
            "one header policy and {MAX_POLICIES} meta ones are one too many"
        );
    }
}
