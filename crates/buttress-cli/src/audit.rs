//! `buttress audit URL`: the live scanner (crate `buttress-audit`). Needs no settings.
//!
//! Exit codes ([`output::EXIT_CODES`], also in `--help`): 0 done, at or above `--min-grade` and no
//! regression against `--baseline`; 1 below `--min-grade` or a regression; 2 bad arguments
//! (URL, CA file, grade letter, time budget over a day, `--probe-rate-limit` path off the
//! scanned origin, a bad `--header`/`--cookie`); 4 the `--baseline` cannot be used.

mod gate;
mod options;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use buttress_audit::scan;
use buttress_audit::Report;
use clap::ValueEnum;

/// Arguments of `buttress audit`.
#[derive(Debug, clap::Args)]
#[command(after_help = output::EXIT_CODES)]
pub(crate) struct AuditArgs {
    /// The site to scan (http:// or https://).
    url: String,
    /// A second site to scan and show side by side (e.g. a default app against a hardened one).
    #[arg(long, value_name = "URL2")]
    compare: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    format: AuditFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit 1 when the grade (of every site scanned) is below this, e.g. `A` or `B+`.
    #[arg(long, value_name = "GRADE")]
    min_grade: Option<String>,
    /// Compare with a saved JSON report of the same URL (`--format json` or `--json`): exit 1
    /// and list each check that got worse, or a lower grade or score; exit 4 if it cannot be
    /// used.
    #[arg(long, value_name = "REPORT.json", conflicts_with = "compare")]
    baseline: Option<PathBuf>,
    /// Also write the JSON report to FILE, whatever --format is (e.g. the next --baseline).
    #[arg(long, value_name = "FILE", conflicts_with = "compare")]
    json: Option<PathBuf>,
    /// Send this header on every request to the URL's origin (repeatable), e.g.
    /// `Authorization: Bearer TOKEN`; never shown in any report.
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// Send this cookie on every request to the URL's origin (repeatable), e.g. a session
    /// cookie to audit signed-in pages; never shown in any report.
    #[arg(long = "cookie", value_name = "NAME=VALUE")]
    cookies: Vec<String>,
    /// No progress bar and no informational lines on stderr (errors and gate failures still
    /// print). Without it, a progress bar is drawn only when stderr is a terminal.
    #[arg(long, short)]
    quiet: bool,
    /// Requests in all (every redirect and probe counts).
    #[arg(long, default_value_t = 60, value_name = "N")]
    max_requests: u32,
    /// Time budget for the whole scan (e.g. `30s`, `2m`; at most a day).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = humantime_duration)]
    max_time: Duration,
    /// Same-host pages read for forms.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_pages: u32,
    /// Send one tokenless cross-site POST to each form found (loopback or --allow-host only).
    #[arg(long)]
    active: bool,
    /// A host besides loopback that --active and --probe-rate-limit may touch, at whatever
    /// address (repeatable).
    #[arg(long, value_name = "HOST")]
    allow_host: Vec<String>,
    /// Send a bounded burst to PATH (on the scanned origin, e.g. `/login`) and look for 429 and
    /// Retry-After (loopback or --allow-host only).
    #[arg(long, value_name = "PATH")]
    probe_rate_limit: Option<String>,
    /// Requests in the rate-limit burst.
    #[arg(long, default_value_t = 30, value_name = "N")]
    burst: u32,
    /// Trust the PEM certificate(s) in FILE (a private CA, or a self-signed certificate, also
    /// one marked CA:TRUE: accepted as the server's own if it is exactly that certificate, for
    /// its names and dates).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Do not verify certificates (reported as a warning).
    #[arg(long)]
    insecure: bool,
    /// Port of the plain-HTTP listener whose redirect to HTTPS is tested (default 80 when the
    /// URL has no port).
    #[arg(long, value_name = "PORT")]
    http_port: Option<u16>,
    /// Connect to HOST at ADDR instead of asking DNS, e.g. `staging.example.org=203.0.113.7`
    /// (repeatable; the URL's port is kept). An ADDR that is not loopback keeps --active and
    /// --probe-rate-limit off HOST unless --allow-host names it.
    #[arg(long, value_name = "HOST=ADDR", value_parser = host_addr)]
    resolve: Vec<(String, std::net::SocketAddr)>,
    /// Port of URL2's plain-HTTP listener (with --compare).
    #[arg(long, value_name = "PORT", requires = "compare")]
    compare_http_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuditFormat {
    /// A table for people (colour on a terminal).
    Table,
    /// JSON: grade, score, findings.
    Json,
    /// SARIF 2.1.0 for code scanning.
    Sarif,
    /// A self-contained HTML page.
    Html,
}

fn host_addr(s: &str) -> Result<(String, std::net::SocketAddr), String> {
    let (host, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected HOST=ADDR, got {s:?}"))?;
    let ip: std::net::IpAddr = addr
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("not an IP address: {addr:?}"))?;
    if host.is_empty() {
        return Err(format!("expected HOST=ADDR, got {s:?}"));
    }
    Ok((host.to_ascii_lowercase(), (ip, 0).into()))
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], s[i..].trim()));
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s or m)")),
    };
    let d = Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())?;
    if d > scan::MAX_TIME {
        return Err(format!(
            "{s:?} is longer than a day, the longest time budget (1440m)"
        ));
    }
    Ok(d)
}

/// Runs the audit, prints the report and applies the gates (`--min-grade`, `--baseline`).
pub(crate) fn run(args: &AuditArgs) -> ExitCode {
    let gate = match gate::Gate::load(args) {
        Ok(g) => g,
        Err(code) => return code,
    };
    let opts = match options::scan_options(args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("buttress audit: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<Vec<Report>, scan::ScanError> = runtime.block_on(async {
        let mut out = vec![scan::audit(&args.url, &opts).await?];
        if let Some(u2) = &args.compare {
            let mut o2 = opts.clone();
            o2.http_port = args.compare_http_port;
            out.push(scan::audit(u2, &o2).await?);
        }
        Ok(out)
    });
    let reports = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("buttress audit: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(code) = output::write(args, &reports) {
        return code;
    }
    gate.apply(&reports, args.quiet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(humantime_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(humantime_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(humantime_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(humantime_duration("7"), Ok(Duration::from_secs(7)));
        assert!(humantime_duration("x").is_err());
        assert_eq!(humantime_duration("1440m"), Ok(scan::MAX_TIME));
        // 9999999999999999999s fits a Duration but overflowed the scan's deadline.
        for too_long in ["1441m", "86401s", "9999999999999999999s"] {
            let e = humantime_duration(too_long).expect_err(too_long);
            assert!(e.contains("longer than a day"), "{e}");
        }
        let (h, a) = host_addr("Staging.Example.org=203.0.113.7").expect("parses");
        assert_eq!(
            (h.as_str(), a.ip().to_string()),
            ("staging.example.org", "203.0.113.7".into())
        );
        assert!(
            host_addr("x=y").is_err() && host_addr("=1.2.3.4").is_err() && host_addr("x").is_err()
        );
    }
}
