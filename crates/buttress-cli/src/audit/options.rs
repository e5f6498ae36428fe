//! From `buttress audit`'s flags to the scanner's [`Options`]; a bad flag is exit code 2.

use std::process::ExitCode;

use buttress_audit::scan::Options;
use buttress_audit::sign_in::SignIn;

use super::AuditArgs;

/// The scan options for `args`, or exit code 2 with the reason on standard error (never a
/// `--header` or `--cookie` value).
pub(super) fn scan_options(args: &AuditArgs) -> Result<Options, ExitCode> {
    let bad = |m: String| {
        eprintln!("buttress audit: {m}");
        ExitCode::from(2)
    };
    let ca = match &args.ca_cert {
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|e| bad(format!("cannot read --ca-cert {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let mut sign_in = SignIn::new();
    for h in &args.headers {
        sign_in = sign_in.header_arg(h).map_err(|e| bad(e.to_string()))?;
    }
    for c in &args.cookies {
        sign_in = sign_in.cookie_arg(c).map_err(|e| bad(e.to_string()))?;
    }
    if args.insecure {
        eprintln!("buttress audit: WARNING: --insecure: certificates are not verified; the TLS check only warns");
        if !sign_in.is_empty() {
            eprintln!("buttress audit: WARNING: --insecure with --header/--cookie: they go to whoever answers for the URL's origin, unverified");
        }
    }
    let mut opts = Options::new();
    opts.max_requests = args.max_requests;
    opts.max_time = args.max_time;
    opts.max_pages = args.max_pages;
    opts.active = args.active;
    opts.allow_hosts = args.allow_host.clone();
    opts.rate_limit_path = args.probe_rate_limit.clone();
    opts.burst = args.burst;
    opts.ca_cert_pem = ca;
    opts.insecure = args.insecure;
    opts.http_port = args.http_port;
    opts.resolve = args.resolve.clone();
    opts.sign_in = sign_in;
    opts.progress = !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    Ok(opts)
}
