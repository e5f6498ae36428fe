//! Sign-outs that hold on every instance: [`SignOuts`] (its docs hold the design).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use futures_util::future::BoxFuture;

use super::error::StoreError;
use crate::secret::AppId;

/// How many live entries (epochs and revoked ids) a [`MemorySignOuts`] keeps at most.
pub const DEFAULT_MAX_SIGN_OUTS: usize = 100_000;

/// How much longer than strictly needed an entry is kept: covers clocks that differ a little
/// between instances, and between an instance and Redis.
pub const SIGN_OUT_MARGIN_SECS: i64 = 60;

/// A user's credentials epoch, read before a password is checked and handed to
/// [`Session::set_user_checked`](super::Session::set_user_checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Epoch(pub u64);

/// What [`SignOuts::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignOutCheck {
    /// The user's current epoch (0: never bumped, or long enough ago to be forgotten).
    pub epoch: u64,
    /// Whether the cookie session asked about was signed out.
    pub revoked: bool,
}

/// Where sign-outs are kept, so that they hold on every instance: per-user credentials
/// epochs, and revoked cookie sessions. Implementations must be shared by every instance that
/// serves the same sessions (memory is the exception and says so). Times are Unix seconds.
///
/// | what | written when | checked | lives |
/// |---|---|---|---|
/// | the user's **credentials epoch** | "sign out everywhere" and password changes ([`Session::revoke_others`](super::Session::revoke_others)) | every request of a signed-in session, and before a signed-in session is written | the absolute timeout (12 h) after the bump |
/// | a **revoked cookie session** (its random `sid`) | `logout` ([`Session::flush`](super::Session::flush)) in cookie mode | every request of a signed-in cookie session, and before its cookie is re-sent | until that session would have expired |
///
/// An epoch is a number that only grows (the bump's time in milliseconds, or one more than the
/// last). A session carries the epoch its user had when they signed in; it is signed out as
/// soon as the user's current epoch is newer. A sign-in reads the epoch *before* the password
/// is checked ([`Session::credentials_epoch`](super::Session::credentials_epoch), then
/// [`Session::set_user_checked`](super::Session::set_user_checked)): a login that verified the
/// old password while "sign out everywhere" ran carries the old epoch, and is signed out at
/// its first request, however late it commits.
///
/// The state is bounded: an epoch entry can be forgotten once every session signed in before
/// the bump has passed its absolute timeout (then no session can carry an older epoch), and a
/// revoked id once its session would have expired. [`MemorySignOuts`] holds at most
/// [`DEFAULT_MAX_SIGN_OUTS`] live entries; a revocation that does not fit signs the user out
/// everywhere instead (an epoch bump), and a bump that does not fit is refused with a
/// [`StoreError`] (a 503: the user sees that the sign-out did not happen), never dropped.
///
/// # Which implementation
///
/// | sessions | sign-outs kept in | shared by instances |
/// |---|---|---|
/// | cookie, one instance | [`MemorySignOuts`] (the default) | no |
/// | cookie, several instances | Redis (`REDIS_URL`, [`redis::RedisSignOuts`](super::redis::RedisSignOuts)) | yes |
/// | memory store | [`MemorySignOuts`] | one instance anyway |
/// | SQL store | the same database ([`sql::SqlSignOuts`](super::sql::SqlSignOuts)) | yes |
/// | Redis store | the same Redis | yes |
///
/// A store brings its own through [`SessionStore::sign_outs`](super::SessionStore::sign_outs).
///
/// # Why this design
///
/// Cookie sessions cannot be taken back from the browser, so a sign-out must be remembered on
/// the server until the cookie would have expired anyway; remembering one random id per
/// signed-out session (not the cookie) keeps it small and needs no lookup for anonymous
/// traffic. A per-user epoch rather than a list of sessions lets "sign out everywhere" end
/// sessions nobody has listed (cookie sessions, sessions filed under a rotated key, a sign-in
/// still in flight) with one write, and costs one lookup per signed-in request (measured in
/// `benches/session.rs`, see `bench/RESULTS.md`).
///
/// ```
/// use buttress::secret::AppId;
/// use buttress::session::{MemorySignOuts, SignOuts};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let outs = MemorySignOuts::default();
/// let app = AppId::new("shop")?;
/// let before = outs.check(&app, "42", None, 1_000).await?.epoch;
/// let after = outs.bump(&app, "42", 1_000, 43_200).await?;
/// assert!(after > before, "a session that carries `before` is signed out");
/// outs.revoke(&app, "a-session-id", 5_000, 1_000).await?;
/// assert!(outs.check(&app, "42", Some("a-session-id"), 1_001).await?.revoked);
/// # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
/// ```
pub trait SignOuts: Send + Sync + std::fmt::Debug + 'static {
    /// `user`'s current epoch in `app` and, when `sid` is given, whether that cookie session
    /// was revoked, in one round trip.
    fn check<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        sid: Option<&'a str>,
        now: i64,
    ) -> BoxFuture<'a, Result<SignOutCheck, StoreError>>;

    /// Makes `user`'s epoch newer than any it had (at least `now` in milliseconds) and keeps
    /// it at least `ttl` seconds; returns it.
    fn bump<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        now: i64,
        ttl: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Records cookie session `sid` as signed out until `until`.
    fn revoke<'a>(
        &'a self,
        app: &'a AppId,
        sid: &'a str,
        until: i64,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Forgets what has expired; returns how many entries. The session layer calls it with the
    /// store's sweep; one that expires entries by itself (Redis) does nothing.
    fn cleanup(&self, _now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async { Ok(0) })
    }
}

