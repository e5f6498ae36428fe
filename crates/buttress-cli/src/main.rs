//! The `buttress` command: `serve` (the blood-donor portal through the whole stack), `check`,
//! `keygen`, `audit` (exit codes of `audit`, 4 included: see `audit.rs` and `audit --help`).
//!
//! Exit codes: 0 success; 1 `check` found an error-level finding, or the server failed while
//! running; 2 bad command line; 3 configuration refused (a bad setting, a weak key in
//! Production, an unsafe Production setting, or a non-loopback address in Development).

// A command-line program prints its reports on standard output by design.
#![allow(clippy::print_stdout)]

mod audit;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use buttress::check::{self, Severity};
use buttress::server::{shutdown_signal, MetricsServer, ServeOptions, Server};
use buttress::settings::{Origin, Settings};
use buttress::telemetry::LogFormat;
use buttress_portal::web::{build, BuildError, BuildOptions};
use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc rather than glibc's allocator: the layered stack makes many small, short-lived
/// allocations per request, where mimalloc's thread-local free lists are markedly cheaper
/// (see `bench/RESULTS.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Secure-by-default foundation for Rust web applications.
#[derive(Debug, Parser)]
#[command(name = "buttress", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the blood-donor portal through the whole stack (Development on 127.0.0.1:8000 by
    /// default; SQLite in the data directory unless DATABASE_URL names PostgreSQL; mail over
    /// BUTTRESS_SMTP_URL, or as .eml files in the data directory's outbox/ in Development).
    Serve {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Run the deploy checklist on the effective settings (the library's `BTR-` checks and the
    /// portal's `PTL-` checks: Production needs BUTTRESS_SMTP_URL and BUTTRESS_PUBLIC_URL); exit
    /// 1 on an error-level finding.
    Check {
        #[command(flatten)]
        settings: SettingsArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print a new random 256-bit secret key (reads no settings, so a bad variable elsewhere
    /// cannot stop it).
    Keygen,
    /// Scan a live site from the outside and grade it (reads no settings).
    Audit(Box<audit::AuditArgs>),
}

/// Where the settings come from, for the commands that read them (`serve`, `check`).
#[derive(Debug, clap::Args)]
struct SettingsArgs {
    /// TOML settings file (keys as in the README's settings table); the environment wins over
    /// it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run as Production (same as BUTTRESS_ENV=production).
    #[arg(long)]
    production: bool,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on (BUTTRESS_BIND).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// With TLS: a plain-HTTP listener that redirects to HTTPS (BUTTRESS_HTTP_BIND).
    #[arg(long, value_name = "ADDR")]
    http_bind: Option<String>,
    /// PEM certificate chain (BUTTRESS_TLS_CERT).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key (BUTTRESS_TLS_KEY).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate for localhost (BUTTRESS_DEV_TLS).
    #[arg(long, conflicts_with = "tls_cert")]
    dev_tls: bool,
    /// Fill the registry with N demo donors (deterministic; demo accounts cannot sign in).
    #[arg(long, value_name = "N")]
    seed_demo: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen => {
            println!("{}", buttress::secret::generate_key_string());
            ExitCode::SUCCESS
        }
        Command::Audit(args) => {
            init_logs(LogFormat::Text);
            audit::run(&args)
        }
        Command::Check { settings, format } => match load_settings(&settings, None) {
            Ok(s) => {
                init_logs(s.log_format);
                run_check(&s, format)
            }
            Err(e) => {
                init_logs(LogFormat::Text);
                refused(&e)
            }
        },
        Command::Serve {
            settings,
            serve: args,
        } => match load_settings(&settings, Some(&args)) {
            Ok(s) => {
                init_logs(s.log_format);
                serve(&s, args.seed_demo)
            }
            Err(e) => {
                init_logs(LogFormat::Text);
                refused(&e)
            }
        },
    }
}

/// Log lines on stderr: text (coloured on a terminal) or, with `BUTTRESS_LOG_FORMAT=json`, one
/// JSON object per line with the event's fields at the top level. `RUST_LOG` filters them.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        _ => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

/// A setting that cannot be used: exit code 3.
fn refused(e: &buttress::settings::SettingsError) -> ExitCode {
    eprintln!("buttress: {e}");
    ExitCode::from(3)
}

fn load_settings(
    args: &SettingsArgs,
    serve: Option<&ServeArgs>,
) -> Result<Settings, buttress::settings::SettingsError> {
    let mut loader = Settings::loader();
    if let Some(path) = &args.config {
        loader = loader.file(path);
    }
    loader = loader.process_env();
    if args.production {
        loader = loader.set("env", "production", Origin::Flag("--production"));
    }
    if let Some(a) = serve {
        if let Some(b) = &a.bind {
            loader = loader.set("bind", b, Origin::Flag("--bind"));
        }
        if let Some(b) = &a.http_bind {
            loader = loader.set("http_bind", b, Origin::Flag("--http-bind"));
        }
        if let (Some(c), Some(k)) = (&a.tls_cert, &a.tls_key) {
            loader = loader
                .set("tls_cert", &c.to_string_lossy(), Origin::Flag("--tls-cert"))
                .set("tls_key", &k.to_string_lossy(), Origin::Flag("--tls-key"));
        }
        if a.dev_tls {
            loader = loader.set("dev_tls", "true", Origin::Flag("--dev-tls"));
        }
    }
    loader.load()
}

/// The library's checklist and the portal's own checks (`PTL-…`: mail), most severe first.
fn all_findings(settings: &Settings) -> Vec<check::Finding> {
    let mut findings = check::run(settings);
    findings.extend(buttress_portal::check::run(settings));
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

fn run_check(settings: &Settings, format: Format) -> ExitCode {
    let findings = all_findings(settings);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "environment": settings.environment.as_str(),
                "errors": errors,
                "warnings": warnings,
                "findings": findings,
            });
            println!("{doc:#}");
        }
        Format::Text => {
            let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
            for f in &findings {
                let severity = format!("{:<7}", f.severity);
                let severity = match (colour, f.severity) {
                    (false, _) => severity,
                    (true, Severity::Error) => format!("\x1b[1;31m{severity}\x1b[0m"),
                    (true, Severity::Warning) => format!("\x1b[33m{severity}\x1b[0m"),
                    (true, Severity::Info) => format!("\x1b[36m{severity}\x1b[0m"),
                };
                println!("{}  {severity}  {}  Fix: {}", f.id, f.message, f.fix);
            }
            println!(
                "{} finding(s): {errors} error(s), {warnings} warning(s) for {}",
                findings.len(),
                settings.environment.as_str()
            );
        }
    }
    if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn serve(settings: &Settings, seed_demo: Option<usize>) -> ExitCode {
    let findings = all_findings(settings);
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let opts = match ServeOptions::from_settings(settings) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("buttress: {e}");
            return ExitCode::from(3);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("buttress: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tls = opts.tls.is_some();
    let dev_cert = opts.dev_cert_path.clone();
    runtime.block_on(async move {
        let (app, portal) = match build(settings, BuildOptions::default()).await {
            Ok(built) => built,
            Err(BuildError::Startup(e)) => {
                eprintln!("buttress: {e}");
                return ExitCode::from(e.exit_code());
            }
            Err(e) => {
                eprintln!("buttress: {e}");
                return ExitCode::from(e.exit_code());
            }
        };
        if errors > 0 {
            tracing::warn!("{errors} deploy checklist error(s) would stop a Production start; run `buttress check`");
        }
        if settings.plain_http_loopback_dev() {
            tracing::info!(
                "Development over plain HTTP on loopback: cookies drop Secure and the __Host- prefix"
            );
        }
        tracing::info!(backend = ?portal.db.backend(), "portal database ready");
        if let Some(n) = seed_demo {
            match buttress_portal::seed::seed_demo(&portal.db, n).await {
                Ok(added) => tracing::info!("seeded {added} demo donor(s)"),
                Err(e) => {
                    eprintln!("buttress: seeding demo donors failed: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let telemetry = app.telemetry().clone();
        let mut opts = opts;
        opts.telemetry = telemetry.clone();
        let metrics = match settings.metrics_bind {
            None => None,
            Some(addr) => {
                let token = settings.metrics_token.clone();
                match MetricsServer::bind(addr, telemetry, token).await {
                    Ok(m) => {
                        eprintln!("buttress: metrics on http://{}/metrics", m.local_addr());
                        Some(m)
                    }
                    Err(e) => {
                        eprintln!("buttress: {e}");
                        return ExitCode::from(3);
                    }
                }
            }
        };
        let server = match Server::bind(app, opts).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("buttress: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Install the SIGTERM / Ctrl-C handlers before the listening line: a supervisor (or a
        // test) may stop the process as soon as it reads it, and an unhandled SIGTERM would
        // kill it without finishing in-flight requests.
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let early = tokio::select! {
            biased;
            () = &mut shutdown => true,
            () = std::future::ready(()) => false,
        };
        announce(server.local_addr(), tls, server.http_addr(), dev_cert);
        if !early {
            shutdown.await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
        server.shutdown().await;
        if let Some(m) = metrics {
            m.shutdown().await;
        }
        portal.db.close().await;
        ExitCode::SUCCESS
    })
}

fn announce(addr: SocketAddr, tls: bool, http: Option<SocketAddr>, dev_cert: Option<PathBuf>) {
    let scheme = if tls { "https" } else { "http" };
    let host = if addr.ip().is_loopback() && addr.is_ipv4() {
        "localhost".to_owned()
    } else {
        addr.to_string()
            .rsplit_once(':')
            .map_or(String::new(), |(h, _)| h.to_owned())
    };
    if let Some(h) = http {
        eprintln!("buttress: plain HTTP on {h} redirects to HTTPS");
    }
    if let Some(p) = dev_cert {
        eprintln!(
            "buttress: self-signed certificate for localhost written to {}",
            p.display()
        );
    }
    // Printed last: scripts and tests wait for this line.
    eprintln!("buttress: listening on {scheme}://{host}:{}/", addr.port());
}
