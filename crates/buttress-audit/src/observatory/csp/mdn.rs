//! The MDN v2 CSP parser and test (cspParser.js `parseCsp`, tests/csp.js).

use std::collections::BTreeMap;

use super::{
    csp_pass, has_nonce_or_hash, is_broad, is_broad_or_inline, CspOut, Pool, DANGEROUSLY_BROAD,
    PASSIVE_DIRECTIVES, SHORTEST_DIRECTIVE_LENGTH,
};
use crate::observatory::compat::{collation_key, decode_uri_component};
use crate::observatory::plumbing::{set_once, Ctx, Set};

const DUPLICATE_WARNINGS_KEY: &str = "_observatory_duplicate_warnings";

/// Most policies (comma-separated, from every header field and `<meta http-equiv>`) read: more
/// make the CSP invalid (`csp-header-invalid`). Intersecting them re-sorts every source kept so
/// far for each policy, so a site sending thousands would cost minutes; no real site sends
/// more than a few.
pub(in crate::observatory) const MAX_POLICIES: usize = 64;

/// Most bytes of CSP text (all policies together) read: more make the CSP invalid, like
/// [`MAX_POLICIES`], so that a few huge policies cannot do what many small ones cannot.
pub(in crate::observatory) const MAX_CSP_BYTES: usize = 32 * 1024;

/// cspParser.js pathPartMatch (called with whole sources, as upstream does).
fn path_part_match(a: &str, b: &str) -> Result<bool, ()> {
    if a.is_empty() || (a == "/" && b.is_empty()) {
        return Ok(true);
    }
    let exact = !a.ends_with('/');
    let mut la: Vec<&str> = a.split('/').collect();
    let lb: Vec<&str> = b.split('/').collect();
    if la.len() > lb.len() || (exact && la.len() != lb.len()) {
        return Ok(false);
    }
    if !exact {
        la.pop();
    }
    for (x, y) in la.iter().zip(lb.iter()) {
        if decode_uri_component(x)? != decode_uri_component(y)? {
            return Ok(false);
        }
    }
    Ok(true)
}

struct Src {
    source: String,
    /// `collation_key(&source)`, computed once: sources are sorted again for every policy.
    key: Vec<u32>,
    index: usize,
    keep: bool,
}

impl Src {
    fn new(source: String, index: usize, keep: bool) -> Src {
        Src {
            key: collation_key(&source),
            source,
            index,
            keep,
        }
    }
}

/// cspParser.js parseCsp: several policies are intersected; names are case-insensitive;
/// duplicate report-uri/report-to only produce a warning entry. More than [`MAX_POLICIES`]
/// policies or [`MAX_CSP_BYTES`] of text are refused as invalid (ours, not upstream's).
fn mdn_parse_csp(list: &[String]) -> Result<BTreeMap<String, Set>, ()> {
    if list.len() > MAX_POLICIES || list.iter().map(String::len).sum::<usize>() > MAX_CSP_BYTES {
        return Err(());
    }
    let clean: Vec<String> = list
        .iter()
        .map(|s| s.replace(['\r', '\n'], "").trim().to_string())
        .collect();
    if clean.is_empty() {
        return Ok(BTreeMap::new());
    }
    if clean
        .iter()
        .any(|s| s.is_empty() || s.encode_utf16().count() < SHORTEST_DIRECTIVE_LENGTH)
    {
        return Err(());
    }
    let mut csp: BTreeMap<String, Vec<Src>> = BTreeMap::new();
    let mut duplicates: Set = Set::new();
    for (pi, policy) in clean.iter().enumerate() {
        let mut seen: Set = Set::new();
        for entry in policy.split(';') {
            let mut tokens = entry.split_whitespace();
            let Some(first) = tokens.next() else { continue };
            let directive = first.to_lowercase();
            if !seen.insert(directive.clone()) {
                if directive == "report-uri" || directive == "report-to" {
                    duplicates.insert(directive.clone());
                } else {
                    return Err(());
                }
            }
            let keep = pi == 0;
            let mut values: Vec<Src> = tokens
                .map(|t| Src::new(t.to_lowercase(), pi, keep))
                .collect();
            if values.is_empty() && directive.ends_with("-src") {
                values.push(Src::new("'none'".to_string(), pi, keep));
            }
            let mut combined = if pi == 0 {
                values
            } else {
                // taken out and put back below: no copy of the sources kept so far
                let mut v = csp.remove(&directive).unwrap_or_default();
                v.extend(values);
                v
            };
            combined.sort_by(|a, b| a.key.cmp(&b.key));
            for i in 1..combined.len() {
                let (head, tail) = combined.split_at_mut(i);
                let (prev, cur) = (&head[i - 1], &mut tail[0]);
                if cur.index == prev.index && cur.source.starts_with(&prev.source) {
                    cur.keep = false;
                }
                if cur.index != prev.index && path_part_match(&prev.source, &cur.source)? {
                    cur.keep = true;
                }
            }
            let mut kept: Vec<Src> = combined.into_iter().filter(|s| s.keep).collect();
            if pi == 0 && clean.len() > 1 {
                for s in &mut kept {
                    s.keep = false;
                }
            }
            csp.insert(directive, kept);
        }
    }
    let mut out: BTreeMap<String, Set> = csp
        .into_iter()
        .map(|(d, srcs)| {
            let set: Set = if srcs.is_empty() {
                ["'none'".to_string()].into_iter().collect()
            } else {
                srcs.into_iter().map(|s| s.source).collect()
            };
            (d, set)
        })
        .collect();
    if !duplicates.is_empty() {
        out.insert(DUPLICATE_WARNINGS_KEY.to_string(), duplicates);
    }
    Ok(out)
}

