//! Donor privacy through the whole stack: verified accounts over mail, mailed links (expiry,
//! reuse, forgery), no enumeration and no mail bomb, reveals within the quota and logged for
//! the donor (and the harvesting attack), the open-request cap, export behind the password,
//! erasure in one transaction, and liveness/readiness.

use buttress_portal::db::Table;

use crate::support::*;

/// The seeded demo numbers (`+447700900xxx`) and the test profiles' (`+447700900123`).
const PHONE_PATTERN: &str = "+447700900";

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).expect("token").to_owned()
}

pub async fn verify_and_reset_by_mail(app: TestApp) {
    let mut ada = app.agent();
    ada.unverified_account("ada@example.org").await;
    // Unverified: a banner, no requests (form and API), no reveal.
    let home = ada.get("/").await;
    assert!(home.body.contains("Confirm your address"), "{}", home.body);
    ada.get("/requests/new").await.assert_status(403);
    let r = ada
        .post_json(
            "/api/requests",
            &serde_json::json!({"blood_group": "O-", "city": "Leeds", "hospital": "LGI", "units": 1, "urgency": "normal"}),
        )
        .await;
    r.assert_status(403);
    assert_eq!(r.json()["reason"], "unverified");
    assert_eq!(app.count(Table::BloodRequests).await, 0);

    // The link: its page does not spend it (a mail scanner may fetch it), the button does.
    let link = ada.mailed_link("ada@example.org", "/verify").await;
    ada.follow_link(&link).await.assert_status(200);
    ada.follow_link(&link).await.assert_status(200);
    ada.get("/").await;
    ada.post("/verify", &[("token", &token_of(&link))])
        .await
        .assert_redirect("/");
    assert!(!ada.get("/").await.body.contains("Confirm your address"));
    ada.request("O-", "Leeds", "LGI").await;
    // Reuse: refused.
    ada.get("/").await;
    let again = ada.post("/verify", &[("token", &token_of(&link))]).await;
    again.assert_status(422);
    assert!(again.body.contains("This link does not work"));

    // Another account's token spliced with ours, a reset token used to verify, an expired
    // token: all refused, and the other account stays unverified.
    let mut bob = app.agent();
    bob.unverified_account("bob@example.org").await;
    let bob_link = bob.mailed_link("bob@example.org", "/verify").await;
    let (bob_id, _) = token_of(&bob_link)
        .split_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .expect("id.secret");
    let (_, ada_secret) = token_of(&link)
        .split_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .expect("id.secret");
    bob.get("/").await;
    bob.post("/verify", &[("token", &format!("{bob_id}.{ada_secret}"))])
        .await
        .assert_status(422);
    sqlx::query("UPDATE account_tokens SET expires_at = 1 WHERE id = $1")
        .bind(bob_id.parse::<i64>().expect("id"))
        .execute(app.portal.db.pool())
        .await
        .expect("expire");
    bob.get("/").await;
    bob.post("/verify", &[("token", &token_of(&bob_link))])
        .await
        .assert_status(422);
    let bob_user = app
        .portal
        .accounts
        .user_by_email("bob@example.org")
        .await
        .unwrap()
        .unwrap();
    assert!(!bob_user.is_verified());

    // Reset: the same answer for a known and an unknown address; the link sets a password
    // and signs every session out; a verify link does not work as a reset link.
    let mut stranger = app.agent();
    stranger.get("/password-reset").await.assert_status(200);
    let unknown = stranger
        .post("/password-reset", &[("email", "nobody@example.org")])
        .await;
    let unknown_page = stranger.get("/login").await.body;
    stranger.get("/password-reset").await;
    let known = stranger
        .post("/password-reset", &[("email", "ADA@example.org")])
        .await;
    let known_page = stranger.get("/login").await.body;
    assert_eq!(
        (unknown.status, unknown.location()),
        (known.status, known.location())
    );
    assert!(unknown_page.contains("If an account uses this address"));
    assert!(known_page.contains("If an account uses this address"));
    let reset = stranger
        .mailed_link("ada@example.org", "/password-reset/confirm")
        .await;
    assert!(
        app.outbox().iter().all(|m| !m.to.contains("nobody@")),
        "no mail to an unknown address"
    );
    stranger
        .get(&format!(
            "/password-reset/confirm?token={}",
            token_of(&link)
        ))
        .await
        .assert_status(422);
    stranger.follow_link(&reset).await.assert_status(200);
    // A weak password is refused without spending the link.
    stranger
        .post(
            "/password-reset/confirm",
            &[
                ("token", &token_of(&reset)),
                ("new_password", "password1234"),
            ],
        )
        .await
        .assert_status(422);
    stranger
        .post(
            "/password-reset/confirm",
            &[
                ("token", &token_of(&reset)),
                ("new_password", "a brand new long passphrase"),
            ],
        )
        .await
        .assert_redirect("/login");
    assert!(!ada.signed_in().await, "every session signed out");
    let mut fresh = app.agent();
    fresh
        .sign_in("ada@example.org", PASSWORD)
        .await
        .assert_status(422);
    fresh
        .sign_in("ada@example.org", "a brand new long passphrase")
        .await
        .assert_redirect("/");
    // Single use.
    stranger.get("/").await;
    stranger
        .post(
            "/password-reset/confirm",
            &[
                ("token", &token_of(&reset)),
                ("new_password", "yet another long passphrase"),
            ],
        )
        .await
        .assert_status(422);

    // Resend: the same answer for every address; a new link for the unverified account only.
    let before = app.outbox().len();
    for email in ["bob@example.org", "ada@example.org", "nobody@example.org"] {
        let mut c = app.agent();
        c.get("/verify/resend").await.assert_status(200);
        c.post("/verify/resend", &[("email", email)])
            .await
            .assert_redirect("/login");
    }
    // The mail goes out after the answer: wait for the new link (the old one is there first).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let link = loop {
        let link = bob.mailed_link("bob@example.org", "/verify").await;
        if link != bob_link {
            break link;
        }
        assert!(std::time::Instant::now() < deadline, "no new link for bob");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    bob.get("/").await;
    bob.post("/verify", &[("token", &token_of(&link))])
        .await
        .assert_redirect("/");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.outbox().len(), before + 1, "only bob's new link");

    // Retention: an account never confirmed is erased after the period; confirmed ones stay.
    let mut late = app.agent();
    late.unverified_account("late@example.org").await;
    sqlx::query("UPDATE users SET created_at = created_at - 8 * 86400")
        .execute(app.portal.db.pool())
        .await
        .expect("age the accounts");
    let purged = app
        .portal
        .accounts
        .purge_unverified(std::time::Duration::from_secs(7 * 86_400))
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    assert!(app
        .portal
        .accounts
        .user_by_email("late@example.org")
        .await
        .unwrap()
        .is_none());
    assert!(app
        .portal
        .accounts
        .user_by_email("ada@example.org")
        .await
        .unwrap()
        .is_some());
    assert!(!late.signed_in().await);
}

