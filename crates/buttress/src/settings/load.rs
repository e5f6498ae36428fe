//! Reading settings from their sources (built-in defaults, a TOML file, the environment,
//! command-line flags; later sources win) into [`Settings`], through the one table of
//! settings (`table.rs`) and a few rules that tie settings together.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::parse::Field;
use super::table::{set, KEYS};
use super::{Environment, Settings};
pub(crate) use crate::secret::redact_userinfo;
use crate::secret::SecretKey;
use crate::session::SessionStoreKind;

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A TOML file.
    File(PathBuf),
    /// An environment variable.
    Env,
    /// A command-line flag, e.g. `--bind`.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "in {}", p.display()),
            Origin::Env => f.write_str("environment variable"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A setting that could not be read. The message names the variable, the problem and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value that does not parse or is not allowed.
    #[error("{name} ({origin}) = {value}: {problem}. Fix: {fix}")]
    Invalid {
        /// The variable or key name.
        name: String,
        /// Where the value came from.
        origin: Origin,
        /// The value, quoted (or `<redacted>` for secrets).
        value: String,
        /// What is wrong with it.
        problem: String,
        /// How to fix it.
        fix: String,
    },
    /// A key or `BUTTRESS_*` variable that Buttress does not know.
    #[error("{name} ({origin}) is not a Buttress setting{suggestion}. Fix: remove it or correct its name (`buttress check --help` lists them)")]
    Unknown {
        /// The name as given.
        name: String,
        /// Where it came from.
        origin: Origin,
        /// `; did you mean X?` or empty.
        suggestion: String,
    },
    /// The TOML file could not be read or parsed.
    #[error("cannot read settings file {path}: {reason}. Fix: check the path given to --config and the TOML syntax")]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        reason: String,
    },
}

/// Collects settings sources, then parses them into [`Settings`]. Later sources win.
///
/// ```
/// use buttress::settings::{Origin, Settings};
/// let s = Settings::loader()
///     .env_vars([("BUTTRESS_BIND", "127.0.0.1:9000")])
///     .set("bind", "127.0.0.1:9001", Origin::Flag("--bind"))
///     .load()?;
/// assert_eq!(s.bind.port(), 9001);
/// # Ok::<(), buttress::settings::SettingsError>(())
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct Loader {
    values: BTreeMap<&'static str, (String, Origin)>,
    error: Option<SettingsError>,
}

