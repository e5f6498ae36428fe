//! The classic CSP parser and test (headers.py `__parse_csp` and `content_security_policy`).

use std::collections::BTreeMap;

use super::{
    csp_pass, has_nonce_or_hash, is_broad, is_broad_or_inline, CspOut, Pool, DANGEROUSLY_BROAD,
    PASSIVE_DIRECTIVES, SHORTEST_DIRECTIVE_LENGTH,
};
use crate::observatory::plumbing::{set_once, Set};

/// headers.py __parse_csp: directive names are case-sensitive here, sources are lowercased,
/// a directive without sources means 'none', repeated directives make the header invalid.
fn classic_parse_csp(raw: &str) -> Result<BTreeMap<String, Set>, ()> {
    let s = raw.replace(['\r', '\n'], "");
    let s = s.trim();
    if s.chars().count() < SHORTEST_DIRECTIVE_LENGTH {
        return Err(());
    }
    let mut csp = BTreeMap::new();
    for part in s.split(';').filter(|p| !p.is_empty()) {
        let mut tokens = part.split_whitespace();
        let Some(directive) = tokens.next() else {
            continue;
        };
        let mut values: Set = tokens.map(|t| t.to_lowercase()).collect();
        if values.is_empty() {
            values.insert("'none'".to_string());
        }
        if csp.insert(directive.to_string(), values).is_some() {
            return Err(());
        }
    }
    Ok(csp)
}

fn python_repr_len(map: &BTreeMap<String, Vec<String>>) -> usize {
    let mut len = 2;
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            len += 2;
        }
        len += k.chars().count() + 2 + 2 + 2;
        len +=
            v.iter().map(|s| s.chars().count() + 2).sum::<usize>() + 2 * v.len().saturating_sub(1);
    }
    len
}

pub(in crate::observatory) fn classic_csp(
    https: bool,
    http: Option<&str>,
    meta: Option<&str>,
) -> CspOut {
    let parse = |s: Option<&str>| s.map(classic_parse_csp).transpose();
    let (Ok(http_p), Ok(meta_p)) = (parse(http), parse(meta)) else {
        return CspOut::early("csp-header-invalid");
    };
    if http_p.is_none() && meta_p.is_none() {
        return CspOut::early("csp-not-implemented");
    }
    let http_nonempty = http_p.as_ref().is_some_and(|m| !m.is_empty());
    let meta_nonempty = meta_p.as_ref().is_some_and(|m| !m.is_empty());
    let csp: BTreeMap<String, Set> = if http_nonempty && meta_nonempty {
        // union of the two policies, as the analyzer does
        let (a, b) = (http_p.unwrap_or_default(), meta_p.unwrap_or_default());
        let mut u = a.clone();
        for (k, v) in b {
            u.entry(k).or_default().extend(v);
        }
        u
    } else if http_nonempty {
        http_p.unwrap_or_default()
    } else {
        meta_p.or(http_p).unwrap_or_default()
    };

    let mut pool = Pool::new(csp);
    let object = pool.slot(&["object-src", "default-src"], true);
    let script = pool.slot(&["script-src", "default-src"], true);
    let style = pool.slot(&["style-src", "default-src"], true);
    let mut result: Option<&'static str> = None;

    // 'unsafe-inline' is ignored when a nonce or hash is present (issues #88, #277)
    for idx in [script, style] {
        let set = &mut pool.sets[idx];
        if has_nonce_or_hash(set) && set.contains("'unsafe-inline'") {
            set.remove("'unsafe-inline'");
        }
    }
    let mut strict_dynamic = false;
    {
        let set = &mut pool.sets[script];
        if has_nonce_or_hash(set) && set.contains("'strict-dynamic'") {
            set.retain(|s| {
                !(DANGEROUSLY_BROAD.iter().any(|p| s.starts_with(p))
                    || s == "'self'"
                    || s == "'unsafe-inline'")
            });
            strict_dynamic = true;
        } else if set.contains("'strict-dynamic'") {
            set_once(&mut result, "csp-header-invalid");
        }
    }

    // note: `directive not in 'script-src'` is a substring test in the original
    let mut active: Vec<&String> = pool
        .dirs
        .iter()
        .filter(|(d, _)| {
            !PASSIVE_DIRECTIVES.contains(&d.as_str()) && !"script-src".contains(d.as_str())
        })
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
    if https
        && active
            .iter()
            .any(|s| s.contains("http:") || s.contains("ftp:"))
        && !strict_dynamic
    {
        set_once(&mut result, "csp-implemented-with-insecure-scheme");
    }
    if script_set.contains("'unsafe-eval'") || style_set.contains("'unsafe-eval'") {
        set_once(&mut result, "csp-implemented-with-unsafe-eval");
    }
    if https
        && passive
            .iter()
            .any(|s| s.contains("http:") || s.contains("ftp:"))
    {
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
    let default_none = pool
        .get("default-src")
        .is_some_and(|s| s.len() == 1 && s.contains("'none'"));
    if default_none {
        set_once(
            &mut result,
            "csp-implemented-with-no-unsafe-default-src-none",
        );
    } else {
        set_once(&mut result, "csp-implemented-with-no-unsafe");
    }
    let result = result.unwrap_or("csp-implemented-with-no-unsafe");
    let mut data = pool.snapshot();
    if python_repr_len(&data) >= 32768 {
        data = BTreeMap::new();
    }
    CspOut {
        result,
        pass: csp_pass(result),
        data: Some(data),
    }
}
