//! The steps of [`Stack::call`](super::Stack), each calling the plain functions of the concern
//! that owns it, and the way out ([`finish`]).

// A step that refuses returns its response by value (`Err(Response)`): boxing it would cost
// an allocation per refusal, and the admitted path only ever writes its small `Ok`.
#![allow(clippy::result_large_err)]

use std::convert::Infallible;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use http::{HeaderValue, Request, StatusCode};
use tokio::time::Instant;
use tower_service::Service;
use tracing::Instrument as _;

use super::head::Head;
use super::Plan;
use crate::context::{CspNonce, RequestContext};
use crate::errors::{panic_response, ErrorPage, Problem};
use crate::ratelimit::layer::{
    add_headers_present, admit, admit_head, admit_later, Admission, Config as Limit,
};
use crate::ratelimit::overflow::Aggregate;
use crate::ratelimit::Decision;
use crate::session::Session;
use crate::telemetry::{Refusal, StoreKind};

/// What the way out needs, gathered on the way in.
/// [`Fields`] in a box: the stack's future holds this and moves a few times on its way to the
/// connection, and a pointer moves cheaper than 350 bytes.
pub(crate) struct Out(Box<Fields>);

impl std::ops::Deref for Out {
    type Target = Fields;
    fn deref(&self) -> &Fields {
        &self.0
    }
}

impl std::ops::DerefMut for Out {
    fn deref_mut(&mut self) -> &mut Fields {
        &mut self.0
    }
}

pub(crate) struct Fields {
    plan: Arc<Plan>,
    id: Option<HeaderValue>,
    page: ErrorPage,
    nonce: CspNonce,
    client: Option<IpAddr>,
    https: bool,
    global: Option<Decision>,
    route: Option<(Arc<Limit>, Decision)>,
    session: Option<Session>,
    csrf_checked: bool,
    method: http::Method,
    /// What refused the request, if a step did: counted once, on the way out.
    refusal: Option<Refusal>,
    /// The application was called (its router timed the request).
    routed: bool,
    pub(super) deadline: Instant,
    pub(super) span: tracing::Span,
}

impl Out {
    /// The application is called: its router times the request.
    pub(super) fn mark_routed(&mut self) {
        self.routed = true;
    }

    /// Step 1: a fresh request id (on `req`), the span and the deadline, and what an error
    /// page would need from the request.
    pub(super) fn new(plan: &Arc<Plan>, req: &mut Request<Body>, head: &Head) -> Out {
        let deadline = Instant::now() + plan.timeout;
        let (id, nonce) = crate::request_id::assign_with_nonce(req.headers_mut());
        let span = tracing::debug_span!(
            "request",
            method = %req.method(),
            uri = %req.uri(),
            version = ?req.version(),
        );
        Out(Box::new(Fields {
            plan: plan.clone(),
            page: ErrorPage::from_head(
                head.accept.clone(),
                plan.debug.then(|| page_host(req, head)).flatten(),
                head.relayed,
                plan.debug,
            ),
            id,
            nonce,
            client: None,
            https: false,
            global: None,
            route: None,
            session: None,
            csrf_checked: false,
            method: req.method().clone(),
            refusal: None,
            routed: false,
            deadline,
            span,
        }))
    }
}

/// The host an error page checks for a loopback name: `Host`, else the target's authority
/// (HTTP/2 carries it there).
fn page_host(req: &Request<Body>, head: &Head) -> Option<HeaderValue> {
    head.host.clone().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    })
}

