//! Key rotation with encrypted-cookie sessions (`BUTTRESS_SESSION_STORE=cookie`), where the key
//! really matters: the portal never uses them (it lists and revokes sessions), so three servers
//! of the library's own stack (`Buttress::from_settings` + `buttress::server::Server`, the same
//! code `buttress serve` runs) on 127.0.0.1 stand in for the instances, each restarted on its
//! port with new settings.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use buttress::server::{ServeOptions, Server};
use buttress::session::{Session, SessionError};
use buttress::settings::Settings;
use buttress::Buttress;

use crate::harness::{KEY_1, KEY_2};

async fn start(bind: &str, key: &str, fallbacks: Option<&str>) -> Server {
    let mut vars = vec![
        ("SECRET_KEY".to_owned(), key.to_owned()),
        ("BUTTRESS_BIND".to_owned(), bind.to_owned()),
        ("BUTTRESS_SESSION_STORE".to_owned(), "cookie".to_owned()),
        ("BUTTRESS_RATELIMIT_DEFAULT".to_owned(), "none".to_owned()),
    ];
    if let Some(f) = fallbacks {
        vars.push(("SECRET_KEY_FALLBACKS".to_owned(), f.to_owned()));
    }
    let settings = Settings::loader().env_vars(vars).load().expect("settings");
    let app =
        Router::new()
            .route(
                "/login",
                get(|s: Session| async move {
                    s.set_user(Some("ana")).await?;
                    Ok::<_, SessionError>("signed in")
                }),
            )
            .route(
                "/me",
                get(|s: Session| async move {
                    Ok::<_, SessionError>(s.user().await?.unwrap_or_default())
                }),
            );
    let app = Buttress::from_settings(&settings)
        .expect("stack")
        .apply(app)
        .expect("stack");
    let opts = ServeOptions::from_settings(&settings).expect("options");
    Server::bind(app, opts).await.expect("binds")
}

/// A browser with one cookie; a new connection per request, so a restarted server is reached.
struct Visitor {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Visitor {
    async fn get(&mut self, addr: SocketAddr, path: &str) -> String {
        let mut req = self.http.get(format!("http://{addr}{path}"));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("session={c}"));
        }
        let res = req.send().await.expect("answers");
        for set in res.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap_or("");
            if let Some(rest) = set.strip_prefix("session=") {
                let value = rest.split(';').next().unwrap_or("");
                self.cookie =
                    (!value.is_empty() && !set.contains("Max-Age=0")).then(|| value.to_owned());
            }
        }
        res.text().await.unwrap_or_default()
    }
}

/// Rolls `servers` to the settings `(key, fallbacks)` one at a time; after each restart the
/// visitor asks every server who it is. Returns the servers that did not know her, per step.
async fn roll(
    servers: &mut Vec<Server>,
    visitor: &mut Visitor,
    key: &str,
    fallbacks: Option<&str>,
) -> Vec<(usize, usize)> {
    let mut signed_out = Vec::new();
    for step in 0..servers.len() {
        let addr = servers[step].local_addr();
        let old = servers.remove(step);
        old.shutdown().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        servers.insert(step, start(&addr.to_string(), key, fallbacks).await);
        for (i, s) in servers.iter().enumerate() {
            if visitor.get(s.local_addr(), "/me").await != "ana" {
                signed_out.push((step, i));
                // Sign in again, so the next steps test the rotation, not this loss.
                visitor.get(servers[0].local_addr(), "/login").await;
            }
        }
    }
    signed_out
}

async fn three_signed_in() -> (Vec<Server>, Visitor) {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(start("127.0.0.1:0", KEY_1, None).await);
    }
    let mut ana = Visitor {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        cookie: None,
    };
    assert_eq!(
        ana.get(servers[0].local_addr(), "/login").await,
        "signed in"
    );
    for s in &servers {
        assert_eq!(ana.get(s.local_addr(), "/me").await, "ana");
    }
    (servers, ana)
}

/// The safe roll: first every instance learns the new key as a fallback (primary still old),
/// then every instance switches to the new primary with the old key as fallback. At every step,
/// with instances on mixed settings, the cookie opens everywhere: nobody is signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_two_phase_key_rotation_signs_nobody_out() {
    let (mut servers, mut ana) = three_signed_in().await;
    let phase1 = roll(&mut servers, &mut ana, KEY_1, Some(KEY_2)).await;
    let phase2 = roll(&mut servers, &mut ana, KEY_2, Some(KEY_1)).await;
    assert!(
        phase1.is_empty() && phase2.is_empty(),
        "{phase1:?} {phase2:?}"
    );
    for s in servers {
        s.shutdown().await;
    }
}

/// The one-step roll the issue describes (new key, old key as fallback, one instance at a time)
/// with encrypted-cookie sessions: an instance on the new key re-issues the cookie under it, and
/// the instances not yet restarted cannot open that cookie, so the visitor is signed out there
/// until they are restarted too. Documented, not a defect of the code: roll in two phases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_sessions_one_step_key_rotation_signs_out_on_instances_not_yet_restarted() {
    let (mut servers, mut ana) = three_signed_in().await;
    let lost = roll(&mut servers, &mut ana, KEY_2, Some(KEY_1)).await;
    eprintln!("(step, instance) where the visitor was signed out: {lost:?}");
    assert!(
        lost.iter().all(|(step, i)| i > step),
        "only instances not yet restarted refuse the cookie: {lost:?}"
    );
    assert!(
        !lost.is_empty(),
        "the old instances cannot open new-key cookies"
    );
    // After the whole roll, every instance knows her again.
    ana.get(servers[0].local_addr(), "/login").await;
    for s in &servers {
        assert_eq!(ana.get(s.local_addr(), "/me").await, "ana");
    }
    for s in servers {
        s.shutdown().await;
    }
}