pub(in crate::observatory) fn mdn_csp(c: &Ctx<'_>, meta: &[String]) -> CspOut {
    let split = |values: Vec<String>| -> Vec<String> {
        values
            .iter()
            .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
            .collect()
    };
    let http_policies = split(c.h.node("content-security-policy").into_iter().collect());
    let meta_policies = split(meta.to_vec());
    let all: Vec<String> = http_policies
        .iter()
        .chain(meta_policies.iter())
        .cloned()
        .collect();
    let Ok(csp) = mdn_parse_csp(&all) else {
        return CspOut::early("csp-header-invalid");
    };
    let http_only = mdn_parse_csp(&http_policies).unwrap_or_default();
    let mut meta_only = mdn_parse_csp(&meta_policies).unwrap_or_default();
    for d in ["frame-ancestors", "report-uri", "sandbox"] {
        meta_only.remove(d);
    }
    if http_only.len() + meta_only.len() == 0 {
        let report_only =
            c.h.node("content-security-policy-report-only")
                .is_some_and(|v| !v.is_empty());
        return CspOut::early(if report_only {
            "csp-not-implemented-but-reporting-enabled"
        } else {
            "csp-not-implemented"
        });
    }

    let mut pool = Pool::new(csp);
    let object = pool.slot(&["object-src", "default-src"], false);
    let script = pool.slot(&["script-src", "default-src"], false);
    let style = pool.slot(&["style-src", "default-src"], false);
    let mut result: Option<&'static str> = None;
    for idx in [script, style] {
        let set = &mut pool.sets[idx];
        if has_nonce_or_hash(set) && set.contains("'unsafe-inline'") {
            set.remove("'unsafe-inline'");
        }
    }
    {
        let set = &mut pool.sets[script];
        if has_nonce_or_hash(set) && set.contains("'strict-dynamic'") {
            set.retain(|s| {
                !(DANGEROUSLY_BROAD.iter().any(|p| s.starts_with(p))
                    || s == "'self'"
                    || s == "'unsafe-inline'")
            });
        } else if set.contains("'strict-dynamic'") {
            set_once(&mut result, "csp-header-invalid");
        }
    }
    let mut active: Vec<&String> = pool
        .dirs
        .iter()
        .filter(|(d, _)| !PASSIVE_DIRECTIVES.contains(&d.as_str()) && d.as_str() != "script-src")
        .flat_map(|(_, &i)| pool.sets[i].iter())
        .collect();
    active.extend(pool.sets[script].iter());
    let passive: Vec<&String> = PASSIVE_DIRECTIVES
        .iter()
        .filter_map(|d| pool.get(d).or_else(|| pool.get("default-src")))
        .flat_map(|s| s.iter())
        .collect();
    let (script_set, object_set, style_set) =
        (&pool.sets[script], &pool.sets[object], &pool.sets[style]);
    if script_set.iter().any(|s| is_broad_or_inline(s)) || object_set.iter().any(|s| is_broad(s)) {
        set_once(&mut result, "csp-implemented-with-unsafe-inline");
    }
    let insecure = |s: &&String| s.starts_with("http:") || s.starts_with("ftp:");
    if c.https && active.iter().any(insecure) {
        set_once(&mut result, "csp-implemented-with-insecure-scheme");
    }
    if script_set.contains("'unsafe-eval'") || style_set.contains("'unsafe-eval'") {
        set_once(&mut result, "csp-implemented-with-unsafe-eval");
    }
    if c.https && passive.iter().any(insecure) {
        set_once(
            &mut result,
            "csp-implemented-with-insecure-scheme-in-passive-content-only",
        );
    }
    if style_set.iter().any(|s| is_broad_or_inline(s)) {
        set_once(
            &mut result,
            "csp-implemented-with-unsafe-inline-in-style-src-only",
        );
    }
    if pool
        .get("default-src")
        .is_some_and(|s| s.len() == 1 && s.contains("'none'"))
    {
        set_once(
            &mut result,
            "csp-implemented-with-no-unsafe-default-src-none",
        );
    } else {
        set_once(&mut result, "csp-implemented-with-no-unsafe");
    }
    let mut result = result.unwrap_or("csp-implemented-with-no-unsafe");
    let pass = csp_pass(result);
    if pass && pool.get(DUPLICATE_WARNINGS_KEY).is_some() {
        result = "csp-implemented-but-duplicate-directives";
    }
    let mut data = pool.snapshot();
    data.remove(DUPLICATE_WARNINGS_KEY);
    CspOut {
        result,
        pass,
        data: Some(data),
    }
}