/// Steps 2-3: the proxy's resolution of client, scheme and host (the [`RequestContext`] is
/// inserted here, once), and the HTTPS redirect.
pub(super) fn enter(
    plan: &Plan,
    req: &mut Request<Body>,
    out: &mut Out,
    host: Option<&HeaderValue>,
) -> Result<(), Response> {
    let resolved = match crate::proxy::resolve_request_with_host(&plan.proxy, req, host) {
        Ok(resolved) => resolved,
        Err((rejection, peer)) => {
            out.client = peer;
            out.refusal = Some(proxy_refusal(rejection));
            return Err(rejection.into_response());
        }
    };
    out.https = resolved.origin.is_https();
    out.client = Some(resolved.client.0);
    req.extensions_mut().insert(RequestContext {
        request_id: out.id.clone(),
        client: out.client,
        origin: Some(resolved.origin),
        nonce: Some(out.nonce),
        session: None,
    });
    if let Some(https) = &plan.https {
        let origin = crate::context::origin_of(req.extensions());
        if let Some(res) = crate::https::redirect_if_plain(https, req, origin) {
            out.refusal = Some(Refusal::HttpsRedirect);
            return Err(res);
        }
    }
    Ok(())
}

fn proxy_refusal(rejection: crate::proxy::ProxyRejection) -> Refusal {
    use crate::proxy::ProxyRejection as R;
    match rejection {
        R::MissingHost | R::BadHost | R::HostNotAllowed => Refusal::ProxyHost,
        R::NoPeerAddress => Refusal::ProxyPeer,
        _ => Refusal::ProxyHeader,
    }
}

/// The limits that need a round trip to their store (Redis) or run in shadow mode.
#[derive(Default)]
pub(super) struct Pending {
    global: Option<(String, Aggregate, u64)>,
    /// The path's limit, not yet checked because the global one is pending (it must not count
    /// a request the global limit refuses).
    route_unchecked: Option<Arc<Limit>>,
    route: Option<(Arc<Limit>, String, Aggregate, u64)>,
}

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.global.is_none() && self.route_unchecked.is_none() && self.route.is_none()
    }
}

/// Step 4 as far as it goes without waiting: the global limit, then the path's own (counted
/// only when the global one admits).
pub(super) fn limits_now(
    plan: &Plan,
    req: &Request<Body>,
    out: &mut Out,
) -> Result<Pending, Response> {
    let mut pending = Pending::default();
    let (path, extensions) = (req.uri().path(), req.extensions());
    if let Some(global) = &plan.global {
        match admit_head(global, path, extensions).unwrap_or_else(|| whole_head(global, req)) {
            Admission::Pass => {}
            Admission::Allowed(decision) => out.global = Some(decision),
            Admission::Refused(res) => {
                out.refusal = Some(Refusal::GlobalLimit);
                return Err(res);
            }
            Admission::Later { key, agg, cost } => pending.global = Some((key, agg, cost)),
        }
    }
    if let Some(route) = plan.routes.find(path) {
        if pending.global.is_some() {
            pending.route_unchecked = Some(route.clone());
        } else {
            let admission =
                admit_head(route, path, extensions).unwrap_or_else(|| whole_head(route, req));
            route_admission(plan, route, admission, out, &mut pending)?;
        }
    }
    Ok(pending)
}

/// [`admit`] for a limit with a function of the whole head: a copy of the head to ask it with
/// (the limits `Buttress` makes never have one).
fn whole_head(limit: &Limit, req: &Request<Body>) -> Admission {
    let mut head = Request::new(());
    *head.method_mut() = req.method().clone();
    *head.uri_mut() = req.uri().clone();
    *head.version_mut() = req.version();
    *head.headers_mut() = req.headers().clone();
    *head.extensions_mut() = req.extensions().clone();
    admit(limit, &head.into_parts().0)
}

fn route_admission(
    plan: &Plan,
    route: &Arc<Limit>,
    admission: Admission,
    out: &mut Out,
    pending: &mut Pending,
) -> Result<(), Response> {
    match admission {
        Admission::Pass => {}
        Admission::Allowed(decision) => out.route = Some((route.clone(), decision)),
        Admission::Refused(res) => {
            let i = plan.routes.position(route).unwrap_or(usize::from(u16::MAX));
            out.refusal = Some(Refusal::RouteLimit(u16::try_from(i).unwrap_or(u16::MAX)));
            return Err(res);
        }
        Admission::Later { key, agg, cost } => {
            pending.route = Some((route.clone(), key, agg, cost));
        }
    }
    Ok(())
}

