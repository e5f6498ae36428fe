//! SQL injection and XSS payloads through every HTTP input: no 5xx, no reflected markup, and
//! no row changes beyond what the action means.

use crate::support::*;

pub const SQL: &[&str] = &[
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE users; --",
    "\"; DELETE FROM donors; --",
    "1; UPDATE blood_requests SET status='closed'",
    "' UNION SELECT email, password_hash, 1, 1, 1, 1, 1, 1 FROM users --",
    "London' --",
    "%' OR city LIKE '%",
    "O-' OR blood_group <> '",
    "1 OR 1=1",
    "$1",
    "\\'; SELECT pg_sleep(5); --",
    "') OR ('a'='a",
];

pub const XSS: &[&str] = &[
    "<script>window.__xss=1</script>",
    "<img src=x onerror=alert(1)>",
    "\"><svg onload=alert(1)>",
    "'><iframe src=javascript:alert(1)>",
    "</title><script>alert(1)</script>",
    "<a href=\"javascript:alert(1)\">x</a>",
    "{{7*7}}<b>bold</b>",
];

/// Markup that must never come back unescaped.
const MARKERS: &[&str] = &[
    "<script>window.__xss",
    "<script>alert",
    "<img src=x",
    "<svg onload",
    "<iframe src=javascript",
    "<a href=\"javascript:",
    "<b>bold</b>",
];

#[track_caller]
fn clean(r: &Reply, what: &str) {
    assert!(
        r.status.as_u16() < 500,
        "{what}: {} {}",
        r.status,
        &r.body[..r.body.len().min(500)]
    );
    for m in MARKERS {
        assert!(!r.body.contains(m), "{what}: reflected {m}");
    }
    let needles = [
        "sqlx",
        "syntax error",
        "sqlite",
        "postgres",
        "stack backtrace",
    ];
    if let Some(leak) = buttress_testkit::leaks::leaked(&r.body, &needles) {
        panic!("{what}: leaked {leak}: {}", r.body);
    }
}

pub async fn payloads_through_every_input(app: TestApp) {
    buttress_portal::seed::seed_demo(&app.portal.db, 30)
        .await
        .expect("seed");
    let mut me = app.agent();
    me.account("ada@example.org").await;
    me.profile("Ada", "O-", "London").await;
    let id = me.request("A+", "London", "Royal London").await;
    let baseline = rows(&app).await;
    let payloads: Vec<&str> = SQL.iter().chain(XSS).copied().collect();

    for p in &payloads {
        // Sign-up: the email is refused (malformed); nothing created.
        let mut anon = app.agent();
        anon.get("/signup").await;
        let r = anon.post("/signup", &[("email", p), ("password", p)]).await;
        clean(&r, "signup");
        let r = anon
            .post(
                "/signup",
                &[("email", &format!("{p}@example.org")), ("password", "x")],
            )
            .await;
        clean(&r, "signup email local part");
        // Sign-in: the generic failure, never a session.
        anon.get("/login").await;
        for (email, password) in [(*p, PASSWORD), ("ada@example.org", *p), (*p, *p)] {
            let r = anon
                .post("/login", &[("email", email), ("password", password)])
                .await;
            clean(&r, "login");
            r.assert_status(422);
        }
        // Search, pages and API by every query parameter.
        let q = encode(p);
        for path in [
            format!("/donors?city={q}"),
            format!("/donors?blood_group={q}&mode=compatible"),
            format!("/donors?mode={q}&city=London"),
            format!("/donors?eligible_only={q}&city=London"),
            format!("/donors?page={q}&city=London"),
            format!("/requests?page={q}"),
            format!("/requests/{id}?page={q}"),
            format!("/api/donors?city={q}"),
            format!("/api/donors?blood_group={q}"),
        ] {
            let r = me.get(&path).await;
            clean(&r, &path);
        }
        for path in [
            format!("/requests/{q}"),
            format!("/account/sessions/{q}/revoke"),
        ] {
            let r = me.get(&path).await;
            clean(&r, &path);
        }
        let r = me.post(&format!("/requests/{q}/close"), &[]).await;
        clean(&r, "close by payload id");
        let r = me.post(&format!("/account/sessions/{q}/revoke"), &[]).await;
        clean(&r, "revoke by payload handle");
        // Forms with every field set to the payload: refused, re-rendered escaped.
        me.get("/requests/new").await;
        let r = me
            .post(
                "/requests/new",
                &[
                    ("blood_group", p),
                    ("city", p),
                    ("hospital", p),
                    ("units", p),
                    ("urgency", p),
                ],
            )
            .await;
        clean(&r, "request form");
        me.get("/profile").await;
        let r = me
            .post(
                "/profile",
                &[
                    ("display_name", p),
                    ("blood_group", p),
                    ("city", p),
                    ("phone", p),
                    ("last_donation", p),
                ],
            )
            .await;
        clean(&r, "profile form");
        let r = me
            .post_json(
                "/api/requests",
                &serde_json::json!({"blood_group": p, "city": p, "hospital": p, "units": p, "urgency": p}),
            )
            .await;
        clean(&r, "api");
        r.assert_status(422);
        me.get("/account/password").await;
        let r = me
            .post(
                "/account/password",
                &[("current_password", p), ("new_password", p)],
            )
            .await;
        clean(&r, "password");
        // Headers too: a payload user agent is shown as text on the sessions page.
        let mut odd = app.agent();
        odd.user_agent = p.to_string();
        let r = odd.get("/login").await;
        clean(&r, "user agent");
    }
    assert_eq!(
        rows(&app).await,
        baseline,
        "no row changed by refused input"
    );
    assert!(me.signed_in().await, "the session survived");

    // Valid input that carries payloads in free text is stored as text and shown escaped.
    for p in &payloads {
        me.get("/profile").await;
        let r = me
            .post(
                "/profile",
                &[
                    ("display_name", p),
                    ("blood_group", "O-"),
                    ("city", "London"),
                    ("phone", "+447700900555"),
                    ("available", "on"),
                ],
            )
            .await;
        r.assert_redirect("/profile");
        let page = me.get("/profile").await;
        clean(&page, "profile page");
        let found = me.get("/donors?city=London&blood_group=O-").await;
        clean(&found, "search results");
        assert!(!found.body.contains("+447700900555"), "no numbers in lists");
        let rid = me.request("O-", "London", p).await;
        for path in [
            format!("/requests/{rid}"),
            "/requests".to_owned(),
            "/".to_owned(),
        ] {
            let r = me.get(&path).await;
            clean(&r, &path);
        }
        let api = me.get("/api/donors?city=London&blood_group=O-").await;
        r_json_has_name(&api, p);
        // Closed again: an account has at most three open requests.
        me.get(&format!("/requests/{rid}")).await;
        me.post(&format!("/requests/{rid}/close"), &[])
            .await
            .assert_redirect(&format!("/requests/{rid}"));
    }
    let after = rows(&app).await;
    assert_eq!(after[0], baseline[0], "no users added");
    assert_eq!(after[1], baseline[1], "the one profile updated in place");
    assert_eq!(
        after[2],
        baseline[2] + payloads.len() as u64,
        "one request per valid post"
    );
    let sessions = me.get("/account/sessions").await;
    clean(&sessions, "sessions page");
}

/// The JSON API returns the stored text exactly (JSON is not HTML: escaping is the client's).
fn r_json_has_name(r: &Reply, name: &str) {
    let doc = r.json();
    let collapsed: String = name.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        doc["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|d| d["display_name"] == collapsed.as_str()),
        "{name} in {doc}"
    );
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
}