pub async fn sign_up_flood_is_throttled(app: TestApp) {
    // Thirty sign-ups and resends for one address from thirty addresses (each under the
    // per-address route limit): at most three mails an hour reach it.
    for i in 0..30 {
        let mut a = app.agent();
        if i % 2 == 0 {
            a.sign_up("victim@example.org", PASSWORD)
                .await
                .assert_redirect("/login");
        } else {
            a.get("/verify/resend").await;
            a.post("/verify/resend", &[("email", "victim@example.org")])
                .await
                .assert_redirect("/login");
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let to_victim = app
        .outbox()
        .into_iter()
        .filter(|m| m.to.contains("victim@"))
        .count();
    assert!((1..=3).contains(&to_victim), "{to_victim} mails");
}

/// The attack: a verified account with an open request tries to collect every donor's number
/// through the pages, the API and the reveal endpoint, from many addresses. It gets at most
/// the daily quota, only of matching donors, and every one is in those donors' logs. An
/// unverified account and an anonymous visitor get none.
pub async fn harvesting_gets_at_most_the_quota(app: TestApp) {
    buttress_portal::seed::seed_demo(&app.portal.db, 150)
        .await
        .expect("seed");
    let today = buttress_portal::db::today_utc();
    let rows = sqlx::query("SELECT user_id FROM donors")
        .fetch_all(app.portal.db.pool())
        .await
        .expect("ids");
    let ids: Vec<i64> = rows.iter().map(|r| sqlx::Row::get(r, "user_id")).collect();

    let mut mallory = app.agent();
    mallory.account("mallory@example.org").await;
    let request = mallory.request("AB+", "London", "Harvest General").await;
    let mut lurker = app.agent();
    lurker.unverified_account("lurker@example.org").await;
    let anonymous = app.agent();

    let mut bodies = Vec::new();
    for (n, who) in [mallory.clone(), lurker.clone(), anonymous.clone()]
        .into_iter()
        .enumerate()
    {
        for page in 1..=10 {
            let mut a = who.clone();
            a.peer = format!("198.51.100.{}:4000{n}", page)
                .parse()
                .expect("peer");
            bodies.push(a.get(&format!("/donors?page={page}")).await.body);
            bodies.push(a.get(&format!("/api/donors?page={page}")).await.body);
            bodies.push(
                a.get(&format!("/donors?city=London&blood_group=O-&page={page}"))
                    .await
                    .body,
            );
            bodies.push(
                a.get(&format!("/requests/{request}?page={page}"))
                    .await
                    .body,
            );
        }
    }
    // The reveal endpoint, every donor id, from a new address each time, form and API.
    let mut denied = 0;
    for (i, id) in ids.iter().enumerate() {
        for (n, who) in [&mallory, &lurker, &anonymous].into_iter().enumerate() {
            let mut a = who.clone();
            a.peer = format!("203.0.113.{}:5{n}{:03}", i % 250 + 1, i % 1000)
                .parse()
                .expect("peer");
            if n < 2 {
                a.get(&format!("/requests/{request}")).await;
            }
            let form = a
                .post(
                    &format!("/requests/{request}/reveal"),
                    &[("donor", &id.to_string())],
                )
                .await;
            let api = a
                .post_json(
                    &format!("/api/requests/{request}/reveal"),
                    &serde_json::json!({ "donor": id }),
                )
                .await;
            denied +=
                usize::from(form.status.as_u16() != 303) + usize::from(api.status.as_u16() != 200);
            if n == 0 {
                bodies.push(a.get(&format!("/requests/{request}")).await.body);
            }
            bodies.push(form.body);
            bodies.push(api.body);
        }
    }
    assert!(denied > 0);

    // What the unverified account and the visitor saw: no number at all.
    let split = bodies.len();
    let _ = split;
    let mut lurker_bodies = Vec::new();
    for path in [
        "/donors?page=1",
        "/api/donors?page=1",
        &format!("/requests/{request}"),
    ] {
        lurker_bodies.push(lurker.get(path).await.body);
        lurker_bodies.push(anonymous.clone().get(path).await.body);
    }
    for body in &lurker_bodies {
        assert!(!body.contains(PHONE_PATTERN), "a number leaked: {body}");
    }

    // What mallory collected: at most the quota, only matching donors, all logged.
    let mut phones: Vec<String> = Vec::new();
    for body in &bodies {
        for (at, _) in body.match_indices(PHONE_PATTERN) {
            let number: String = body[at..].chars().take(13).collect();
            if !phones.contains(&number) {
                phones.push(number);
            }
        }
    }
    let revealed = sqlx::query("SELECT donor_id, requester_id FROM reveals")
        .fetch_all(app.portal.db.pool())
        .await
        .expect("reveals");
    let mallory_id = app
        .portal
        .accounts
        .user_by_email("mallory@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    assert!(
        !revealed.is_empty() && revealed.len() <= 10,
        "{} reveals",
        revealed.len()
    );
    assert!(phones.len() <= revealed.len(), "{phones:?}");
    let req = app.portal.db.request(request).await.expect("request");
    for row in &revealed {
        let donor_id: i64 = sqlx::Row::get(row, "donor_id");
        let requester: i64 = sqlx::Row::get(row, "requester_id");
        assert_eq!(requester, mallory_id);
        let donor = app
            .portal
            .db
            .donor(donor_id, today)
            .await
            .unwrap()
            .expect("donor");
        assert!(
            buttress_portal::reveals::donor_matches(&req, &donor),
            "{donor:?}"
        );
        assert!(phones.contains(&donor.phone), "{} shown", donor.phone);
        let log = app.portal.db.reveals_of_donor(donor_id).await.expect("log");
        assert!(log
            .iter()
            .any(|e| e.who == "mallory@example.org" && e.request_id == request));
    }
    // The quota answer is a clear 429.
    let mut a = mallory.clone();
    a.get(&format!("/requests/{request}")).await;
    let unrevealed = ids.iter().find(|id| {
        !revealed
            .iter()
            .any(|r| sqlx::Row::get::<i64, _>(r, "donor_id") == **id)
    });
    if let (Some(id), true) = (unrevealed, revealed.len() == 10) {
        let r = a
            .post_json(
                &format!("/api/requests/{request}/reveal"),
                &serde_json::json!({ "donor": id }),
            )
            .await;
        assert!(matches!(r.status.as_u16(), 404 | 429), "{}", r.body);
    }
}

pub async fn donor_log_relay_and_request_cap(app: TestApp) {
    let mut donor = app.agent();
    donor.account("dora@example.org").await;
    donor.profile("Dora", "O-", "York").await;
    let mut quiet = app.agent();
    quiet.account("quiet@example.org").await;
    quiet.get("/profile").await;
    quiet
        .post(
            "/profile",
            &[
                ("display_name", "Quinn"),
                ("blood_group", "O-"),
                ("city", "York"),
                ("phone", "+44 7700 900555"),
                ("available", "on"),
                ("relay_only", "on"),
            ],
        )
        .await
        .assert_redirect("/profile");
    let mut asker = app.agent();
    asker.account("asker@example.org").await;
    let id = asker.request("A+", "York", "York Hospital").await;
    let page = asker.get(&format!("/requests/{id}")).await;
    assert!(!page.body.contains(PHONE_PATTERN));
    let dora = app
        .portal
        .accounts
        .user_by_email("dora@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    let quinn = app
        .portal
        .accounts
        .user_by_email("quiet@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    // Reveal Dora: shown on the request page, listed on her profile.
    asker
        .post(
            &format!("/requests/{id}/reveal"),
            &[("donor", &dora.to_string())],
        )
        .await;
    assert!(asker
        .get(&format!("/requests/{id}"))
        .await
        .body
        .contains("tel:+447700900123"));
    let log = donor.get("/profile").await.body;
    assert!(
        log.contains("asker@example.org") && log.contains("saw your number"),
        "{log}"
    );
    // Quinn: never a number, a relayed message instead, by mail, listed too.
    asker.get(&format!("/requests/{id}")).await;
    let r = asker
        .post(
            &format!("/requests/{id}/reveal"),
            &[("donor", &quinn.to_string())],
        )
        .await;
    r.assert_status(404);
    asker.get(&format!("/requests/{id}")).await;
    asker
        .post(
            &format!("/requests/{id}/relay"),
            &[
                ("donor", &quinn.to_string()),
                ("message", "Could you give on Monday?"),
            ],
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mail = app
        .outbox()
        .into_iter()
        .find(|m| m.to.contains("quiet@") && m.body.contains("Monday"))
        .expect("relayed");
    assert!(mail.body.contains("asker@example.org") && !mail.body.contains("900555"));
    let log = quiet.get("/profile").await.body;
    assert!(log.contains("sent you a message"), "{log}");
    assert!(!asker
        .get(&format!("/requests/{id}"))
        .await
        .body
        .contains("900555"));
    // Someone else cannot reveal for this request.
    let mut other = app.agent();
    other.account("other@example.org").await;
    other.get(&format!("/requests/{id}")).await;
    other
        .post(
            &format!("/requests/{id}/reveal"),
            &[("donor", &dora.to_string())],
        )
        .await
        .assert_status(404);
    // Open-request cap: three, then 429; closing one frees a place.
    asker.request("B+", "York", "Two").await;
    asker.request("B+", "York", "Three").await;
    asker.get("/requests/new").await;
    let r = asker
        .post(
            "/requests/new",
            &[
                ("blood_group", "B+"),
                ("city", "York"),
                ("hospital", "Four"),
                ("units", "1"),
                ("urgency", "normal"),
            ],
        )
        .await;
    r.assert_status(429);
    asker.get(&format!("/requests/{id}")).await;
    asker.post(&format!("/requests/{id}/close"), &[]).await;
    asker.request("B+", "York", "Four").await;
    // The landing page: group, city and urgency only.
    let landing = app.agent().get("/").await.body;
    assert!(
        landing.contains("York") && !landing.contains("Four") && !landing.contains("Hospital"),
        "{landing}"
    );
}

pub async fn export_and_erase(app: TestApp) {
    let mut dora = app.agent();
    dora.account("dora@example.org").await;
    dora.profile("Dora", "O-", "York").await;
    let own = dora.request("O+", "York", "Own Request").await;
    let mut asker = app.agent();
    asker.account("asker@example.org").await;
    let id = asker.request("A+", "York", "York Hospital").await;
    let dora_id = app
        .portal
        .accounts
        .user_by_email("dora@example.org")
        .await
        .unwrap()
        .unwrap()
        .id;
    asker.get(&format!("/requests/{id}")).await;
    asker
        .post(
            &format!("/requests/{id}/reveal"),
            &[("donor", &dora_id.to_string())],
        )
        .await;
    let mut second = app.agent();
    second
        .sign_in("dora@example.org", PASSWORD)
        .await
        .assert_redirect("/");

    // Export: the password first, once.
    let form = dora.get("/account/export").await;
    form.assert_status(200);
    assert!(form.body.contains("Your password") && !form.body.contains("York Hospital"));
    dora.post("/account/export", &[("password", "not my password at all")])
        .await
        .assert_status(422);
    dora.post("/account/export", &[("password", PASSWORD)])
        .await
        .assert_redirect("/account/export");
    let doc = dora.get("/account/export").await;
    assert!(doc
        .header("content-disposition")
        .is_some_and(|v| v.contains("attachment")));
    let doc = doc.json();
    assert_eq!(doc["account"]["email"], "dora@example.org");
    assert_eq!(doc["donor_profile"]["phone"], "+447700900123");
    assert_eq!(doc["blood_requests"][0]["id"], own);
    assert_eq!(doc["reveals_of_my_contact"][0]["who"], "asker@example.org");
    assert_eq!(doc["sessions"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        dora.get("/account/export").await.header("content-type"),
        Some("text/html; charset=utf-8"),
        "once"
    );

    // Erase: the password is required; then everything goes at once.
    let before = rows(&app).await;
    dora.get("/account/delete").await.assert_status(200);
    dora.post("/account/delete", &[("password", "not my password at all")])
        .await
        .assert_status(422);
    assert_eq!(rows(&app).await, before);
    let done = dora
        .post("/account/delete", &[("password", PASSWORD)])
        .await;
    done.assert_status(200);
    assert!(done.body.contains("Your account is deleted"));
    assert!(!dora.signed_in().await && !second.signed_in().await);
    assert_eq!(
        rows(&app).await,
        [before[0] - 1, before[1] - 1, before[2] - 1]
    );
    for sql in [
        "SELECT COUNT(*) FROM reveals",
        "SELECT COUNT(*) FROM account_tokens WHERE user_id = $1",
        "SELECT COUNT(*) FROM users WHERE id = $1",
    ] {
        let n: i64 = sqlx::Row::get(
            &sqlx::query(sql)
                .bind(dora_id)
                .fetch_one(app.portal.db.pool())
                .await
                .expect("count"),
            0,
        );
        assert_eq!(n, 0, "{sql}");
    }
    let mut again = app.agent();
    again
        .sign_in("dora@example.org", PASSWORD)
        .await
        .assert_status(422);
    assert!(!app
        .agent()
        .get("/donors?city=York")
        .await
        .body
        .contains("Dora"));
    assert!(!asker
        .get(&format!("/requests/{id}"))
        .await
        .body
        .contains("Dora"));
}

pub async fn liveness_and_readiness(app: TestApp) {
    let mut a = app.agent();
    let live = a.get("/healthz").await;
    live.assert_status(200);
    assert_eq!(live.body, "ok");
    let ready = a.get("/readyz").await;
    ready.assert_status(200);
    assert_eq!(ready.body, "ready");
    // Readiness is limited per address; liveness never is by the route limit.
    let mut limited = false;
    for _ in 0..125 {
        if a.get("/readyz").await.status.as_u16() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "/readyz is rate limited");
    a.get("/healthz").await.assert_status(200);
    // The database gone: liveness stays up (no I/O), readiness says so.
    app.portal.db.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    a.get("/healthz").await.assert_status(200);
    app.agent().get("/readyz").await.assert_status(503);
}

/// A real SMTP server on loopback (aiosmtpd): the verification mail arrives there, and its
/// link works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_the_link() {
    let smtp = buttress_testkit::mail::SmtpServer::start();
    let url = smtp.url();
    let app = TestApp::open_with(None, &[("BUTTRESS_SMTP_URL", url.as_str())]).await;
    let mut a = app.agent();
    a.unverified_account("ada@example.org").await;
    let link = wait_for_link(|| smtp.messages(), "ada@example.org", "/verify").await;
    assert!(app.outbox().is_empty(), "SMTP, not the outbox");
    let message = smtp.messages().pop().expect("a message");
    assert!(
        message.subject.contains("Confirm your address"),
        "{message:?}"
    );
    a.follow_link(&link).await.assert_status(200);
    a.post("/verify", &[("token", &token_of(&link))])
        .await
        .assert_redirect("/");
    a.request("O-", "Leeds", "LGI").await;
}

/// Sign-in costs the same argon2 work for an unknown address, a wrong password on an account
/// with the current parameters, and a wrong password on an account whose hash still uses
/// older ones: one verification per parameter set in use. (Without the equalisation the old
/// account's attempt would be one verification at its own, cheaper, parameters.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sign_in_attempt_costs_the_same_argon2_work() {
    use buttress_portal::validate::SignUpInput;
    use buttress_portal::{Accounts, Db, PasswordParams, SignUpOutcome};
    let db = Db::in_memory().await.expect("db");
    let current = PasswordParams::insecure_fast_for_tests();
    let old = PasswordParams {
        m_cost: 512,
        t_cost: 1,
        p_cost: 1,
    };
    let old_accounts = Accounts::new(db.clone(), old).await.expect("old");
    let input = |email: &str| SignUpInput {
        email: email.into(),
        password: PASSWORD.into(),
    };
    let SignUpOutcome::Created(legacy) = old_accounts
        .sign_up(&input("old@example.org"))
        .await
        .expect("sign up")
    else {
        panic!("created")
    };
    let accounts = Accounts::new(db.clone(), current).await.expect("accounts");
    let _ = accounts
        .sign_up(&input("new@example.org"))
        .await
        .expect("sign up");
    let work = |f: &Accounts| f.argon2_work();
    let mut costs = Vec::new();
    for (email, password) in [
        ("nobody@example.org", PASSWORD),
        ("new@example.org", "wrong password here"),
        ("old@example.org", "wrong password here"),
    ] {
        let before = work(&accounts);
        assert!(accounts
            .authenticate(email, password)
            .await
            .expect("auth")
            .is_none());
        let after = work(&accounts);
        let delta: Vec<(String, u64)> = after
            .iter()
            .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, d)| *d > 0)
            .collect();
        costs.push(delta);
    }
    assert_eq!(costs[0], costs[1], "unknown vs current account");
    assert_eq!(costs[0], costs[2], "unknown vs account on old parameters");
    assert_eq!(
        costs[0].len(),
        2,
        "one verification per parameter set: {costs:?}"
    );
    // The right password upgrades the old hash (conditionally) and the extra set goes away.
    assert!(accounts
        .authenticate("old@example.org", PASSWORD)
        .await
        .expect("auth")
        .is_some());
    let stored: String = sqlx::Row::get(
        &sqlx::query("SELECT password_hash FROM users WHERE id = $1")
            .bind(legacy.id)
            .fetch_one(db.pool())
            .await
            .expect("row"),
        0,
    );
    assert!(stored.starts_with(&current.phc_prefix()), "{stored}");
    let before = work(&accounts);
    let _ = accounts
        .authenticate("nobody@example.org", PASSWORD)
        .await
        .expect("auth");
    let after = work(&accounts);
    let total: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    assert_eq!(
        total, 1,
        "back to one verification once every hash is current"
    );
}
