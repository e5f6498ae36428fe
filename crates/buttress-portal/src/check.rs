//! The portal's own deploy checks, beside the library's ([`buttress::check`]): `buttress
//! check` prints both, and [`crate::web::build`] refuses to start in Production on an error.
//!
//! | id | severity | finding |
//! |---|---|---|
//! | `PTL-E001` | error | Production without `BUTTRESS_SMTP_URL`: no verification or reset mail could go out |
//! | `PTL-E002` | error | Production without `BUTTRESS_PUBLIC_URL`: links in mail would be built from the request's `Host` |
//! | `PTL-W001` | warning | `BUTTRESS_SMTP_URL` sends without TLS to a host that is not loopback |
//!
//! ```
//! use buttress::settings::Settings;
//! let prod = Settings::loader().env_vars([("BUTTRESS_ENV", "production")]).load()?;
//! let ids: Vec<_> = buttress_portal::check::run(&prod).into_iter().map(|f| f.id).collect();
//! assert!(ids.contains(&"PTL-E001") && ids.contains(&"PTL-E002"));
//! assert!(buttress_portal::check::run(&Settings::default()).is_empty());
//! # Ok::<(), buttress::settings::SettingsError>(())
//! ```

use buttress::check::{Finding, Severity};
use buttress::settings::{Environment, Settings};

/// The portal's findings for `s`, most severe first.
#[must_use]
pub fn run(s: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let prod = s.environment == Environment::Production;
    if prod && s.smtp_url.is_none() {
        out.push(Finding {
            id: "PTL-E001",
            severity: Severity::Error,
            message: "no mail server: accounts could not be verified and passwords not reset".into(),
            fix: "set BUTTRESS_SMTP_URL=smtps://user:password@mail.example.org:465 (and BUTTRESS_MAIL_FROM)".into(),
        });
    }
    if prod && s.public_url.is_none() {
        out.push(Finding {
            id: "PTL-E002",
            severity: Severity::Error,
            message: "links in mail would be built from the request's Host header".into(),
            fix: "set BUTTRESS_PUBLIC_URL=https://donors.example.org".into(),
        });
    }
    if let Some(url) = &s.smtp_url {
        let text = url.expose().to_ascii_lowercase();
        let tls = text.starts_with("smtps://") || text.contains("tls=required");
        let host = text
            .split_once("://")
            .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, h)| h))
            .unwrap_or_default();
        let loopback = ["localhost", "127.", "[::1]"]
            .iter()
            .any(|l| host.starts_with(l));
        if !tls && !loopback {
            out.push(Finding {
                id: "PTL-W001",
                severity: Severity::Warning,
                message: format!("mail to {url} may travel without TLS"),
                fix: "use smtps://…:465 or add ?tls=required to an smtp:// URL".into(),
            });
        }
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}
