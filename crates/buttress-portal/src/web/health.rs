//! Liveness and readiness, split.
//!
//! | path | answers | I/O | limits |
//! | --- | --- | --- | --- |
//! | `/healthz` | `ok` while the process serves requests | none | exempt from the global limit (`BUTTRESS_HTTPS_EXEMPT_PATHS`), so a load balancer polling from one address is never refused |
//! | `/readyz` | `ready`, or 503 `not-ready` when the database or the session store (Redis) does not answer within [`PROBE_TIMEOUT`] | at most one probe per [`CACHE_FOR`], whatever the traffic: concurrent callers wait for the one probe in flight and share its answer | the global limit and [`super::READY_LIMIT`] per client address |
//!
//! Before the split, `/healthz` pinged the database's eight-connection pool on every call and
//! was exempt from limits, so a flood of it could take every connection. Now the probe that
//! touches the database runs at most about once a second however hard `/readyz` is hit.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use buttress::errors::Problem;
use buttress::session::StoreKey;

use super::AppState;

/// How long a readiness answer is reused.
pub(crate) const CACHE_FOR: Duration = Duration::from_secs(1);

/// How long one probe of a store may take.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The last readiness answer and when it was taken; the lock also makes callers wait for a
/// probe in flight instead of starting their own.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

/// `ok`, no I/O.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// `ready` or 503, from a probe at most [`CACHE_FOR`] old.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let ready = &state.privacy.ready;
    let mut last = ready.last.lock().await;
    let ok = match *last {
        Some((at, ok)) if at.elapsed() < CACHE_FOR => ok,
        _ => {
            let ok = probe(&state).await;
            *last = Some((Instant::now(), ok));
            ok
        }
    };
    drop(last);
    if ok {
        (StatusCode::OK, "ready").into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_kind("not-ready")
            .with_detail("The registry cannot reach its database or session store right now.")
            .into_response()
    }
}

async fn probe(state: &AppState) -> bool {
    let db = tokio::time::timeout(PROBE_TIMEOUT, state.portal.db.ping()).await;
    let db_ok = matches!(db, Ok(Ok(())));
    if !db_ok {
        tracing::warn!("readiness: the database does not answer");
    }
    let store_ok = match &state.privacy.sessions {
        // Loading a key nobody has answers `None` from a store that works.
        Some(store) => {
            let key = StoreKey(
                "0000000000000000000000000000000000000000000000000000000000000000".to_owned(),
            );
            let loaded =
                tokio::time::timeout(PROBE_TIMEOUT, store.load(&key, crate::db::now_unix())).await;
            let ok = matches!(loaded, Ok(Ok(_)));
            if !ok {
                tracing::warn!("readiness: the session store does not answer");
            }
            ok
        }
        None => true,
    };
    db_ok && store_ok
}