/// Step 4 for the limits [`limits_now`] left pending.
async fn limits_later(
    pending: Pending,
    plan: &Plan,
    parts: &http::request::Parts,
    out: &mut Out,
) -> Result<(), Response> {
    let mut pending = pending;
    if let (Some((key, agg, cost)), Some(global)) = (pending.global.take(), &plan.global) {
        let admission = admit_later(global, &key, agg, cost).await;
        store_health(plan, &admission);
        match admission {
            Admission::Refused(res) => {
                out.refusal = Some(Refusal::GlobalLimit);
                return Err(res);
            }
            Admission::Allowed(decision) => out.global = Some(decision),
            Admission::Pass | Admission::Later { .. } => {}
        }
    }
    if let Some(route) = pending.route_unchecked.take() {
        let admission = admit(&route, parts);
        route_admission(plan, &route, admission, out, &mut pending)?;
    }
    if let Some((route, key, agg, cost)) = pending.route.take() {
        let mut none = Pending::default();
        let admission = admit_later(&route, &key, agg, cost).await;
        store_health(plan, &admission);
        route_admission(plan, &route, admission, out, &mut none)?;
    }
    Ok(())
}

/// What a check with a round trip says of its store: a decision made by the failure policy
/// (a memory fallback's, or a fail-closed 503) is a store error.
fn store_health(plan: &Plan, admission: &Admission) {
    let telemetry = plan.telemetry.telemetry();
    let failed = match admission {
        Admission::Allowed(decision) => decision.degraded(),
        Admission::Refused(res) => res.status() == StatusCode::SERVICE_UNAVAILABLE,
        Admission::Pass | Admission::Later { .. } => return,
    };
    if failed {
        telemetry.store_error(StoreKind::RateLimit);
    }
    telemetry.store_degraded(StoreKind::RateLimit, failed);
}

/// Steps 5-6: the body limit (a declared length over it is refused at once; a body without one
/// is cut off where it passes it), then the lazy session.
pub(super) fn body_and_session(
    plan: &Plan,
    req: &mut Request<Body>,
    out: &mut Out,
    head: Head,
) -> Result<(), Response> {
    let declared = head
        .content_length
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > plan.body_limit as u64) {
        out.refusal = Some(Refusal::BodyTooLarge);
        return Err(too_large());
    }
    if !http_body::Body::is_end_stream(req.body()) {
        let body = std::mem::take(req.body_mut());
        *req.body_mut() = Body::new(http_body_util::Limited::new(body, plan.body_limit));
    }
    if let Some(session) = &plan.session {
        let seen = crate::session::Seen {
            cookie: head.cookie,
            user_agent: head.user_agent,
        };
        out.session = Some(crate::session::begin_seen(session, req, out.client, seen));
    }
    Ok(())
}

fn too_large() -> Response {
    Problem::new(StatusCode::PAYLOAD_TOO_LARGE)
        .with_detail("The request body is larger than this site accepts.")
        .into_empty_response()
}

/// What step 6's CSRF check needs.
pub(super) enum Csrf {
    /// A safe method or an exempt path.
    Pass,
    /// Refused by the origin verdict (or no session to check against).
    Refuse(Response),
    /// The origin passed; the token must be read and checked (a boxed future).
    CheckToken,
}

/// The synchronous half of the CSRF check: whether `req` is checked, and the origin verdict.
pub(super) fn csrf_now(plan: &Plan, req: &Request<Body>, out: &mut Out) -> Csrf {
    if !crate::csrf::needs_check(&plan.csrf, req) {
        return Csrf::Pass;
    }
    out.csrf_checked = true;
    let origin = crate::context::origin_of(req.extensions());
    if let Err(rejection) = crate::csrf::origin_verdict(&plan.csrf, req.headers(), origin) {
        out.refusal = Some(Refusal::csrf(rejection.reason()));
        return Csrf::Refuse(crate::csrf::Refusal::Csrf(rejection).into_quiet_response());
    }
    if out.session.is_none() {
        tracing::error!("the CSRF check needs sessions");
        return Csrf::Refuse(Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_response());
    }
    Csrf::CheckToken
}