/// The next epoch after `current`, at `now` (seconds): its time in milliseconds, or one more.
pub(crate) fn next_epoch(current: u64, now: i64) -> u64 {
    let millis = u64::try_from(now.max(0)).unwrap_or(0).saturating_mul(1000);
    millis.max(current.saturating_add(1))
}

/// Sign-outs in this process's memory: for one instance (each instance would otherwise only
/// know its own). Bounded: see [`SignOuts`].
///
/// ```
/// use buttress::session::{MemorySignOuts, DEFAULT_MAX_SIGN_OUTS};
/// assert_eq!(MemorySignOuts::default().max_entries(), DEFAULT_MAX_SIGN_OUTS);
/// assert_eq!(MemorySignOuts::default().with_max_entries(10).max_entries(), 10);
/// ```
#[derive(Debug)]
pub struct MemorySignOuts {
    max: usize,
    inner: Mutex<Entries>,
}

impl Default for MemorySignOuts {
    fn default() -> Self {
        MemorySignOuts {
            max: DEFAULT_MAX_SIGN_OUTS,
            inner: Mutex::new(Entries::default()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Epoch,
    Revoked,
}

/// One application's entries, looked up by `&str` without allocating.
#[derive(Debug, Default)]
struct AppEntries {
    /// Epoch and until when it lives, per user.
    epochs: HashMap<String, (u64, i64)>,
    /// Until when, per revoked cookie session id.
    revoked: HashMap<String, i64>,
}

#[derive(Debug, Default)]
struct Entries {
    apps: HashMap<AppId, AppEntries>,
    len: usize,
    /// Every entry by the time it may be forgotten.
    by_until: BTreeSet<(i64, Kind, AppId, String)>,
}

impl Entries {
    fn epoch(&self, app: &AppId, user: &str, now: i64) -> u64 {
        self.apps
            .get(app)
            .and_then(|a| a.epochs.get(user))
            .filter(|(_, until)| *until > now)
            .map_or(0, |(e, _)| *e)
    }

    fn revoked(&self, app: &AppId, sid: &str, now: i64) -> bool {
        self.apps
            .get(app)
            .and_then(|a| a.revoked.get(sid))
            .is_some_and(|until| *until > now)
    }

    fn remove(&mut self, kind: Kind, app: &AppId, key: &str) {
        if let Some(a) = self.apps.get_mut(app) {
            let gone = match kind {
                Kind::Epoch => a.epochs.remove(key).is_some(),
                Kind::Revoked => a.revoked.remove(key).is_some(),
            };
            if gone {
                self.len -= 1;
            }
            if a.epochs.is_empty() && a.revoked.is_empty() {
                self.apps.remove(app);
            }
        }
    }

    fn expire(&mut self, now: i64) -> u64 {
        let mut n = 0;
        while let Some(first) = self.by_until.first().cloned() {
            if first.0 > now {
                break;
            }
            self.by_until.remove(&first);
            let (_, kind, app, key) = first;
            self.remove(kind, &app, &key);
            n += 1;
        }
        n
    }

    /// The current until of an entry, if there is one.
    fn until(&self, kind: Kind, app: &AppId, key: &str) -> Option<i64> {
        let a = self.apps.get(app)?;
        match kind {
            Kind::Epoch => a.epochs.get(key).map(|(_, u)| *u),
            Kind::Revoked => a.revoked.get(key).copied(),
        }
    }

    /// Sets an entry to `value` until at least `until`; false when it is new and there is no
    /// room (after forgetting what has expired).
    fn put(
        &mut self,
        entry: (Kind, &AppId, &str),
        value: u64,
        until: i64,
        max: usize,
        now: i64,
    ) -> bool {
        let (kind, app, key) = entry;
        let until = match self.until(kind, app, key) {
            Some(old) => {
                self.by_until
                    .remove(&(old, kind, app.clone(), key.to_owned()));
                until.max(old)
            }
            None => {
                if self.len >= max {
                    self.expire(now);
                }
                if self.len >= max {
                    return false;
                }
                self.len += 1;
                until
            }
        };
        self.by_until
            .insert((until, kind, app.clone(), key.to_owned()));
        let a = self.apps.entry(app.clone()).or_default();
        match kind {
            Kind::Epoch => {
                a.epochs.insert(key.to_owned(), (value, until));
            }
            Kind::Revoked => {
                a.revoked.insert(key.to_owned(), until);
            }
        }
        true
    }
}

impl MemorySignOuts {
    /// The same, keeping at most `max` live entries (at least 1).
    pub fn with_max_entries(mut self, max: usize) -> Self {
        self.max = max.max(1);
        self
    }

    /// How many live entries it keeps at most.
    pub fn max_entries(&self) -> usize {
        self.max
    }

    fn with<T>(&self, f: impl FnOnce(&mut Entries) -> T) -> Result<T, StoreError> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| StoreError("sign-out table lock poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

fn full() -> StoreError {
    tracing::warn!("the in-memory sign-out table is full: a sign-out was refused");
    StoreError("the sign-out could not be recorded (table full)".into())
}

impl SignOuts for MemorySignOuts {
    fn check<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        sid: Option<&'a str>,
        now: i64,
    ) -> BoxFuture<'a, Result<SignOutCheck, StoreError>> {
        Box::pin(async move {
            self.with(|e| SignOutCheck {
                epoch: e.epoch(app, user, now),
                revoked: sid.is_some_and(|sid| e.revoked(app, sid, now)),
            })
        })
    }

    fn bump<'a>(
        &'a self,
        app: &'a AppId,
        user: &'a str,
        now: i64,
        ttl: i64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let until = now.saturating_add(ttl).saturating_add(SIGN_OUT_MARGIN_SECS);
            self.with(|e| {
                let epoch = next_epoch(e.epoch(app, user, now), now);
                e.put((Kind::Epoch, app, user), epoch, until, self.max, now)
                    .then_some(epoch)
                    .ok_or_else(full)
            })?
        })
    }

