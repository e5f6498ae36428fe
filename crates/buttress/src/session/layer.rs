//! [`SessionLayer`]: puts a lazy [`Session`] into each request and saves it on the way out.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use http::{header, HeaderValue, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::codec::CookieCodec;
use super::config::{ClientHint, Config, Mode, Stores, BASE_NAME};
use super::handle::{Outcome, Session};
use super::scope::Scopes;
use super::signout::SignOuts;
use super::store::SessionStore;
use super::{Clock, SameSite, COOKIE_PURPOSE};
use crate::proxy::ClientIp;
use crate::secret::{AppId, Keyring};

/// Layer that provides [`Session`]. Defaults: `__Host-session` cookie, `Secure`, `HttpOnly`,
/// `SameSite=Lax`, `Path=/`, idle timeout 30 min, absolute timeout 12 h.
///
/// ```
/// use buttress::secret::Keyring;
/// use buttress::session::{MemoryStore, SessionLayer};
/// use std::{sync::Arc, time::Duration};
///
/// let ring = Keyring::ephemeral();
/// let cookie_sessions = SessionLayer::cookie(&ring);
/// let stored = SessionLayer::store(&ring, Arc::new(MemoryStore::default()))
///     .idle_timeout(Duration::from_secs(15 * 60));
/// // A setter on a clone changes the clone only.
/// let plain = stored.clone().secure(false);
/// assert_eq!((stored.cookie_name(), plain.cookie_name()), ("__Host-session", "session"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct SessionLayer {
    config: Arc<Config>,
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie", &self.config.cookie_name)
            .field("store", &matches!(self.config.mode, Mode::Store(_)))
            .field("app", self.config.primary_app())
            .finish()
    }
}

impl SessionLayer {
    fn with_mode(keyring: &Keyring, mode: Mode) -> Self {
        SessionLayer {
            config: Arc::new(Config::new(keyring, mode)),
        }
    }

    /// Sessions in an encrypted cookie (no server state), keyed from `keyring`. Sign-outs
    /// are remembered in memory ([`SessionLayer::sign_outs`] for Redis).
    pub fn cookie(keyring: &Keyring) -> Self {
        let codec = CookieCodec::new(
            keyring.derive(COOKIE_PURPOSE),
            format!("__Host-{BASE_NAME}"),
        );
        Self::with_mode(keyring, Mode::Cookie(codec))
    }

    /// Sessions in a server-side store; the cookie holds only a 256-bit random id. The store
    /// is bound to this application ([`SessionStore::for_app`]) and keeps the sign-outs when
    /// it can ([`SessionStore::sign_outs`]).
    pub fn store(keyring: &Keyring, store: Arc<dyn SessionStore>) -> Self {
        let scopes = Scopes::new(keyring, None);
        Self::with_mode(keyring, Mode::Store(Stores::bind(store, &scopes)))
    }

    /// This application's id (`BUTTRESS_APP_ID`): bound into cookies, store keys, the
    /// store's rows and keys, and sign-outs (see [`AppId`]). Default: derived from each key.
    ///
    /// ```
    /// use buttress::secret::{AppId, Keyring};
    /// use buttress::session::SessionLayer;
    /// let layer = SessionLayer::cookie(&Keyring::ephemeral()).app_id(AppId::new("shop")?);
    /// assert_eq!(layer.app(), &AppId::new("shop")?);
    /// # Ok::<(), buttress::secret::AppIdError>(())
    /// ```
    pub fn app_id(self, app: AppId) -> Self {
        self.edit(|c| {
            c.explicit_app = Some(app);
            c.rebind();
        })
    }

    /// The application id new sessions are made under.
    pub fn app(&self) -> &AppId {
        self.config.primary_app()
    }

    /// Where sign-outs are kept (see [`SignOuts`]): e.g. Redis for cookie sessions served by
    /// several instances. Default: the store's own ([`SessionStore::sign_outs`]), else memory.
    pub fn sign_outs(self, sign_outs: Arc<dyn SignOuts>) -> Self {
        self.edit(|c| {
            c.sign_outs = sign_outs;
            c.sign_outs_chosen = true;
        })
    }

