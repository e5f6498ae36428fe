//! The configuration a [`SessionLayer`](super::SessionLayer) holds and every [`Session`](super::Session)
//! of its requests reads: the mode (cookie or store), keys and scopes, sign-outs, cookie
//! attributes and timeouts (a leaf of the session module: the layer and the handle both
//! import it, neither imports the other's internals).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use super::codec::CookieCodec;
use super::scope::{Scope, Scopes};
use super::signout::{MemorySignOuts, SignOuts};
use super::store::SessionStore;
use super::{
    system_clock, Clock, SameSite, DEFAULT_ABSOLUTE, DEFAULT_IDLE, DEFAULT_MAX_PER_USER,
    DEFAULT_TOUCH,
};
use crate::secret::{AppId, Keyring};

/// The cookie's name without the `__Host-` prefix.
pub(super) const BASE_NAME: &str = "session";

#[derive(Clone)]
pub(crate) enum Mode {
    Cookie(CookieCodec),
    Store(Stores),
}

/// A server-side store as given, and bound to each scope's application id (index by scope).
#[derive(Clone)]
pub(crate) struct Stores {
    base: Arc<dyn SessionStore>,
    pub(crate) bound: Vec<Arc<dyn SessionStore>>,
}

impl Stores {
    pub(super) fn bind(base: Arc<dyn SessionStore>, scopes: &Scopes) -> Self {
        let mut bound: Vec<Arc<dyn SessionStore>> = Vec::with_capacity(scopes.all().len());
        for (i, scope) in scopes.all().iter().enumerate() {
            let same = scopes.all()[..i].iter().position(|s| s.app == scope.app);
            let store = match same.and_then(|j| bound.get(j)) {
                Some(earlier) => earlier.clone(),
                None => base.for_app(&scope.app).unwrap_or_else(|| base.clone()),
            };
            bound.push(store);
        }
        Stores { base, bound }
    }

    /// Each application's store once, with the index and the scope it was first found at (the
    /// primary key's first): what listing or sweeping a user's sessions goes through.
    pub(crate) fn per_app<'a>(
        &'a self,
        scopes: &'a Scopes,
    ) -> Vec<(usize, &'a Scope, &'a Arc<dyn SessionStore>)> {
        let mut out: Vec<(usize, &Scope, &Arc<dyn SessionStore>)> = Vec::new();
        for (i, scope) in scopes.all().iter().enumerate() {
            if out.iter().any(|(_, s, _)| s.app == scope.app) {
                continue;
            }
            out.push((i, scope, self.bound.get(i).unwrap_or(self.primary())));
        }
        out
    }

    /// The store new sessions are written to (the primary key's application).
    pub(crate) fn primary(&self) -> &Arc<dyn SessionStore> {
        self.bound.first().unwrap_or(&self.base)
    }
}

pub(crate) struct Config {
    pub(crate) mode: Mode,
    pub(super) keyring: Keyring,
    pub(super) explicit_app: Option<AppId>,
    pub(crate) scopes: Scopes,
    /// The distinct application ids of the scopes, the primary's first.
    pub(crate) apps: Vec<AppId>,
    pub(crate) sign_outs: Arc<dyn SignOuts>,
    /// Whether `sign_outs` was chosen by the user (then a store's own does not replace it).
    pub(super) sign_outs_chosen: bool,
    pub(crate) max_per_user: usize,
    pub(super) cookie_name: String,
    pub(super) secure: bool,
    pub(super) http_only: bool,
    pub(super) same_site: SameSite,
    pub(super) idle: Duration,
    pub(super) absolute: Duration,
    pub(super) touch: Duration,
    pub(crate) clock: Clock,
    pub(super) requests: std::sync::atomic::AtomicU64,
    /// Set while a background sweep of the store runs: sweeps never overlap. Shared with the
    /// copies a setter makes, which sweep the same store.
    pub(super) sweeping: Arc<AtomicBool>,
}

