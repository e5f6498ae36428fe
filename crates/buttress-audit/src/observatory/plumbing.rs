//! Shared plumbing of both rule sets: the analyzer context, the header views that the Python
//! and Node retrievers give, and the result-ordering helpers.

use std::collections::BTreeSet;

pub(super) type Raw = (&'static str, &'static str, bool);
pub(super) type Set = BTreeSet<String>;

pub(super) struct Ctx<'a> {
    pub(super) h: Headers<'a>,
    pub(super) https: bool,
    pub(super) redirect: Option<bool>,
    pub(super) html: Option<&'a str>,
    pub(super) now: i64,
}

pub(crate) fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(super) const SIX_MONTHS: i128 = 15_552_000; // both analyzers: "a white lie" below 15768000

pub(super) struct Headers<'a> {
    entries: Vec<(String, &'a str)>,
}

impl<'a> Headers<'a> {
    pub(super) fn new(raw: &'a [(String, String)]) -> Self {
        let entries = raw
            .iter()
            .map(|(n, v)| {
                (
                    n.trim().to_ascii_lowercase(),
                    v.trim_matches(|c| c == ' ' || c == '\t'),
                )
            })
            .collect();
        Headers { entries }
    }
    pub(super) fn all(&self, name: &str) -> Vec<&'a str> {
        self.entries
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .collect()
    }
    /// requests/urllib3 view: repeated fields folded with ", ".
    pub(super) fn joined(&self, name: &str) -> Option<String> {
        let v = self.all(name);
        if v.is_empty() {
            None
        } else {
            Some(v.join(", "))
        }
    }
    /// Node http view: some fields keep only the first value, the rest fold with ", ".
    pub(super) fn node(&self, name: &str) -> Option<String> {
        const FIRST_ONLY: [&str; 18] = [
            "age",
            "authorization",
            "content-length",
            "content-type",
            "etag",
            "expires",
            "from",
            "host",
            "if-modified-since",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "proxy-authorization",
            "referer",
            "retry-after",
            "server",
            "user-agent",
        ];
        if FIRST_ONLY.contains(&name) {
            self.all(name).first().map(|s| s.to_string())
        } else {
            self.joined(name)
        }
    }
}

pub(super) fn set_once(slot: &mut Option<&'static str>, value: &'static str) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

/// `only_if_worse` / `onlyIfWorse`: keep the result that is later in `order`.
pub(super) fn only_if_worse(
    new: &'static str,
    old: Option<&'static str>,
    order: &[&str],
) -> Option<&'static str> {
    match old {
        None => Some(new),
        Some(o) => {
            let pos = |x: &str| order.iter().position(|y| *y == x);
            if pos(new) > pos(o) {
                Some(new)
            } else {
                Some(o)
            }
        }
    }
}