    fn revoke<'a>(
        &'a self,
        app: &'a AppId,
        sid: &'a str,
        until: i64,
        now: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let until = until.saturating_add(SIGN_OUT_MARGIN_SECS);
            self.with(|e| {
                e.put((Kind::Revoked, app, sid), 0, until, self.max, now)
                    .then_some(())
                    .ok_or_else(full)
            })?
        })
    }

    fn cleanup(&self, now: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move { self.with(|e| e.expire(now)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str) -> AppId {
        AppId::new(name).expect("id")
    }

    #[tokio::test]
    async fn epochs_grow_and_are_forgotten_after_their_time() {
        let outs = MemorySignOuts::default();
        let (a, b) = (app("a"), app("b"));
        assert_eq!(outs.check(&a, "1", None, 10).await.expect("check").epoch, 0);
        let first = outs.bump(&a, "1", 10, 100).await.expect("bump");
        assert_eq!(first, 10_000, "the bump's time in milliseconds");
        let second = outs.bump(&a, "1", 10, 100).await.expect("bump");
        assert_eq!(second, 10_001, "within the same millisecond: one more");
        assert_eq!(
            outs.check(&b, "1", None, 10).await.expect("check").epoch,
            0,
            "per app"
        );
        assert_eq!(
            outs.check(&a, "2", None, 10).await.expect("check").epoch,
            0,
            "per user"
        );
        let late = 10 + 100 + SIGN_OUT_MARGIN_SECS;
        assert_eq!(
            outs.check(&a, "1", None, late).await.expect("check").epoch,
            0,
            "forgotten once no session signed in before it can be alive"
        );
        assert_eq!(outs.cleanup(late).await.expect("cleanup"), 1);
    }

    #[tokio::test]
    async fn a_full_table_refuses_rather_than_forgets() {
        let outs = MemorySignOuts::default().with_max_entries(2);
        let a = app("a");
        outs.revoke(&a, "s1", 50, 0).await.expect("revoke");
        outs.bump(&a, "1", 0, 1_000).await.expect("bump");
        assert!(outs.revoke(&a, "s2", 50, 0).await.is_err(), "full");
        assert!(outs.bump(&a, "2", 0, 1_000).await.is_err(), "full");
        assert!(
            outs.check(&a, "1", Some("s1"), 1)
                .await
                .expect("check")
                .revoked,
            "nothing live was dropped"
        );
        outs.bump(&a, "1", 1, 1_000)
            .await
            .expect("an entry already there always fits");
        // Once s1's session would have expired, its place is free again.
        outs.revoke(&a, "s2", 500, 50 + SIGN_OUT_MARGIN_SECS)
            .await
            .expect("room after expiry");
    }
}