/// A copy for a layer whose setter was called while the original is shared (a clone of a
/// layer): the copy counts its own requests, and shares the original's sweep flag.
impl Clone for Config {
    fn clone(&self) -> Self {
        Config {
            mode: self.mode.clone(),
            keyring: self.keyring.clone(),
            explicit_app: self.explicit_app.clone(),
            scopes: self.scopes.clone(),
            apps: self.apps.clone(),
            sign_outs: self.sign_outs.clone(),
            sign_outs_chosen: self.sign_outs_chosen,
            max_per_user: self.max_per_user,
            cookie_name: self.cookie_name.clone(),
            secure: self.secure,
            http_only: self.http_only,
            same_site: self.same_site,
            idle: self.idle,
            absolute: self.absolute,
            touch: self.touch,
            clock: self.clock.clone(),
            requests: std::sync::atomic::AtomicU64::new(0),
            sweeping: self.sweeping.clone(),
        }
    }
}

impl Config {
    /// The configuration of a new layer in `mode`, keyed from `keyring`, with every default.
    pub(crate) fn new(keyring: &Keyring, mode: Mode) -> Self {
        let scopes = Scopes::new(keyring, None);
        let mut config = Config {
            mode,
            keyring: keyring.clone(),
            explicit_app: None,
            apps: scopes.apps(),
            scopes,
            sign_outs: Arc::new(MemorySignOuts::default()),
            sign_outs_chosen: false,
            max_per_user: DEFAULT_MAX_PER_USER,
            cookie_name: format!("__Host-{BASE_NAME}"),
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            idle: DEFAULT_IDLE,
            absolute: DEFAULT_ABSOLUTE,
            touch: DEFAULT_TOUCH,
            clock: system_clock(),
            requests: std::sync::atomic::AtomicU64::new(0),
            sweeping: Arc::new(AtomicBool::new(false)),
        };
        config.rebind();
        config
    }

    pub(crate) fn idle_secs(&self) -> i64 {
        secs(self.idle)
    }
    pub(crate) fn absolute_secs(&self) -> i64 {
        secs(self.absolute)
    }
    pub(crate) fn touch_secs(&self) -> i64 {
        secs(self.touch)
    }

    /// The application id new sessions and sign-outs are written under.
    #[inline]
    pub(crate) fn primary_app(&self) -> &AppId {
        &self.scopes.primary().app
    }

    /// Recomputes everything that depends on the keyring and the application id: the scopes,
    /// the cookie codec's bindings, the store bound to each application, and the sign-outs a
    /// store brings (unless chosen by hand).
    pub(super) fn rebind(&mut self) {
        self.scopes = Scopes::new(&self.keyring, self.explicit_app.as_ref());
        self.apps = self.scopes.apps();
        match &mut self.mode {
            Mode::Cookie(codec) => {
                *codec = codec.for_apps(&self.keyring.app_ids(self.explicit_app.as_ref()));
            }
            Mode::Store(stores) => {
                *stores = Stores::bind(stores.base.clone(), &self.scopes);
                if !self.sign_outs_chosen {
                    if let Some(outs) = stores.primary().sign_outs() {
                        self.sign_outs = outs;
                    }
                }
            }
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// What a new session records about its client (address and user agent), kept raw until a
/// session is created: most requests create none, so they pay no formatting.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientHint {
    pub(super) ip: Option<std::net::IpAddr>,
    pub(super) agent: Option<HeaderValue>,
}

impl ClientHint {
    /// `"<address> — <user agent>"`, either part alone, or nothing; the agent without control
    /// characters and cut at 160 characters.
    pub(crate) fn describe(&self) -> Option<String> {
        let agent: String = self
            .agent
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(160)
            .collect();
        match (self.ip, agent.is_empty()) {
            (None, true) => None,
            (Some(ip), true) => Some(ip.to_string()),
            (None, false) => Some(agent),
            (Some(ip), false) => Some(format!("{ip} — {agent}")),
        }
    }
}
