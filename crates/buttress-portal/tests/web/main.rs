//! The portal over HTTP, in-process through the whole Buttress stack (`web::build`), on SQLite
//! and on a real PostgreSQL: every flow, every validation error, CSRF refusals, injection
//! payloads, and the database going away under a running app.
//!
//! Each check is one async fn taking a fresh [`TestApp`]; `checks!` runs it on SQLite (one
//! test each) and `postgres_all` runs every check on its own database of one PostgreSQL
//! server (one server per test process keeps the suite quick).

#![allow(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod flows;
mod imports;
mod injection;
mod instances;
mod outage;
mod privacy;
mod support;

use support::TestApp;

type Check = fn(TestApp) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

macro_rules! checks {
    ($($path:path => $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $path(crate::support::TestApp::sqlite().await).await;
                }
            )*
        }

        const ALL: &[(&str, Check)] = &[$((stringify!($name), |app| Box::pin($path(app)))),*];
    };
}

checks!(
    crate::flows::sign_up_same_answer_and_validation => sign_up,
    crate::flows::sign_in_rotates_and_fails_generically => sign_in,
    crate::flows::sign_out_kills_the_session => sign_out,
    crate::flows::deleted_account_is_signed_out_on_every_page => deleted_account,
    crate::flows::profile_edit_and_validation => profile,
    crate::flows::search_pages_groups_and_phones => search,
    crate::flows::requests_form_api_and_matches => requests,
    crate::flows::close_by_owner_only => close_request,
    crate::flows::sessions_revoke_one_and_everywhere => sessions,
    crate::flows::change_password_revokes_others => change_password,
    crate::flows::change_password_is_throttled => change_password_throttle,
    crate::flows::csrf_refusals_change_nothing => csrf,
    crate::flows::plumbing_routes => plumbing,
    crate::flows::login_limits_per_address_and_account => login_limits,
    crate::injection::payloads_through_every_input => injection,
    crate::privacy::verify_and_reset_by_mail => verify_and_reset,
    crate::privacy::sign_up_flood_is_throttled => mail_flood,
    crate::privacy::harvesting_gets_at_most_the_quota => harvesting,
    crate::privacy::donor_log_relay_and_request_cap => reveal_log_relay_cap,
    crate::privacy::export_and_erase => export_and_erase,
    crate::privacy::liveness_and_readiness => health,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_all() {
    let pg = buttress_testkit::PostgresServer::start().expect("PostgreSQL for tests");
    for (i, (name, check)) in ALL.iter().enumerate() {
        let url = pg.create_database(&format!("web_{i}")).expect("createdb");
        let app = TestApp::open(Some(&url)).await;
        assert_eq!(app.portal.db.backend(), buttress_portal::Backend::Postgres);
        eprintln!("postgres: {name}");
        let db = app.portal.db.clone();
        check(app).await;
        db.close().await;
    }
}

/// Several instances on one database (`instances`): on SQLite (one file) and PostgreSQL.
macro_rules! instance_checks {
    ($($path:path => $name:ident),* $(,)?) => {
        mod instances_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    $path(crate::instances::Shared::sqlite()).await;
                }
            )*
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres_instances() {
            let pg = buttress_testkit::PostgresServer::start().expect("PostgreSQL for tests");
            $(
                let url = pg.create_database(stringify!($name)).expect("createdb");
                eprintln!("postgres: {}", stringify!($name));
                let dir = std::sync::Arc::new(support::fresh_dir("instances-pg"));
                $path(crate::instances::Shared { dir, url: Some(url) }).await;
            )*
        }
    };
}

instance_checks!(
    crate::instances::sign_outs_reach_every_instance => sign_outs_reach_every_instance,
    crate::instances::sign_in_in_flight_during_a_password_change_is_anonymous => sign_in_in_flight_is_anonymous,
    crate::instances::apps_on_one_database_stay_apart => apps_on_one_database_stay_apart,
);

/// Sessions and limits on a real Redis (`BUTTRESS_SESSION_STORE=redis`, `REDIS_URL`,
/// `BUTTRESS_RATELIMIT_STORAGE`): the flows that depend on the stores run unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sessions_and_limits() {
    let redis = buttress_testkit::RedisServer::start();
    let url = redis.url();
    let extra = [
        ("BUTTRESS_SESSION_STORE", "redis"),
        ("REDIS_URL", url.as_str()),
        ("BUTTRESS_RATELIMIT_STORAGE", url.as_str()),
    ];
    for (name, check) in ALL.iter().filter(|(name, _)| {
        matches!(
            *name,
            "sign_in"
                | "sign_out"
                | "sessions"
                | "change_password"
                | "change_password_throttle"
                | "login_limits"
        )
    }) {
        eprintln!("redis: {name}");
        check(TestApp::open_with(None, &extra).await).await;
    }
}
