//! Signatures of debug pages, stack traces, SQL errors and directory listings in a response body.
//!
//! Each signature is a literal, matched case-insensitively; the evidence is the matched text with
//! some context, so a reader can see it is not a false alarm.
//!
//! # Example
//!
//! ```
//! let body = "thread 'main' panicked at src/db.rs:42:9:\ncalled `Option::unwrap()`";
//! let leak = buttress_audit::leaks::find_leak(body).unwrap();
//! assert_eq!(leak.kind, "Rust panic message");
//! assert!(leak.snippet.contains("panicked at src/db.rs"));
//! ```

/// A leak found in a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// What it is, e.g. `Werkzeug interactive debugger`.
    pub kind: &'static str,
    /// The matched text with up to 60 characters either side, on one line.
    pub snippet: String,
}

/// (needle, kind), most specific first.
const SIGNATURES: &[(&str, &str)] = &[
    ("werkzeug debugger", "Werkzeug interactive debugger"),
    ("__debugger__", "Werkzeug interactive debugger"),
    (
        "the debugger caught an exception",
        "Werkzeug interactive debugger",
    ),
    (
        "you're seeing this error because you have <code>debug = true</code>",
        "Django debug page",
    ),
    (
        "you're seeing this error because you have debug = true",
        "Django debug page",
    ),
    ("traceback (most recent call last)", "Python traceback"),
    ("panicked at ", "Rust panic message"),
    ("stack backtrace:", "Rust backtrace"),
    ("rust_backtrace=", "Rust backtrace hint"),
    ("you have an error in your sql syntax", "SQL error (MySQL)"),
    ("sqlite3.operationalerror", "SQL error (SQLite)"),
    ("sqlite_error", "SQL error (SQLite)"),
    ("sqlstate[", "SQL error (PDO)"),
    ("psycopg2.", "SQL error (PostgreSQL)"),
    ("syntax error at or near", "SQL error (PostgreSQL)"),
    (
        "unclosed quotation mark after the character string",
        "SQL error (SQL Server)",
    ),
    ("ora-00933", "SQL error (Oracle)"),
    ("ora-01756", "SQL error (Oracle)"),
    ("sql error", "SQL error"),
    ("exception in thread \"", "Java stack trace"),
    ("at java.", "Java stack trace"),
    ("at org.springframework.", "Java stack trace"),
    ("<b>fatal error</b>:", "PHP error"),
    ("stack trace:\n#0 ", "PHP stack trace"),
    ("at module._compile", "Node.js stack trace"),
    ("at object.<anonymous>", "Node.js stack trace"),
    ("actioncontroller::routingerror", "Rails debug page"),
    ("server error in '/' application", "ASP.NET error page"),
];

const LISTINGS: &[&str] = &[
    "<title>index of /",
    "<h1>index of /",
    "directory listing for /",
    "<title>directory listing",
];

fn snippet(body: &str, at: usize, len: usize) -> String {
    let mut start = at.saturating_sub(60);
    while !body.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (at + len + 60).min(body.len());
    while !body.is_char_boundary(end) {
        end += 1;
    }
    body[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first stack trace, debug page or SQL error signature in `body`.
pub fn find_leak(body: &str) -> Option<Leak> {
    // ASCII lowercasing keeps byte offsets, so they index `body` too.
    let lower = body.to_ascii_lowercase();
    SIGNATURES.iter().find_map(|(needle, kind)| {
        lower.find(needle).map(|at| Leak {
            kind,
            snippet: snippet(body, at, needle.len()),
        })
    })
}

/// Whether `body` is an automatic directory listing (Apache, nginx, Python's http.server).
pub fn is_listing(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    LISTINGS
        .iter()
        .find_map(|needle| lower.find(needle).map(|at| snippet(body, at, needle.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let cases = [
            (
                "<title>TypeError // Werkzeug Debugger</title>",
                Some("Werkzeug interactive debugger"),
            ),
            (
                "Traceback (most recent call last):\n  File \"app.py\"",
                Some("Python traceback"),
            ),
            (
                "sqlite3.OperationalError: near \"'\": syntax error",
                Some("SQL error (SQLite)"),
            ),
            ("<h1>Not Found</h1><p>Request id 42</p>", None),
            ("ünïcödé panicked at src/ä.rs", Some("Rust panic message")),
        ];
        for (body, want) in cases {
            assert_eq!(find_leak(body).map(|l| l.kind), want, "{body}");
        }
        assert!(is_listing("<html><head><title>Index of /static</title>").is_some());
        assert!(is_listing("<p>an index of /things</p>").is_none());
    }
}
