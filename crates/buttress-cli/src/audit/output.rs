//! What `buttress audit` prints: the report in `--format` (and `--json`), and the exit codes
//! its `--help` lists.

use std::path::PathBuf;
use std::process::ExitCode;

use buttress_audit::{report, Report};

use super::{AuditArgs, AuditFormat};

/// The exit codes, as `--help` shows them.
pub(super) const EXIT_CODES: &str = "\
Exit codes:
  0  scanned; at or above --min-grade and no regression against --baseline
  1  below --min-grade, or a regression against --baseline (each one listed on stderr)
  2  bad command line (URL, --ca-cert file, grade, --header or --cookie, ...)
  4  --baseline cannot be used: unreadable, not a one-site JSON report, of a newer format,
     or a report of another URL
A site that cannot be reached, or whose certificate does not verify, is graded F: not an error.

--ca-cert FILE trusts each certificate in FILE as a root, and also accepts one of them as the
server's own certificate when it is exactly that certificate, as the usual `openssl req -x509`
one-liner makes (CA:TRUE), after checking the host name and the validity dates.";

/// Writes the report in `--format` to `--output` or standard output, and `--json`.
pub(super) fn write(args: &AuditArgs, reports: &[Report]) -> Result<(), ExitCode> {
    let colour = args.output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let text = match (reports, args.format) {
        ([a, b], AuditFormat::Table) => report::compare_table(a, b, colour),
        ([a, b], AuditFormat::Json) => report::compare_json(a, b),
        ([a, b], AuditFormat::Html) => report::html_compare(a, b),
        ([a, b], AuditFormat::Sarif) => {
            eprintln!(
                "buttress audit: SARIF holds one site; writing the first ({})",
                b.target
            );
            report::sarif(a)
        }
        ([a, ..], AuditFormat::Table) => report::table(a, colour),
        ([a, ..], AuditFormat::Json) => report::json(a),
        ([a, ..], AuditFormat::Sarif) => report::sarif(a),
        ([a, ..], AuditFormat::Html) => report::html(a),
        ([], _) => String::new(),
    };
    let save = |p: &PathBuf, text: &str| {
        std::fs::write(p, text).map_err(|e| {
            eprintln!("buttress audit: cannot write {}: {e}", p.display());
            ExitCode::FAILURE
        })
    };
    if let (Some(p), [r, ..]) = (&args.json, reports) {
        save(p, &report::json(r))?;
    }
    match &args.output {
        Some(p) => {
            save(p, &text)?;
            if !args.quiet {
                for r in reports {
                    eprintln!(
                        "buttress audit: {} graded {} ({})",
                        r.target, r.grade, r.score
                    );
                }
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}
