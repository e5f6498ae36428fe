//! Issue 13 §2 and §3 across processes: a sign-out reaches every instance of a deployment, and
//! two deployments sharing one Redis never see each other's sessions or counters.

use crate::harness::{fresh_dir, Browser, Cluster, Instance, Spec, KEY_2};

/// Logout on one instance ends a copy of the cookie on every instance; "sign out everywhere"
/// from one browser ends another browser's session on every instance.
#[tokio::test]
async fn a_sign_out_reaches_every_instance() {
    let cluster = Cluster::start(&Spec::full());
    let email = "ana@example.org";
    let mut ana = Browser::new();
    ana.sign_up_and_in(cluster.at(0), cluster.at(1), email)
        .await;
    let copied = ana.clone();
    for i in 0..3 {
        assert!(
            copied.clone().signed_in_on(cluster.at(i), email).await,
            "the copy works on instance {i} before the logout"
        );
    }
    ana.get(cluster.at(2), "/").await;
    let out = ana.post(cluster.at(2), "/logout", &[]).await;
    assert_eq!(out.status, 303, "{}", out.body);
    for i in 0..3 {
        assert!(
            !copied.clone().signed_in_on(cluster.at(i), email).await,
            "a cookie copied before the logout still works on instance {i}\n{}",
            cluster.logs()
        );
    }

    let mut phone = Browser::new();
    phone.sign_in(cluster.at(0), email).await;
    let mut laptop = Browser::new();
    laptop.sign_in(cluster.at(1), email).await;
    laptop.get(cluster.at(1), "/account/sessions").await;
    let all = laptop
        .post(cluster.at(1), "/account/sessions/revoke-all", &[])
        .await;
    assert_eq!(all.status, 303, "{}", all.body);
    for i in 0..3 {
        assert!(
            !phone.clone().signed_in_on(cluster.at(i), email).await,
            "the phone is still signed in on instance {i} after sign-out everywhere"
        );
    }
}

/// Two deployments (different keys, their own databases) on one Redis for sessions and limits,
/// the same account on both: a cookie of one is anonymous on the other, signing out everywhere
/// on one leaves the other alone, and every key each writes carries its own application id.
#[tokio::test]
async fn deployments_sharing_redis_stay_apart() {
    let spec = Spec {
        instances: 1,
        redis: true,
        postgres: false,
        env: Vec::new(),
    };
    let a = Cluster::start(&spec);
    let redis = a.redis.as_ref().expect("redis").url();
    let env_b: Vec<(String, String)> = [
        ("SECRET_KEY", KEY_2),
        ("REDIS_URL", redis.as_str()),
        ("BUTTRESS_SESSION_STORE", "redis"),
        ("BUTTRESS_RATELIMIT_STORAGE", redis.as_str()),
        ("BUTTRESS_RATELIMIT_DEFAULT", "100000 per minute"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let b = Instance::start(&env_b, fresh_dir("other-app"), "127.0.0.1:0");
    let email = "ana@example.org";
    let mut on_a = Browser::new();
    on_a.sign_up_and_in(a.at(0), a.at(0), email).await;
    let mut on_b = Browser::new();
    on_b.sign_up_and_in(&b, &b, email).await;

    // A's cookie on B (and B's on A) is anonymous.
    assert!(!on_a.clone().signed_in_on(&b, email).await);
    assert!(!on_b.clone().signed_in_on(a.at(0), email).await);
    // Signing out everywhere on A leaves B signed in.
    on_a.get(a.at(0), "/account/sessions").await;
    let all = on_a
        .post(a.at(0), "/account/sessions/revoke-all", &[])
        .await;
    assert_eq!(all.status, 303, "{}", all.body);
    assert!(
        on_b.clone().signed_in_on(&b, email).await,
        "B was signed out by A"
    );

    // Every session and rate-limit key names one of the two applications, and both appear.
    let keys = a.redis_keys("buttress:*");
    // `buttress:<app>:rl:…` for limits, `buttress:{sess}:<app>:…` for sessions.
    let apps: std::collections::BTreeSet<&str> = keys
        .iter()
        .filter_map(|k| {
            let mut parts = k.split(':').skip(1);
            match parts.next()? {
                "{sess}" => parts.next(),
                app => Some(app),
            }
        })
        .collect();
    assert!(
        apps.len() >= 2,
        "the two deployments' keys are not apart: {keys:?}"
    );
    assert!(
        keys.iter().all(|k| !k.starts_with("buttress:rl:")),
        "a rate-limit key bound to no application: {keys:?}"
    );
}