    /// How many signed-in sessions one user may hold in a server-side store (default 50, at
    /// least 1): a new sign-in beyond it ends the user's least recently active sessions, so
    /// one account cannot fill a memory store and turn every visitor away.
    pub fn max_sessions_per_user(self, max: usize) -> Self {
        self.edit(|c| c.max_per_user = max.max(1))
    }

    /// The key this layer's store files the session of a cookie value under (store mode), or
    /// `None` (cookie mode, or not a session id). For tests and operators; the handle an
    /// account page shows is the same key.
    pub fn store_key(&self, cookie_value: &str) -> Option<super::StoreKey> {
        match self.config.mode {
            Mode::Store(_) => super::SessionId::parse(cookie_value)
                .map(|id| self.config.scopes.primary().store_key(&id)),
            Mode::Cookie(_) => None,
        }
    }

    /// Applies a setter, copying the configuration first if it is shared (copy-on-write): a
    /// setter on a clone changes the clone only, never the layer it was cloned from.
    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Re-keys a cookie-mode layer from `keyring` under its current cookie name (the name is
    /// bound into the seal); store mode is unchanged.
    pub(crate) fn keyed(self, keyring: &Keyring) -> Self {
        let name = self.config.cookie_name.clone();
        self.edit(|c| {
            if let Mode::Cookie(_) = c.mode {
                c.mode = Mode::Cookie(CookieCodec::new(keyring.derive(COOKIE_PURPOSE), name));
                c.keyring = keyring.clone();
                c.rebind();
            }
        })
    }

    /// `Secure` and the `__Host-` prefix. Turning it off is for plain-HTTP loopback
    /// development only; [`Buttress`](crate::Buttress) decides that from the settings.
    pub fn secure(self, secure: bool) -> Self {
        let name = if secure {
            format!("__Host-{BASE_NAME}")
        } else {
            BASE_NAME.to_owned()
        };
        self.edit(|c| {
            c.secure = secure;
            c.cookie_name = name.clone();
            if let Mode::Cookie(codec) = &c.mode {
                c.mode = Mode::Cookie(codec.renamed(name));
            }
        })
    }

    /// `HttpOnly` (default on).
    pub fn http_only(self, on: bool) -> Self {
        self.edit(|c| c.http_only = on)
    }

    /// `SameSite` (default Lax).
    pub fn same_site(self, same_site: SameSite) -> Self {
        self.edit(|c| c.same_site = same_site)
    }

    /// Idle timeout (default 30 min).
    pub fn idle_timeout(self, d: Duration) -> Self {
        self.edit(|c| c.idle = d)
    }

    /// Absolute timeout (default 12 h).
    pub fn absolute_timeout(self, d: Duration) -> Self {
        self.edit(|c| c.absolute = d)
    }

    /// How often a read-only session's idle clock is written (default 60 s).
    pub fn touch_interval(self, d: Duration) -> Self {
        self.edit(|c| c.touch = d)
    }

    /// Replaces the clock (tests of timeouts).
    pub fn clock(self, clock: Clock) -> Self {
        self.edit(|c| c.clock = clock)
    }

    /// The configuration, for the stack.
    pub(crate) fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The cookie's name (`__Host-session`, or `session` on plain-HTTP loopback development).
    pub fn cookie_name(&self) -> &str {
        &self.config.cookie_name
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Service made by [`SessionLayer`].
#[derive(Clone)]
pub struct SessionService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> std::fmt::Debug for SessionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionService")
    }
}

impl<S, ReqBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = axum::response::Response, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = SessionFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let client = req.extensions().get::<ClientIp>().map(|c| c.0);
        let session = begin(&self.config, &mut req, client);
        SessionFuture {
            stage: Stage::Handler {
                inner: self.inner.call(req),
                session: Some(session),
            },
        }
    }
}

/// The session's part of a request on its way in: a lazy [`Session`] for `req` (put into its
/// extensions), which [`finish`] saves on the way out. `client` is the resolved client
/// address, recorded with a session that gets created. Nothing is read from a store here.
pub(crate) fn begin<B>(
    config: &Arc<Config>,
    req: &mut Request<B>,
    client: Option<std::net::IpAddr>,
) -> Session {
    let seen = Seen {
        cookie: req.headers().contains_key(header::COOKIE),
        user_agent: req.headers().get(header::USER_AGENT).cloned(),
    };
    begin_seen(config, req, client, seen)
}

