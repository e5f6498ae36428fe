//! [`MetricsToken`]: the bearer token `/metrics` asks for, compared in constant time and never
//! printed.

use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The fewest characters a metrics token may have.
///
/// ```
/// assert_eq!(buttress::telemetry::MIN_TOKEN_CHARS, 16);
/// ```
pub const MIN_TOKEN_CHARS: usize = 16;

/// The bearer token of the metrics listener (`BUTTRESS_METRICS_TOKEN`). Its `Debug` shows no
/// part of it; [`MetricsToken::matches`] compares in constant time.
///
/// ```
/// use buttress::telemetry::MetricsToken;
/// let t: MetricsToken = "s3cret-scrape-token-0123".parse()?;
/// assert!(t.matches(b"s3cret-scrape-token-0123"));
/// assert!(!t.matches(b"s3cret-scrape-token-0124"));
/// assert_eq!(format!("{t:?}"), "MetricsToken(..)");
/// assert!("short".parse::<MetricsToken>().is_err());
/// # Ok::<(), buttress::telemetry::MetricsTokenError>(())
/// ```
#[derive(Clone)]
pub struct MetricsToken(Zeroizing<String>);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

/// A metrics token that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsTokenError {
    /// Fewer than [`MIN_TOKEN_CHARS`] characters.
    #[error("the metrics token is shorter than {MIN_TOKEN_CHARS} characters; make one with `openssl rand -hex 32`")]
    TooShort,
    /// A character a bearer token cannot carry (RFC 6750: letters, digits, `-._~+/`, trailing `=`).
    #[error("the metrics token has a character a bearer token cannot carry (use letters, digits and -._~+/)")]
    BadCharacter,
}

impl std::str::FromStr for MetricsToken {
    type Err = MetricsTokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s.trim_end_matches('=');
        if !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            return Err(MetricsTokenError::BadCharacter);
        }
        if s.chars().count() < MIN_TOKEN_CHARS {
            return Err(MetricsTokenError::TooShort);
        }
        Ok(MetricsToken(Zeroizing::new(s.to_owned())))
    }
}

impl MetricsToken {
    /// Whether `given` is this token, in time that does not depend on where they differ.
    pub fn matches(&self, given: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(given))
    }

    /// Whether an `Authorization` header value is `Bearer <this token>` (scheme
    /// case-insensitive).
    ///
    /// ```
    /// let t: buttress::telemetry::MetricsToken = "0123456789abcdef".parse()?;
    /// assert!(t.authorizes(Some(b"Bearer 0123456789abcdef")));
    /// assert!(t.authorizes(Some(b"bearer 0123456789abcdef")));
    /// assert!(!t.authorizes(Some(b"Basic 0123456789abcdef")));
    /// assert!(!t.authorizes(None));
    /// # Ok::<(), buttress::telemetry::MetricsTokenError>(())
    /// ```
    pub fn authorizes(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        match value.split_at_checked(7) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer ") => {
                self.matches(rest.trim_ascii())
            }
            _ => false,
        }
    }
}