impl Loader {
    /// Reads a TOML file of `key = value` pairs (keys as in [`KEYS`]).
    pub fn file(mut self, path: &Path) -> Self {
        if self.error.is_some() {
            return self;
        }
        let origin = Origin::File(path.to_owned());
        let table = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                text.parse::<toml::Table>()
                    .map_err(|e| e.message().to_owned())
            });
        let table = match table {
            Ok(t) => t,
            Err(reason) => {
                self.error = Some(SettingsError::File {
                    path: path.to_owned(),
                    reason,
                });
                return self;
            }
        };
        for (key, value) in table {
            if key == "secret_key" || key == "secret_key_fallbacks" {
                self.error = Some(invalid(
                    &key,
                    &origin,
                    "<redacted>",
                    "secret keys do not belong in a settings file that may be committed",
                    "set SECRET_KEY in the environment or point secret_key_file at a file readable only by the service",
                ));
                return self;
            }
            let text = match toml_to_text(&value) {
                Some(t) => t,
                None => {
                    self.error = Some(invalid(
                        &key,
                        &origin,
                        &value.to_string(),
                        "tables and dates are not setting values",
                        "use a string, number, boolean or array of strings",
                    ));
                    return self;
                }
            };
            self = self.set(&key, &text, origin.clone());
        }
        self
    }

    /// Reads `BUTTRESS_*` variables and the `SECRET_KEY*` variables from the process.
    pub fn process_env(self) -> Self {
        self.env_vars(std::env::vars())
    }

    /// Reads `BUTTRESS_*` and `SECRET_KEY*` variables from the given pairs; others are ignored.
    pub fn env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (name, value) in vars {
            let name = name.as_ref();
            let key = match name {
                "SECRET_KEY"
                | "SECRET_KEY_FILE"
                | "SECRET_KEY_FALLBACKS"
                | "DATABASE_URL"
                | "REDIS_URL" => name.to_ascii_lowercase(),
                _ => match name.strip_prefix("BUTTRESS_") {
                    Some(rest) => rest.to_ascii_lowercase(),
                    None => continue,
                },
            };
            if key.starts_with("secret_key") && !name.starts_with("SECRET_KEY") {
                self.fail_unknown(name, Origin::Env);
                continue;
            }
            self = self.set_named(&key, name, value.as_ref(), Origin::Env);
        }
        self
    }

    /// Sets one value by TOML key, e.g. from a command-line flag.
    pub fn set(self, key: &str, value: &str, origin: Origin) -> Self {
        let name = match &origin {
            Origin::Env => env_name(key),
            _ => key.to_owned(),
        };
        self.set_named(key, &name, value, origin)
    }

    fn set_named(mut self, key: &str, name: &str, value: &str, origin: Origin) -> Self {
        if self.error.is_some() {
            return self;
        }
        match KEYS.iter().find(|k| k.key == key) {
            Some(k) => {
                let k = k.key;
                if value.trim().is_empty() {
                    self.values.remove(k);
                } else {
                    self.values.insert(k, (value.to_owned(), origin));
                }
            }
            None => self.fail_unknown(name, origin),
        }
        self
    }

    fn fail_unknown(&mut self, name: &str, origin: Origin) {
        let wanted = name.trim_start_matches("BUTTRESS_").to_ascii_lowercase();
        let suggestion = KEYS
            .iter()
            .map(|k| (edit_distance(&wanted, k.key), k.key))
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, k)| match origin {
                Origin::Env => format!("; did you mean {}?", env_name(k)),
                _ => format!("; did you mean {k}?"),
            })
            .unwrap_or_default();
        self.error.get_or_insert(SettingsError::Unknown {
            name: name.to_owned(),
            origin,
            suggestion,
        });
    }

    /// Parses the collected values into [`Settings`].
    pub fn load(self) -> Result<Settings, SettingsError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut s = Settings::default();
        let field = |k: &str| {
            self.values
                .get_key_value(k)
                .map(|(key, (value, origin))| Field { key, value, origin })
        };
        // Production's own defaults, before the values given win.
        if let Some(f) = field("env") {
            set(&mut s, &f)?;
        }
        let prod = s.environment == Environment::Production;
        s.debug = !prod;
        for (key, (value, origin)) in &self.values {
            set(&mut s, &Field { key, value, origin })?;
        }
        if field("https_redirect").is_none() {
            s.https_redirect = prod || s.serves_tls();
        }
        tie(&mut s, &field)?;
        Ok(s)
    }
}

/// The rules between settings: a certificate needs its key, one source of the secret key, an
/// absolute timeout no shorter than the idle one, Redis sessions need Redis.
fn tie<'a>(
    s: &mut Settings,
    field: &impl Fn(&str) -> Option<Field<'a>>,
) -> Result<(), SettingsError> {
    match (field("tls_cert"), field("tls_key")) {
        (Some(f), None) | (None, Some(f)) => {
            return Err(f.fail(
                "a TLS certificate and key must be given together",
                "set both BUTTRESS_TLS_CERT and BUTTRESS_TLS_KEY (or --tls-cert and --tls-key)",
            ))
        }
        (Some(f), Some(_)) if s.dev_tls => {
            return Err(f.fail(
                "dev_tls and a certificate file are both set",
                "use either --dev-tls or --tls-cert/--tls-key",
            ))
        }
        _ => {}
    }
    if s.session_absolute_timeout < s.session_idle_timeout {
        if let Some(f) = field("session_absolute_timeout").or_else(|| field("session_idle_timeout"))
        {
            return Err(f.fail(
                "the absolute session timeout is shorter than the idle timeout",
                "make BUTTRESS_SESSION_ABSOLUTE_TIMEOUT at least BUTTRESS_SESSION_IDLE_TIMEOUT",
            ));
        }
    }
    if s.session_store == SessionStoreKind::Redis && s.redis_url.is_none() {
        if let Some(f) = field("session_store") {
            return Err(f.fail(
                "the Redis session store needs a Redis server",
                "set REDIS_URL=redis://host:6379",
            ));
        }
    }
    match (field("secret_key"), field("secret_key_file")) {
        (Some(f), Some(_)) => {
            return Err(f.fail_redacted(
                "SECRET_KEY and SECRET_KEY_FILE are both set",
                "keep only one of them",
            ))
        }
        (None, Some(f)) => {
            let path = PathBuf::from(f.value.trim());
            let key = SecretKey::from_file(&path).map_err(|e| f.fail(&e.to_string(), e.fix()))?;
            s.secret_key = Some(key);
        }
        _ => {}
    }
    Ok(())
}

