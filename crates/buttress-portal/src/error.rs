//! The portal's typed errors: what the HTTP layer turns into a status code.
//!
//! | variant | meaning | HTTP status |
//! | --- | --- | --- |
//! | [`Error::Invalid`] | the input broke one or more rules; every field error listed | 422 |
//! | [`Error::NotFound`] | no such record (or not visible to this user) | 404 |
//! | [`Error::Forbidden`] | the record exists but this user may not change it | 403 |
//! | [`Error::Conflict`] | a uniqueness rule was hit where the caller can act on it | 409 |
//! | [`Error::Limit`] | a quota or cap of the account is reached (reveals, open requests) | 429 |
//! | [`Error::Unavailable`] | the database cannot be reached right now | 503 |
//! | [`Error::Internal`] | anything else; details only in the logs | 500 |
//!
//! The `Display` text of every variant is safe to show to a user: it never contains SQL, a
//! driver message or a record's contents. The underlying cause, when there is one, is kept as
//! the error's `source()` for logs.

use std::fmt;

/// One broken rule on one input field, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The form field's name, as in the HTML form and the JSON body (`email`, `password`, …).
    pub field: &'static str,
    /// What is wrong and how to fix it, in plain words.
    pub message: String,
}

impl FieldError {
    /// A field error.
    #[must_use]
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The cause kept behind [`Error::Unavailable`] and [`Error::Internal`], for logs only.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a portal operation failed. See the module docs for the status each maps to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input broke one or more rules; all of them are listed, in form order.
    #[error("some fields need attention: {}", list(.0))]
    Invalid(Vec<FieldError>),
    /// No such record.
    #[error("not found")]
    NotFound,
    /// The record exists, but only its owner may do this.
    #[error("only the owner can do this")]
    Forbidden,
    /// A uniqueness rule was hit.
    #[error("this already exists")]
    Conflict,
    /// A quota or cap of the account is reached; the text says which and what to do.
    #[error("{0}")]
    Limit(&'static str),
    /// The database cannot be reached (connection refused, closed, pool timed out).
    #[error("the database is unavailable; try again shortly")]
    Unavailable(#[source] Option<Cause>),
    /// Something unexpected; the details are in the source, for logs.
    #[error("internal error")]
    Internal(#[source] Option<Cause>),
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// The HTTP status code this error should be answered with.
    #[must_use]
    pub fn status_code(&self) -> u16 {
        match self {
            Error::Invalid(_) => 422,
            Error::NotFound => 404,
            Error::Forbidden => 403,
            Error::Conflict => 409,
            Error::Limit(_) => 429,
            Error::Unavailable(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// A stable machine-readable name of the variant (`invalid`, `not_found`, `forbidden`,
    /// `conflict`, `unavailable`, `internal`), e.g. for a problem document's type.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Invalid(_) => "invalid",
            Error::NotFound => "not_found",
            Error::Forbidden => "forbidden",
            Error::Conflict => "conflict",
            Error::Limit(_) => "limit",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// The field errors of an [`Error::Invalid`], empty for every other variant.
    #[must_use]
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            Error::Invalid(errors) => errors,
            _ => &[],
        }
    }

    /// A one-field validation error.
    #[must_use]
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::new(field, message)])
    }

    pub(crate) fn internal(cause: impl Into<Cause>) -> Self {
        Error::Internal(Some(cause.into()))
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match &e {
            sqlx::Error::RowNotFound => Error::NotFound,
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Error::Unavailable(Some(Box::new(e))),
            sqlx::Error::Database(db) => {
                // SQLSTATE class 08 (connection exception) and 57P0x (operator intervention:
                // shutdown, cannot connect now) mean "not reachable right now".
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                if code.starts_with("08") || code.starts_with("57P0") {
                    return Error::Unavailable(Some(Box::new(e)));
                }
                match db.kind() {
                    ErrorKind::UniqueViolation => Error::Conflict,
                    ErrorKind::ForeignKeyViolation => Error::NotFound,
                    _ => Error::Internal(Some(Box::new(e))),
                }
            }
            _ => Error::Internal(Some(Box::new(e))),
        }
    }
}

impl From<rusqlite::Error> for Error {
    /// A failure of a read on the calling thread (`crate::reads`) inside its row mapping: an
    /// internal error, as the same failure on the pool is.
    fn from(e: rusqlite::Error) -> Self {
        Error::Internal(Some(Box::new(e)))
    }
}

/// The portal's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn display_never_carries_the_cause() {
        let e = Error::from(sqlx::Error::Protocol("SELECT secret FROM users".into()));
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(e.status_code(), 500);
        let e = Error::from(sqlx::Error::PoolTimedOut);
        assert_eq!(e.status_code(), 503);
        assert!(!e.to_string().contains("pool"));
        let e = Error::from(sqlx::Error::RowNotFound);
        assert_eq!(e.status_code(), 404);
    }

    #[test]
    fn invalid_lists_every_field() {
        let e = Error::Invalid(vec![
            FieldError::new("email", "Enter an email address."),
            FieldError::new("password", "Use at least 12 characters."),
        ]);
        assert_eq!(e.status_code(), 422);
        assert_eq!(e.field_errors().len(), 2);
        assert!(e.to_string().contains("email: Enter"));
        assert_eq!(e.kind(), "invalid");
        // Serialises as the JSON API lists them: [{"field": …, "message": …}].
        let json = serde_json::to_value(e.field_errors()).unwrap();
        assert_eq!(json[1]["field"], "password");
    }
}