/// The rest of a request whose limits wait for their store: steps 4-7 and the way out.
pub(super) async fn slow<S>(
    plan: Arc<Plan>,
    inner: S,
    req: Request<Body>,
    pending: Pending,
    head: Head,
    mut out: Out,
) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let span = out.span.clone();
    let res = async {
        let (parts, body) = req.into_parts();
        if let Err(res) = limits_later(pending, &plan, &parts, &mut out).await {
            return res;
        }
        let mut req = Request::from_parts(parts, body);
        if let Err(res) = body_and_session(&plan, &mut req, &mut out, head) {
            return res;
        }
        match csrf_now(&plan, &req, &mut out) {
            Csrf::Pass => {
                out.routed = true;
                call_guarded(inner, req, out.deadline).await
            }
            Csrf::Refuse(res) => res,
            Csrf::CheckToken => checked_call(&plan, inner, req, &mut out).await,
        }
    }
    .instrument(span)
    .await;
    finish(out, res).await
}

/// The rest of an unsafe request whose origin passed: the token, the application, the way out.
pub(super) async fn slow_csrf<S>(
    plan: Arc<Plan>,
    inner: S,
    req: Request<Body>,
    mut out: Out,
) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let span = out.span.clone();
    let res = checked_call(&plan, inner, req, &mut out)
        .instrument(span)
        .await;
    finish(out, res).await
}

async fn checked_call<S>(plan: &Plan, inner: S, req: Request<Body>, out: &mut Out) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    let Some(session) = &out.session else {
        return Problem::new(StatusCode::INTERNAL_SERVER_ERROR).into_response();
    };
    let check = crate::csrf::check_token(&plan.csrf, req, session);
    let (req, verdict) = match tokio::time::timeout_at(out.deadline, check).await {
        Ok(checked) => checked,
        Err(_) => return timed_out(),
    };
    match verdict {
        Ok(()) => {
            out.routed = true;
            call_guarded(inner, req, out.deadline).await
        }
        Err(refusal) => {
            if let Some(reason) = refusal.csrf_reason() {
                out.refusal = Some(Refusal::csrf(reason));
            }
            refusal.into_quiet_response()
        }
    }
}

/// Step 7 in a boxed future: the application under the deadline and the panic catcher.
async fn call_guarded<S>(mut inner: S, req: Request<Body>, deadline: Instant) -> Response
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(req))) {
        Ok(fut) => fut,
        Err(panic) => return panic_response(panic),
    };
    match tokio::time::timeout_at(deadline, AssertUnwindSafe(fut).catch_unwind()).await {
        Ok(Ok(Ok(res))) => res,
        Ok(Ok(Err(never))) => match never {},
        Ok(Err(panic)) => panic_response(panic),
        Err(_) => timed_out(),
    }
}

/// The refusal a response made past the steps stands for: the deadline's 408, a body over the
/// limit (413, from the application's extractor or the CSRF form reader), the session store's
/// 503.
fn answered_refusal(res: &Response) -> Option<Refusal> {
    match res.status() {
        StatusCode::REQUEST_TIMEOUT => Some(Refusal::Timeout),
        StatusCode::PAYLOAD_TOO_LARGE => Some(Refusal::BodyTooLarge),
        StatusCode::SERVICE_UNAVAILABLE => res
            .extensions()
            .get::<Problem>()
            .and_then(Problem::kind)
            .filter(|k| *k == "session-store-unavailable")
            .map(|_| Refusal::SessionStore),
        _ => None,
    }
}

/// The empty 408 of a request past its deadline (the way out renders its page).
pub(super) fn timed_out() -> Response {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::REQUEST_TIMEOUT;
    res
}