/// The environment variable of a settings key: `bind` -> `BUTTRESS_BIND`,
/// `secret_key` -> `SECRET_KEY`, `database_url` -> `DATABASE_URL`.
///
/// ```
/// assert_eq!(buttress::settings::env_name("hsts_max_age"), "BUTTRESS_HSTS_MAX_AGE");
/// assert_eq!(buttress::settings::env_name("redis_url"), "REDIS_URL");
/// ```
pub fn env_name(key: &str) -> String {
    if key.starts_with("secret_key") || key == "database_url" || key == "redis_url" {
        key.to_ascii_uppercase()
    } else {
        format!("BUTTRESS_{}", key.to_ascii_uppercase())
    }
}

pub(crate) fn invalid(
    name: &str,
    origin: &Origin,
    value: &str,
    problem: &str,
    fix: &str,
) -> SettingsError {
    SettingsError::Invalid {
        name: name.to_owned(),
        origin: origin.clone(),
        value: value.to_owned(),
        problem: problem.to_owned(),
        fix: fix.to_owned(),
    }
}

fn toml_to_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(toml_to_text)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        _ => None,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::loader().env_vars(vars.iter().copied()).load()
    }

    #[test]
    fn defaults_are_development_on_loopback() {
        let s = load(&[]).expect("defaults load");
        assert_eq!(s.environment, Environment::Development);
        assert!(s.bind.ip().is_loopback());
        assert!(s.debug);
        assert!(!s.https_redirect);
        assert!(s.secret_key.is_none());
    }

    #[test]
    fn production_turns_on_https_and_off_debug() {
        let s = load(&[("BUTTRESS_ENV", "production")]).expect("loads");
        assert!(s.https_redirect);
        assert!(!s.debug);
    }

    struct Case {
        vars: &'static [(&'static str, &'static str)],
        mentions: &'static [&'static str],
    }

    #[test]
    fn bad_values_name_variable_problem_and_fix() {
        let cases = [
            Case {
                vars: &[("BUTTRESS_BIND", "8000")],
                mentions: &["BUTTRESS_BIND", "\"8000\"", "ADDRESS:PORT"],
            },
            Case {
                vars: &[("BUTTRESS_ENV", "staging")],
                mentions: &["BUTTRESS_ENV", "development or production"],
            },
            Case {
                vars: &[("BUTTRESS_DEBUG", "maybe")],
                mentions: &["BUTTRESS_DEBUG", "true or false"],
            },
            Case {
                vars: &[("BUTTRESS_TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")],
                mentions: &["proxy.local", "CIDR"],
            },
            Case {
                vars: &[("BUTTRESS_HSTS_MAX_AGE", "forever")],
                mentions: &["BUTTRESS_HSTS_MAX_AGE", "duration"],
            },
            Case {
                vars: &[("BUTTRESS_BODY_LIMIT", "1 lightyear")],
                mentions: &["BUTTRESS_BODY_LIMIT", "1MiB"],
            },
            Case {
                vars: &[("BUTTRESS_MAX_HEADER_BYTES", "100")],
                mentions: &["8KiB"],
            },
            Case {
                vars: &[("BUTTRESS_REQUEST_TIMEOUT", "0s")],
                mentions: &["positive"],
            },
            Case {
                vars: &[("BUTTRESS_TLS_CERT", "/c.pem")],
                mentions: &["BUTTRESS_TLS_KEY"],
            },
            Case {
                vars: &[("BUTTRESS_HSTS_MAXAGE", "1")],
                mentions: &["did you mean BUTTRESS_HSTS_MAX_AGE"],
            },
            Case {
                vars: &[("BUTTRESS_COOKIE_SAME_SITE", "sometimes")],
                mentions: &["lax, strict or none"],
            },
            Case {
                vars: &[("BUTTRESS_RATELIMIT_STORAGE", "memcached://x")],
                mentions: &["redis://"],
            },
            Case {
                vars: &[("BUTTRESS_CSP", "default-src 'self'; ;;; script-src \u{1}")],
                mentions: &["BUTTRESS_CSP"],
            },
            Case {
                vars: &[("BUTTRESS_ALLOWED_HOSTS", "https://example.org/")],
                mentions: &["host name"],
            },
        ];
        for case in cases {
            let err = load(case.vars).expect_err("must be refused").to_string();
            assert!(err.contains("Fix:"), "{err}");
            for m in case.mentions {
                assert!(err.contains(m), "{:?}: {err} should mention {m}", case.vars);
            }
        }
    }

    #[test]
    fn secrets_never_appear_in_errors() {
        let err = load(&[
            ("SECRET_KEY", "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E"),
            ("SECRET_KEY_FILE", "/k"),
        ])
        .expect_err("both set")
        .to_string();
        assert!(!err.contains("q3Jx9"), "{err}");
        assert!(err.contains("<redacted>"));
    }

    #[test]
    fn url_passwords_never_appear_in_errors() {
        for (var, value) in [
            ("DATABASE_URL", "mysql://app:hunter2pw@db.internal/x"),
            ("REDIS_URL", "http://:hunter2pw@cache.internal:6379"),
            ("BUTTRESS_RATELIMIT_STORAGE", "rediss//:hunter2pw@cache"),
            (
                "BUTTRESS_RATELIMIT_STORAGE",
                "memcached://u:hunter2pw@cache/0",
            ),
        ] {
            let Err(err) = load(&[(var, value)]) else {
                continue; // accepted as it is: nothing to show
            };
            let err = err.to_string();
            assert!(!err.contains("hunter2pw"), "{var}: {err}");
        }
        assert_eq!(
            redact_userinfo("postgres://app:pw@db:5432/x?sslmode=require"),
            "postgres://***@db:5432/x?sslmode=require"
        );
        assert_eq!(
            redact_userinfo("redis://cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(redact_userinfo("rediss//:pw@cache"), "***@cache");
        assert_eq!(redact_userinfo("redis://h/p@x"), "redis://h/p@x");
    }

    #[test]
    fn smtp_url_password_never_printed() {
        let s = load(&[(
            "BUTTRESS_SMTP_URL",
            "smtps://mailer:hunter2pw@mail.example.org:465",
        )])
        .expect("loads");
        let url = s.smtp_url.as_ref().expect("set");
        assert_eq!(
            url.expose(),
            "smtps://mailer:hunter2pw@mail.example.org:465"
        );
        for shown in [format!("{s:?}"), format!("{url:?}"), url.to_string()] {
            assert!(!shown.contains("hunter2pw"), "{shown}");
        }
        assert!(url.to_string().contains("mail.example.org"));
        let err = load(&[("BUTTRESS_SMTP_URL", "smtpx://m:hunter2pw@mail")]).expect_err("refused");
        assert!(!err.to_string().contains("hunter2pw"), "{err}");
        let err = load(&[("BUTTRESS_REVEAL_QUOTA", "lots")]).expect_err("refused");
        assert!(err.to_string().contains("BUTTRESS_REVEAL_QUOTA"), "{err}");
        let err = load(&[("BUTTRESS_PUBLIC_URL", "donors.example.org/x")]).expect_err("refused");
        assert!(err.to_string().contains("origin"), "{err}");
        let err = load(&[("BUTTRESS_OPEN_REQUEST_CAP", "0")]).expect_err("refused");
        assert!(err.to_string().contains("1 or more"), "{err}");
    }

    #[test]
    fn file_then_env_then_flags() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().join("buttress.toml");
        std::fs::write(
            &dir,
            "bind = \"127.0.0.1:7000\"\nhsts_max_age = \"180d\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
        )
        .expect("write");
        let s = Settings::loader()
            .file(&dir)
            .env_vars([("BUTTRESS_HSTS_MAX_AGE", "1y")])
            .load()
            .expect("loads");
        assert_eq!(s.bind.port(), 7000);
        assert_eq!(s.hsts_max_age, humantime::parse_duration("1y").expect("1y"));
        assert_eq!(s.trusted_proxies.len(), 2);
        std::fs::write(&dir, "secret_key = \"abc\"\n").expect("write");
        let err = Settings::loader()
            .file(&dir)
            .load()
            .expect_err("refused")
            .to_string();
        assert!(err.contains("SECRET_KEY") && !err.contains("abc"), "{err}");
        std::fs::write(&dir, "bnid = \"x\"\n").expect("write");
        let err = Settings::loader()
            .file(&dir)
            .load()
            .expect_err("refused")
            .to_string();
        assert!(err.contains("did you mean bind"), "{err}");
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let s = load(&[("BUTTRESS_BIND", ""), ("SECRET_KEY", "")]).expect("loads");
        assert_eq!(s.bind.port(), 8000);
        assert!(s.secret_key.is_none());
    }
}
