//! Safe error responses: no stack trace, path, SQL or internal message leaves the process.
//!
//! Two pieces work together:
//!
//! - [`catch_panic_layer`] (tower-http's `CatchPanicLayer` with our handler) turns a panic into
//!   a bare 500 that carries a [`Problem`]; the panic message is kept aside as debug detail.
//! - [`ErrorPagesLayer`] renders every error response (status >= 400) on its way out, as HTML
//!   or `application/problem+json` chosen by the request's `Accept`, with the request id so the
//!   logs can be found. A response that carries a [`Problem`] is rendered from it; a response
//!   marked [`KeepBody`] (an application's own error page) passes untouched; any other error
//!   body is replaced by the generic page for its status. Its original text is shown as debug
//!   detail only when debug is on (Development) **and** the client is on loopback: a loopback
//!   peer (after trusted proxies), a loopback `Host` (not a DNS-rebinding page under its own
//!   name) and no forwarding header (not a tunnel relaying others).
//!
//! | response | Production | Development, loopback client |
//! |---|---|---|
//! | `Problem` | its title, detail and members | same |
//! | `KeepBody` | untouched | untouched |
//! | other 4xx/5xx | generic page for the status | generic page + original body as detail |
//! | panic | generic 500 | generic 500 + panic message |
//!
//! # Example
//!
//! ```
//! use axum::{http::StatusCode, routing::get, Router};
//! use buttress::errors::{ErrorPagesLayer, Problem};
//!
//! async fn handler() -> Result<&'static str, Problem> {
//!     Err(Problem::new(StatusCode::CONFLICT).with_detail("that name is taken"))
//! }
//! let app: Router = Router::new()
//!     .route("/", get(handler))
//!     .layer(ErrorPagesLayer::new(false));
//! ```

mod layer;
mod page;

use std::borrow::Cow;
use std::convert::Infallible;

use axum::response::{IntoResponse, IntoResponseParts, ResponseParts};
use http::{Response, StatusCode};

pub use layer::{catch_panic_layer, ErrorPages, ErrorPagesFuture, ErrorPagesLayer, PanicHandler};
pub(crate) use page::{panic_response, ErrorPage};
use page::{Format, RenderContext};

/// An error for the client, rendered as `application/problem+json` ([RFC 9457]) or HTML.
/// Everything in it is shown to the client, so put nothing internal in it.
///
/// ```
/// use buttress::errors::Problem;
/// use http::StatusCode;
/// let p = Problem::new(StatusCode::FORBIDDEN).with_kind("bad-token").with_detail("The form expired; reload and try again.");
/// assert_eq!(p.status(), StatusCode::FORBIDDEN);
/// assert_eq!(p.kind(), Some("bad-token"));
/// ```
///
/// [RFC 9457]: https://www.rfc-editor.org/rfc/rfc9457
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    title: Cow<'static, str>,
    detail: Option<String>,
    kind: Option<&'static str>,
    members: Vec<(&'static str, serde_json::Value)>,
}

impl Problem {
    /// A problem with the status's standard title.
    pub fn new(status: StatusCode) -> Self {
        Problem {
            status,
            title: Cow::Borrowed(status.canonical_reason().unwrap_or("Error")),
            detail: None,
            kind: None,
            members: Vec::new(),
        }
    }

    /// Replaces the title.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<Cow<'static, str>>) -> Self {
        self.title = title.into();
        self
    }

    /// A sentence for the user saying what happened and what to do.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// A stable machine-readable reason (`cross-site`, `missing-token`), sent as `type`
    /// `urn:buttress:<kind>` in JSON.
    #[must_use]
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = Some(kind);
        self
    }

    /// An extension member of the problem document (e.g. `errors` listing fields).
    #[must_use]
    pub fn with_member(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.members.push((name, value));
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable reason.
    pub fn kind(&self) -> Option<&'static str> {
        self.kind
    }

    /// The user-facing detail.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// An empty response of this status carrying the problem, for [`ErrorPagesLayer`] to render.
    pub fn into_empty_response<B: Default>(self) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = self.status;
        res.extensions_mut().insert(self);
        res
    }

    /// The problem as JSON.
    pub fn to_json(&self, request_id: Option<&str>) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "type": self.kind.map_or_else(|| "about:blank".to_owned(), |k| format!("urn:buttress:{k}")),
            "title": self.title,
            "status": self.status.as_u16(),
        });
        if let Some(obj) = doc.as_object_mut() {
            if let Some(d) = &self.detail {
                obj.insert("detail".into(), d.clone().into());
            }
            if let Some(k) = self.kind {
                obj.insert("reason".into(), k.into());
            }
            if let Some(id) = request_id {
                obj.insert("request_id".into(), id.into());
            }
            for (name, value) in &self.members {
                obj.insert((*name).into(), value.clone());
            }
        }
        doc
    }
}

impl IntoResponse for Problem {
    /// Renders as problem+json; [`ErrorPagesLayer`] re-renders it for the client's `Accept`.
    fn into_response(self) -> axum::response::Response {
        let mut res = self.render(Format::Json, &RenderContext::default());
        res.extensions_mut().insert(self);
        res
    }
}

/// Marks an error response whose body the application wrote for the user on purpose (a
/// validation page, its own 404), so [`ErrorPagesLayer`] keeps it.
///
/// ```
/// use axum::response::{Html, IntoResponse};
/// use buttress::errors::KeepBody;
/// use http::StatusCode;
/// let res = (StatusCode::UNPROCESSABLE_ENTITY, KeepBody, Html("<p>Check the form</p>")).into_response();
/// assert!(res.extensions().get::<KeepBody>().is_some());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KeepBody;

impl IntoResponseParts for KeepBody {
    type Error = Infallible;
    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(KeepBody);
        Ok(res)
    }
}

/// Rejection of an extractor whose layer is not installed in front of the handler: a setup
/// mistake, not the client's, so it is logged and answered with a generic 500.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{layer} is not installed in front of this handler")]
pub struct MissingLayer {
    /// The layer that should have provided the value.
    pub layer: &'static str,
}

impl IntoResponse for MissingLayer {
    fn into_response(self) -> axum::response::Response {
        tracing::error!("{self}");
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_response()
    }
}

/// Implements `FromRequestParts` for a value read from the [`RequestContext`]
/// (crate::RequestContext) that a layer filled in.
macro_rules! context_extractor {
    ($ty:ty, $layer:literal, |$ctx:ident| $get:expr) => {
        impl<S: Send + Sync> axum::extract::FromRequestParts<S> for $ty {
            type Rejection = $crate::errors::MissingLayer;
            async fn from_request_parts(
                parts: &mut http::request::Parts,
                _: &S,
            ) -> Result<Self, Self::Rejection> {
                $crate::context::RequestContext::of(&parts.extensions)
                    .and_then(|$ctx| $get)
                    .ok_or($crate::errors::MissingLayer { layer: $layer })
            }
        }
    };
}
pub(crate) use context_extractor;

/// Debug detail attached to a response (e.g. a panic's message); shown only to loopback
/// clients when debug is on.
#[derive(Debug, Clone)]
pub struct DebugDetail(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_document_members() {
        let p = Problem::new(StatusCode::FORBIDDEN)
            .with_kind("cross-site")
            .with_member("errors", serde_json::json!([{"field": "email"}]));
        let doc = p.to_json(Some("abc"));
        assert_eq!(doc["type"], "urn:buttress:cross-site");
        assert_eq!(doc["status"], 403);
        assert_eq!(doc["request_id"], "abc");
        assert_eq!(doc["errors"][0]["field"], "email");
    }
}