/// The way out, done now or in a boxed future.
pub(super) enum Finished {
    Now(Response),
    Later(BoxFuture<'static, Response>),
}

/// The way out, for every response: session commit, rate-limit headers, security headers, the
/// error page, the request id.
pub(super) fn finish_now(mut out: Out, res: Response) -> Finished {
    let res = match out.session.take() {
        None => res,
        Some(session) => match crate::session::finish(session, res) {
            crate::session::Finish::Ready(res) => res,
            crate::session::Finish::Commit(commit) => {
                return Finished::Later(Box::pin(async move {
                    let res = match tokio::time::timeout_at(out.deadline, commit).await {
                        Ok(res) => res,
                        Err(_) => timed_out(),
                    };
                    match out.seal(res) {
                        Finished::Now(res) => res,
                        Finished::Later(page) => page.await,
                    }
                }));
            }
        },
    };
    out.seal(res)
}

/// [`finish_now`], awaited.
async fn finish(out: Out, res: Response) -> Response {
    match finish_now(out, res) {
        Finished::Now(res) => res,
        Finished::Later(fut) => fut.await,
    }
}

impl Out {
    /// The way out after the session: limit headers, security headers, error page, id, with
    /// one pass over the response's header names to learn which the handler set.
    fn seal(mut self, mut res: Response) -> Finished {
        if self.refusal.is_none() && res.status().as_u16() >= 400 {
            self.refusal = answered_refusal(&res);
            if self.refusal == Some(Refusal::SessionStore) {
                let telemetry = self.plan.telemetry.telemetry();
                telemetry.store_error(StoreKind::Session);
            }
        }
        if self.csrf_checked {
            crate::csrf::vary(&mut res);
        }
        let mut present = crate::headers::scan(&self.plan.headers, res.headers());
        let mut limits = (present.ratelimit, present.x_ratelimit);
        // The path's limit first: its headers win over the global one's.
        if let Some((limit, decision)) = &self.route {
            limits = add_headers_present(limit, decision, res.headers_mut(), limits);
        }
        if let (Some(limit), Some(decision)) = (&self.plan.global, &self.global) {
            add_headers_present(limit, decision, res.headers_mut(), limits);
        }
        crate::headers::apply_present(
            &self.plan.headers,
            self.nonce,
            self.https,
            present,
            &mut res,
        );
        if ErrorPage::wanted(&res) {
            // The page may replace headers of the handler's; the id is looked up again.
            present.request_id = res.headers().contains_key(&crate::request_id::X_REQUEST_ID);
            let loopback = self.client.is_some_and(|ip| ip.is_loopback());
            let nonce = Some(self.nonce.as_str());
            res = match self.page.render_now(res, loopback, nonce, self.id.as_ref()) {
                Ok(page) => page,
                Err(res) => {
                    return Finished::Later(Box::pin(async move {
                        let nonce = Some(self.nonce.as_str().to_owned());
                        let id = self.id.clone();
                        let page = self.page.clone().render(res, loopback, nonce, id).await;
                        self.stamp(page, present.request_id)
                    }));
                }
            };
        }
        Finished::Now(self.stamp(res, present.request_id))
    }

    /// The request id on the response, the counters, the trace event.
    fn stamp(mut self, mut res: Response, id_present: bool) -> Response {
        let telemetry = &self.plan.telemetry;
        telemetry.answered(res.status());
        if let Some(refusal) = self.refusal {
            let seen = crate::telemetry::Seen {
                status: res.status(),
                request_id: self.id.as_ref(),
                client: self.client,
                method: &self.method,
                routed: self.routed,
            };
            let started = self.deadline - self.plan.timeout;
            telemetry.refused(refusal, &seen, started.elapsed());
        }
        if let Some(id) = self.id.take() {
            crate::request_id::stamp_present(res.headers_mut(), id, id_present);
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let started = self.deadline - self.plan.timeout;
            tracing::debug!(
                parent: &self.span,
                status = res.status().as_u16(),
                latency = ?started.elapsed(),
                "finished processing request"
            );
        }
        res
    }
}