/// What [`begin`] reads from the request's headers, when the caller has already read them.
pub(crate) struct Seen {
    /// Whether the request has a `Cookie` header at all.
    pub(crate) cookie: bool,
    /// Its `User-Agent`.
    pub(crate) user_agent: Option<HeaderValue>,
}

/// [`begin`] with the headers it needs already read.
pub(crate) fn begin_seen<B>(
    config: &Arc<Config>,
    req: &mut Request<B>,
    client: Option<std::net::IpAddr>,
    seen: Seen,
) -> Session {
    sweep_now_and_then(config);
    let incoming = seen
        .cookie
        .then(|| read_cookie(req.headers(), &config.cookie_name))
        .flatten();
    let client = ClientHint {
        ip: client,
        agent: seen.user_agent,
    };
    let session = Session::new(config.clone(), incoming, client);
    session.attach(req.extensions_mut());
    session
}

/// The session's part of a response on its way out.
pub(crate) enum Finish {
    /// Nothing to save: the response as it leaves.
    Ready(axum::response::Response),
    /// The session must be saved (and its cookie set) first.
    Commit(BoxFuture<'static, axum::response::Response>),
}

/// Ends the session's part of a request: a session the handler never touched leaves `res` as
/// it is (no allocation); otherwise the returned future saves it and sets or clears the cookie.
pub(crate) fn finish(session: Session, mut res: axum::response::Response) -> Finish {
    if session.untouched() {
        no_store_with_cookies(&mut res);
        Finish::Ready(res)
    } else {
        Finish::Commit(Box::pin(commit(session, res)))
    }
}

pin_project_lite::pin_project! {
    /// Future of [`SessionService`]: when the handler never touched the session, the response
    /// leaves as it is; otherwise a boxed second stage saves the session and sets the cookie.
    pub struct SessionFuture<F> {
        #[pin]
        stage: Stage<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<F> {
        Handler {
            #[pin]
            inner: F,
            session: Option<Session>,
        },
        Commit {
            commit: BoxFuture<'static, axum::response::Response>,
        },
    }
}

impl<F> std::future::Future for SessionFuture<F>
where
    F: std::future::Future<Output = Result<axum::response::Response, Infallible>>,
{
    type Output = Result<axum::response::Response, Infallible>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut stage = self.project().stage;
        loop {
            match stage.as_mut().project() {
                StageProj::Handler { inner, session } => {
                    let Poll::Ready(Ok(res)) = inner.poll(cx) else {
                        return Poll::Pending;
                    };
                    let Some(session) = session.take() else {
                        return Poll::Ready(Ok(res));
                    };
                    match finish(session, res) {
                        Finish::Ready(res) => return Poll::Ready(Ok(res)),
                        Finish::Commit(commit) => stage.set(Stage::Commit { commit }),
                    }
                }
                StageProj::Commit { commit } => return commit.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

/// Saves the session after the handler and sets (or clears) its cookie on `res`.
async fn commit(session: Session, mut res: axum::response::Response) -> axum::response::Response {
    let config = session.config().clone();
    match session.commit().await {
        Ok(Outcome::Nothing) => {}
        Ok(Outcome::SetCookie { value, max_age }) => set_cookie(&mut res, &config, &value, max_age),
        Ok(Outcome::Clear) => set_cookie(&mut res, &config, "", 0),
        Err(e) => return e.into_response(),
    }
    no_store_with_cookies(&mut res);
    private_to_the_session(&mut res);
    res
}

/// A response that sets a cookie must never be cached by a shared cache.
fn no_store_with_cookies(res: &mut axum::response::Response) {
    if res.headers().contains_key(header::SET_COOKIE) {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// A response whose request read its session may carry what belongs to that session alone:
/// a signed-in user's names and phone numbers, or an anonymous visitor's CSRF token or flash
/// message (with no cookie set, as the session already existed). Nobody may store it, neither
/// a shared cache (which would hand one visitor's token to the next) nor the browser's history
/// on a shared computer: `Cache-Control: no-store`, unless the handler chose its own (a
/// stylesheet), and always `Vary: Cookie`, so that a cache that keeps it anyway keeps it apart
/// per cookie.
fn private_to_the_session(res: &mut axum::response::Response) {
    if let http::header::Entry::Vacant(slot) = res.headers_mut().entry(header::CACHE_CONTROL) {
        slot.insert(HeaderValue::from_static("no-store"));
    }
    let varies = res.headers().get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|f| f.trim() == "*" || f.trim().eq_ignore_ascii_case("cookie"))
        })
    });
    if !varies {
        res.headers_mut()
            .append(header::VARY, HeaderValue::from_static("Cookie"));
    }
}

/// Every 1,024 requests, deletes expired records of a server-side store, and expired
/// sign-outs, in the background (memory and SQL rely on this; Redis expires its own and its
/// cleanup does nothing). One sweep at a time: while one runs (a slow database), later turns
/// are skipped.
fn sweep_now_and_then(config: &Arc<Config>) {
    let n = config.requests.fetch_add(1, Ordering::Relaxed);
    if n % 1024 != 1023 {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if config.sweeping.swap(true, Ordering::AcqRel) {
        return;
    }
    let running = Sweeping(config.sweeping.clone());
    let stores = match &config.mode {
        Mode::Store(stores) => stores.bound.clone(),
        Mode::Cookie(_) => Vec::new(),
    };
    let sign_outs = config.sign_outs.clone();
    let now = (config.clock)();
    handle.spawn(async move {
        let _running = running;
        let mut seen: Vec<Arc<dyn SessionStore>> = Vec::new();
        for store in stores {
            // Scopes of one application share one store: sweep it once.
            if seen.iter().any(|s| Arc::ptr_eq(s, &store)) {
                continue;
            }
            seen.push(store.clone());
            match store.cleanup(now).await {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "expired sessions removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "session cleanup failed"),
            }
        }
        match sign_outs.cleanup(now).await {
            Ok(n) if n > 0 => tracing::debug!(removed = n, "expired sign-outs removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sign-out cleanup failed"),
        }
    });
}

/// Clears the sweep flag when the sweep ends, however it ends (done, failed, panicked, or
/// dropped with its runtime).
struct Sweeping(Arc<AtomicBool>);

impl Drop for Sweeping {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The first valid cookie named `name` (several are possible when a sibling domain tossed one
/// in: the `__Host-` prefix rules that out over HTTPS), in any of the `Cookie` lines (HTTP/2
/// sends one per cookie). The header is read as bytes, pair by pair: a cookie with a byte that
/// is not ASCII (a sibling subdomain can set one for the whole domain) is skipped, not the
/// whole line, so it cannot hide the session cookie. The session cookie's own value must be
/// RFC 6265 cookie-octets, optionally in double quotes; one that is not is skipped too.
fn read_cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|line| line.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            let (key, value) = (&pair[..eq], &pair[eq + 1..]);
            (key.trim_ascii() == name.as_bytes()).then(|| value.trim_ascii())
        })
        .find_map(cookie_value)
}

/// A cookie value as RFC 6265 allows it: cookie-octets (visible ASCII but `"`, `,`, `;` and
/// `\`), optionally in one pair of double quotes, which are dropped.
fn cookie_value(raw: &[u8]) -> Option<String> {
    let inner = raw
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(raw);
    let octet = |b: &u8| matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
    if !inner.iter().all(octet) {
        return None;
    }
    std::str::from_utf8(inner).ok().map(str::to_owned)
}

fn set_cookie(res: &mut axum::response::Response, config: &Config, value: &str, max_age: i64) {
    let mut c = cookie::Cookie::new(config.cookie_name.clone(), value.to_owned());
    c.set_path("/");
    c.set_http_only(config.http_only);
    c.set_secure(config.secure);
    c.set_same_site(match config.same_site {
        SameSite::Lax => cookie::SameSite::Lax,
        SameSite::Strict => cookie::SameSite::Strict,
        SameSite::None => cookie::SameSite::None,
    });
    c.set_max_age(cookie::time::Duration::seconds(max_age.max(0)));
    if let Ok(v) = HeaderValue::from_str(&c.encoded().to_string()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}
