//! Every flow and every validation error, through the whole stack.

use buttress_portal::accounts::SignUpOutcome;
use buttress_portal::db::Table;
use buttress_portal::render::LOG_IN_FAILED;

use crate::support::*;

/// The page with its per-response parts (tokens, nonces) blanked, to compare two answers.
fn normalised(body: &str) -> String {
    let mut out = String::new();
    for part in body.split('"') {
        if part.len() >= 22
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
        {
            out.push_str("<token>");
        } else {
            out.push_str(part);
        }
        out.push('"');
    }
    out
}

pub async fn sign_up_same_answer_and_validation(app: TestApp) {
    let mut a = app.agent();
    a.sign_up("ada@example.org", PASSWORD)
        .await
        .assert_redirect("/login");
    let first = a.get("/login").await;
    first.assert_status(200);
    assert!(first.body.contains(SignUpOutcome::MESSAGE));
    assert!(!a.signed_in().await, "a new account is not signed in");

    // The same address again (another case): same redirect, same page, no new row.
    let mut b = app.agent();
    b.sign_up("ADA@example.org", "another long passphrase")
        .await
        .assert_redirect("/login");
    let second = b.get("/login").await;
    assert_eq!(normalised(&first.body), normalised(&second.body));
    assert_eq!(app.count(Table::Users).await, 1);

    // Validation: every field listed, email refilled, password never.
    let mut c = app.agent();
    c.get("/signup").await;
    let r = c
        .post(
            "/signup",
            &[("email", "not-an-email"), ("password", "short")],
        )
        .await;
    r.assert_status(422);
    assert!(r.body.contains("id=\"email-error\"") && r.body.contains("id=\"password-error\""));
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(r.body.contains("value=\"not-an-email\""));
    assert!(!r.body.contains("value=\"short\""));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = c
        .post(
            "/signup",
            &[("email", "bob@example.org"), ("password", "password1234")],
        )
        .await;
    r.assert_status(422);
    assert!(
        r.body.contains("id=\"password-error\""),
        "common password refused"
    );
    let r = c
        .post(
            "/signup",
            &[
                ("email", "bob@example.org"),
                ("password", "bob@example.org"),
            ],
        )
        .await;
    r.assert_status(422);
    assert_eq!(app.count(Table::Users).await, 1);
}

pub async fn sign_in_rotates_and_fails_generically(app: TestApp) {
    let mut a = app.agent();
    a.sign_up("ada@example.org", PASSWORD).await;
    a.get("/login").await;
    let pre_cookie = a.cookie.clone().expect("a pre-login session for the token");
    let pre_token = a.token.clone().expect("token");

    let wrong = a
        .post(
            "/login",
            &[
                ("email", "ada@example.org"),
                ("password", "wrong password here"),
            ],
        )
        .await;
    wrong.assert_status(422);
    assert!(wrong.body.contains(LOG_IN_FAILED));
    let unknown = a
        .post(
            "/login",
            &[("email", "nobody@example.org"), ("password", PASSWORD)],
        )
        .await;
    unknown.assert_status(422);
    assert!(unknown.body.contains(LOG_IN_FAILED));
    assert_eq!(
        normalised(&wrong.body).replace("ada@", "X@"),
        normalised(&unknown.body).replace("nobody@", "X@"),
        "the same page for an unknown email and a wrong password"
    );
    let malformed = a
        .post("/login", &[("email", "<b>x"), ("password", "")])
        .await;
    malformed.assert_status(422);
    assert!(malformed.body.contains(LOG_IN_FAILED));
    assert!(!malformed.body.contains("<b>x"));

    a.post(
        "/login",
        &[("email", "Ada@Example.org"), ("password", PASSWORD)],
    )
    .await
    .assert_redirect("/");
    let post_cookie = a.cookie.clone().expect("session");
    assert_ne!(pre_cookie, post_cookie, "a new session id on sign-in");
    let home = a.get("/").await;
    assert!(home.body.contains("You are signed in."));
    assert!(home.body.contains("ada@example.org"));
    assert!(a.signed_in().await);

    // The pre-login cookie is dead; the pre-login token does not work with the new session.
    let mut old = app.agent();
    old.cookie = Some(pre_cookie);
    assert!(
        !old.signed_in().await,
        "the pre-login cookie no longer works"
    );
    let mut replay = a.clone();
    replay.token = Some(pre_token);
    let r = replay
        .post_raw(
            "/logout",
            &form_body(&[("csrf_token", replay.token.clone().as_deref().unwrap_or(""))]),
            &[("origin", ORIGIN), ("accept", "application/json")],
        )
        .await;
    r.assert_status(403);
    assert_eq!(r.json()["reason"], "bad-token");
}

pub async fn sign_out_kills_the_session(app: TestApp) {
    let mut a = app.agent();
    a.account("ada@example.org").await;
    let signed_in_cookie = a.cookie.clone().expect("cookie");
    a.post("/logout", &[]).await.assert_redirect("/");
    assert!(a.cookie.is_none(), "the cookie is cleared");
    let mut replay = app.agent();
    replay.cookie = Some(signed_in_cookie);
    assert!(
        !replay.signed_in().await,
        "a replayed cookie fails after sign-out"
    );
    // Sign-out is a POST: a GET does nothing.
    a.account_again().await;
    let r = a.get("/logout").await;
    r.assert_status(405);
    assert!(a.signed_in().await);
}

impl Agent {
    async fn account_again(&mut self) {
        self.sign_in("ada@example.org", PASSWORD)
            .await
            .assert_redirect("/");
    }
}

/// The signed-in account is read on every request, never kept: the landing page, the request
/// list, the donor search (with results, none, past the last page, invalid) and its JSON API
/// show it, and once the account is deleted each of them answers as to a visitor at once. A
/// guard for any change that reads the account some other way (e.g. in the page's own query).
pub async fn deleted_account_is_signed_out_on_every_page(app: TestApp) {
    buttress_portal::seed::seed_demo(&app.portal.db, 60)
        .await
        .expect("seed");
    let mut me = app.agent();
    me.account("gone@example.org").await;
    me.request("O+", "London", "St Mary's").await;
    let header = "<span class=\"muted\">(gone@example.org)</span>";
    let pages = [
        "/",
        "/requests",
        "/requests?page=99",
        "/donors",
        "/donors?city=London",
        "/donors?city=Atlantis",
        "/donors?city=London&page=99",
        "/donors?blood_group=Z",
    ];
    for path in pages {
        let r = me.get(path).await;
        assert!(r.body.contains(header), "{path}: signed in\n{}", r.body);
    }
    assert!(
        !me.get("/donors?city=London").await.body.contains("tel:"),
        "lists never show numbers"
    );
    assert!(me.get("/requests").await.body.contains("St Mary"));
    let api = me.get("/api/donors?city=London").await.json();
    assert!(api["items"][0]["display_name"].is_string(), "{api}");
    assert!(api["items"][0].get("phone").is_none(), "{api}");
    let api = me.get("/api/donors?city=Atlantis").await.json();
    assert_eq!(api["total"], 0, "{api}");

    sqlx::query("DELETE FROM users WHERE email = $1")
        .bind("gone@example.org")
        .execute(app.portal.db.pool())
        .await
        .expect("delete the account");
    for path in pages {
        let r = me.get(path).await;
        assert!(!r.body.contains("gone@example.org"), "{path}: signed out");
        assert!(!r.body.contains("Sign out"), "{path}: signed out");
        assert!(!r.body.contains("tel:"), "{path}: no phone numbers");
    }
    let api = me.get("/api/donors?city=London").await.json();
    assert!(api["items"][0].get("phone").is_none(), "{api}");
    assert!(!me.signed_in().await);
}

pub async fn profile_edit_and_validation(app: TestApp) {
    let mut a = app.agent();
    a.account("ada@example.org").await;
    let form = a.get("/profile").await;
    form.assert_status(200);
    assert!(form.body.contains("name=\"csrf_token\""));
    let r = a
        .post(
            "/profile",
            &[
                ("display_name", ""),
                ("blood_group", "C+"),
                ("city", ""),
                ("phone", "12"),
                ("last_donation", "2999-01-01"),
            ],
        )
        .await;
    r.assert_status(422);
    for field in [
        "display_name",
        "blood_group",
        "city",
        "phone",
        "last_donation",
    ] {
        assert!(r.body.contains(&format!("id=\"{field}-error\"")), "{field}");
    }
    assert_eq!(app.count(Table::Donors).await, 0);
    let r = a.post("/profile", &[("last_donation", "01/02/2020")]).await;
    r.assert_status(422);
    assert!(r.body.contains("YYYY-MM-DD"));

    a.post(
        "/profile",
        &[
            ("display_name", "Ada  Lovelace"),
            ("blood_group", "ab+"),
            ("city", "  London "),
            ("phone", "+44 (0)7700-900 123"),
            ("last_donation", "2020-01-02"),
            ("available", "on"),
        ],
    )
    .await
    .assert_redirect("/profile");
    let saved = a.get("/profile").await;
    assert!(saved.body.contains("Your profile is saved."));
    assert!(saved.body.contains("value=\"Ada Lovelace\""));
    assert!(saved.body.contains("<option value=\"AB+\" selected>"));
    assert!(saved.body.contains("value=\"2020-01-02\""));
    assert!(saved.body.contains("You can give blood now."));
    // Edit: unavailable (checkbox absent).
    a.post(
        "/profile",
        &[
            ("display_name", "Ada"),
            ("blood_group", "AB+"),
            ("city", "London"),
            ("phone", "+447700900123"),
        ],
    )
    .await
    .assert_redirect("/profile");
    assert_eq!(app.count(Table::Donors).await, 1);
    let r = app.agent().get("/donors?city=London").await;
    assert!(
        r.body.contains("0 donors found"),
        "unavailable donors are not listed"
    );
    // Anonymous visitors are sent to sign in.
    let r = app.agent().get("/profile").await;
    r.assert_redirect("/login");
}

pub async fn search_pages_groups_and_phones(app: TestApp) {
    buttress_portal::seed::seed_demo(&app.portal.db, 120)
        .await
        .expect("seed");
    let mut anon = app.agent();
    let empty = anon.get("/donors").await;
    empty.assert_status(200);
    assert!(
        !empty.body.contains("found</h2>"),
        "no results before a search"
    );
    assert!(
        anon.cookie.is_none(),
        "anonymous browsing creates no session"
    );

    let today = buttress_portal::db::today_utc();
    let all = app
        .portal
        .db
        .search_donors(
            &buttress_portal::DonorSearch {
                groups: buttress_portal::GroupFilter::Any,
                city: None,
                eligible_only: false,
            },
            1,
            today,
        )
        .await
        .expect("search");
    assert!(all.total_pages >= 2, "enough donors for pages");
    let p1 = anon.get("/donors?blood_group=&mode=exact&city=").await;
    p1.assert_status(200);
    assert!(p1.body.contains(&format!("{} donors found", all.total)));
    assert!(p1.body.contains(&format!("Page 1 of {}", all.total_pages)));
    assert!(p1.body.contains("rel=\"next\""));
    assert!(
        !p1.body.contains("tel:"),
        "no phone numbers for anonymous visitors"
    );
    let p2 = anon
        .get("/donors?blood_group=&mode=exact&city=&page=2")
        .await;
    assert!(p2.body.contains(&format!("Page 2 of {}", all.total_pages)));
    assert!(p2.body.contains("rel=\"prev\""));
    let far = anon
        .get("/donors?blood_group=&mode=exact&city=&page=99999")
        .await;
    far.assert_status(200);
    assert!(far
        .body
        .contains(&format!("Page {0} of {0}", all.total_pages)));
    let junk = anon.get("/donors?page=abc&city=").await;
    junk.assert_status(200);

    // Compatible groups: a recipient of O- can take O- only; AB+ from every group.
    let o_neg = anon
        .get("/donors?blood_group=O-&mode=compatible&city=")
        .await;
    for g in ["A+", "A-", "B+", "B-", "AB+", "AB-", "O+"] {
        assert!(
            !o_neg
                .body
                .contains(&format!("<td data-label=\"Group\">{g}</td>")),
            "{g} cannot give to O-"
        );
    }
    let ab = anon
        .get("/donors?blood_group=AB%2B&mode=compatible&city=")
        .await;
    assert!(ab.body.contains(&format!("{} donors found", all.total)));
    let exact = anon.get("/donors?blood_group=AB%2B&mode=exact&city=").await;
    assert!(!exact.body.contains("<td data-label=\"Group\">O-</td>"));
    // City: case and spaces do not matter; wildcards are literal.
    let city = anon.get("/donors?city=%20%20lOnDoN%20").await;
    assert!(city.body.contains("London"));
    let wild = anon.get("/donors?city=%25").await;
    assert!(wild.body.contains("0 donors found"));

    // Validation errors re-render the form.
    let bad = anon.get("/donors?blood_group=Z%2B&mode=sideways").await;
    bad.assert_status(422);
    assert!(
        bad.body.contains("id=\"blood_group-error\"") && bad.body.contains("id=\"mode-error\"")
    );

    // No phone numbers in lists, signed in or not; the JSON API follows the same rule.
    let mut me = app.agent();
    me.account("ada@example.org").await;
    let signed = me.get("/donors?blood_group=&city=").await;
    assert!(!signed.body.contains("+447700900"));
    assert_eq!(
        signed.header("cache-control"),
        Some("no-store"),
        "a signed-in page is nobody's to store"
    );
    let api = anon.get("/api/donors?city=London").await.json();
    assert!(api["items"][0].get("phone").is_none(), "{api}");
    assert!(api["total"].as_u64().expect("total") > 0);
    let api = me.get("/api/donors?city=London").await.json();
    assert!(api["items"][0].get("phone").is_none(), "{api}");
    assert!(api["items"][0].get("eligible_from").is_none(), "{api}");
    let r = anon
        .get_with(
            "/api/donors?blood_group=Q",
            &[("accept", "application/json")],
        )
        .await;
    r.assert_status(422);
    assert_eq!(r.json()["errors"][0]["field"], "blood_group");
}

pub async fn requests_form_api_and_matches(app: TestApp) {
    let mut donor = app.agent();
    donor.account("donor@example.org").await;
    donor.profile("Dora Donor", "O-", "Leeds").await;
    let mut far = app.agent();
    far.account("far@example.org").await;
    far.profile("Far Away", "O-", "York").await;

    let mut owner = app.agent();
    owner.account("owner@example.org").await;
    owner.profile("Owner Self", "O-", "Leeds").await;
    owner.get("/requests/new").await.assert_status(200);
    let r = owner
        .post(
            "/requests/new",
            &[
                ("blood_group", "X"),
                ("city", ""),
                ("hospital", ""),
                ("units", "0"),
                ("urgency", "whenever"),
            ],
        )
        .await;
    r.assert_status(422);
    for field in ["blood_group", "city", "hospital", "units", "urgency"] {
        assert!(r.body.contains(&format!("id=\"{field}-error\"")), "{field}");
    }
    let r = owner
        .post(
            "/requests/new",
            &[
                ("blood_group", "A+"),
                ("city", "Leeds"),
                ("hospital", "St James"),
                ("units", "21"),
                ("urgency", "urgent"),
            ],
        )
        .await;
    r.assert_status(422);
    assert!(
        r.body.contains("value=\"St James\""),
        "the form keeps its input"
    );
    assert_eq!(app.count(Table::BloodRequests).await, 0);

    let id = owner
        .request("A+", "leeds", "St James's University Hospital")
        .await;
    let page = owner.get(&format!("/requests/{id}")).await;
    page.assert_status(200);
    assert!(page.body.contains("Your request is posted."));
    assert!(
        page.body.contains("Dora Donor"),
        "a compatible donor in the city"
    );
    assert!(!page.body.contains("Far Away"), "not another city");
    assert!(!page.body.contains("Owner Self"), "never the owner");
    assert!(page.body.contains("Close request"));
    let list = app.agent().get("/requests").await;
    assert!(
        list.body.contains("St James&#x27;s University Hospital")
            || list.body.contains("St James&#39;s University Hospital")
    );
    let home = app.agent().get("/").await;
    assert!(home.body.contains(&format!("/requests/{id}")));
    let anon_page = app.agent().get(&format!("/requests/{id}")).await;
    assert!(
        !anon_page.body.contains("tel:"),
        "no phones for anonymous visitors"
    );
    assert!(!anon_page.body.contains("Close request"));

    // The JSON API: token in the header; 422 lists each field.
    let bad = owner
        .post_json(
            "/api/requests",
            &serde_json::json!({"blood_group": "Q", "units": 0, "urgency": 3}),
        )
        .await;
    bad.assert_status(422);
    assert_eq!(bad.header("content-type"), Some("application/problem+json"));
    let doc = bad.json();
    assert_eq!(doc["type"], "urn:buttress:validation");
    let fields: Vec<&str> = doc["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        ["blood_group", "city", "hospital", "units", "urgency"]
    );
    assert!(doc["errors"][0]["message"].is_string());
    let not_json = owner
        .post_json("/api/requests", &serde_json::json!([1, 2]))
        .await;
    not_json.assert_status(400);
    let ok = owner
        .post_json(
            "/api/requests",
            &serde_json::json!({"blood_group": "B-", "city": "Leeds", "hospital": "LGI", "units": 3, "urgency": "critical"}),
        )
        .await;
    ok.assert_status(201);
    let created = ok.json();
    assert_eq!(created["blood_group"], "B-");
    assert_eq!(created["urgency"], "critical");
    assert_eq!(created["status"], "open");
    assert_eq!(created["units"], 3);
    assert_eq!(ok.location(), format!("/requests/{}", created["id"]));
    assert_eq!(app.count(Table::BloodRequests).await, 2);
    // Without the token: 403. Not signed in: 401.
    let mut tokenless = owner.clone();
    tokenless.token = None;
    let r = tokenless
        .post_json("/api/requests", &serde_json::json!({"blood_group": "B-"}))
        .await;
    r.assert_status(403);
    assert_eq!(r.json()["reason"], "missing-token");
    let mut anon = app.agent();
    anon.get("/login").await;
    let r = anon
        .post_json(
            "/api/requests",
            &serde_json::json!({"blood_group": "B-", "city": "Leeds", "hospital": "LGI", "units": 3, "urgency": "critical"}),
        )
        .await;
    r.assert_status(401);
    assert_eq!(app.count(Table::BloodRequests).await, 2);
    // The form needs a signed-in user.
    app.agent()
        .get("/requests/new")
        .await
        .assert_redirect("/login");
}

pub async fn close_by_owner_only(app: TestApp) {
    let mut owner = app.agent();
    owner.account("owner@example.org").await;
    let id = owner.request("O+", "Bristol", "BRI").await;
    let mut other = app.agent();
    other.account("other@example.org").await;
    other.get(&format!("/requests/{id}")).await;
    let r = other
        .post_raw(
            &format!("/requests/{id}/close"),
            &form_body(&[("csrf_token", other.token.clone().as_deref().unwrap_or(""))]),
            &[("origin", ORIGIN), ("accept", "application/json")],
        )
        .await;
    r.assert_status(403);
    assert_eq!(r.json()["reason"], "forbidden");
    let page = owner.get(&format!("/requests/{id}")).await;
    assert!(page.body.contains("Close request"), "still open");

    owner
        .post(&format!("/requests/{id}/close"), &[])
        .await
        .assert_redirect(&format!("/requests/{id}"));
    let page = owner.get(&format!("/requests/{id}")).await;
    assert!(page.body.contains("The request is closed."));
    assert!(page.body.contains("closed"));
    assert!(!page.body.contains("Close request"));
    let list = app.agent().get("/requests").await;
    assert!(
        !list.body.contains(&format!("/requests/{id}\"")),
        "no longer listed as open"
    );

    owner
        .post("/requests/123/close", &[])
        .await
        .assert_status(404);
    owner
        .post("/requests/abc/close", &[])
        .await
        .assert_status(404);
    app.agent().get("/requests/-5").await.assert_status(404);
    app.agent()
        .get("/requests/99999999999999999999999")
        .await
        .assert_status(404);
    let mut anon = app.agent();
    anon.get("/login").await;
    anon.post(&format!("/requests/{id}/close"), &[])
        .await
        .assert_redirect("/login");
}

/// The session handles on the account page: (handle, current).
pub fn handles(body: &str) -> Vec<(String, bool)> {
    body.split("<tr")
        .skip(1)
        .filter_map(|row| {
            let at = row.find("action=\"/account/sessions/")?;
            let rest = &row[at + "action=\"/account/sessions/".len()..];
            let handle = rest.split('/').next()?.to_owned();
            Some((handle, row.contains("this device")))
        })
        .collect()
}

pub async fn sessions_revoke_one_and_everywhere(app: TestApp) {
    let mut laptop = app.agent();
    laptop.user_agent = "Laptop/1.0".into();
    laptop.account("ada@example.org").await;
    let mut phone = app.agent();
    phone.user_agent = "Phone/2.0".into();
    phone.peer = "127.0.0.9:5000".parse().expect("peer");
    phone
        .sign_in("ada@example.org", PASSWORD)
        .await
        .assert_redirect("/");
    let mut stranger = app.agent();
    stranger.account("eve@example.org").await;

    let page = laptop.get("/account/sessions").await;
    page.assert_status(200);
    assert!(page.body.contains("Laptop/1.0") && page.body.contains("Phone/2.0"));
    assert!(!page.body.contains("eve@"), "only this user's sessions");
    let rows = handles(&page.body);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (phone_handle, _) = rows
        .iter()
        .find(|(_, cur)| !cur)
        .expect("the other")
        .clone();
    assert!(
        !page.body.contains(phone.cookie.as_deref().expect("cookie")),
        "handles are not session ids"
    );

    // Someone else cannot revoke it; a malformed handle is a 404.
    stranger.get("/account/sessions").await;
    stranger
        .post(&format!("/account/sessions/{phone_handle}/revoke"), &[])
        .await
        .assert_status(404);
    stranger
        .post("/account/sessions/zzz/revoke", &[])
        .await
        .assert_status(404);
    assert!(phone.signed_in().await);

    laptop
        .post(&format!("/account/sessions/{phone_handle}/revoke"), &[])
        .await
        .assert_redirect("/account/sessions");
    assert!(!phone.signed_in().await, "revoked");
    assert!(laptop.signed_in().await);
    assert_eq!(
        handles(&laptop.get("/account/sessions").await.body).len(),
        1
    );

    // Sign out everywhere, this device included.
    phone
        .sign_in("ada@example.org", PASSWORD)
        .await
        .assert_redirect("/");
    let mut tablet = app.agent();
    tablet
        .sign_in("ada@example.org", PASSWORD)
        .await
        .assert_redirect("/");
    laptop.get("/account/sessions").await;
    laptop
        .post("/account/sessions/revoke-all", &[])
        .await
        .assert_redirect("/");
    assert!(!laptop.signed_in().await);
    assert!(!phone.signed_in().await);
    assert!(!tablet.signed_in().await);
    assert!(stranger.signed_in().await, "other users are untouched");

    // Revoking the current session from the list signs this device out.
    laptop.sign_in("ada@example.org", PASSWORD).await;
    let rows = handles(&laptop.get("/account/sessions").await.body);
    let (current, _) = rows.iter().find(|(_, cur)| *cur).expect("current").clone();
    laptop
        .post(&format!("/account/sessions/{current}/revoke"), &[])
        .await
        .assert_redirect("/");
    assert!(!laptop.signed_in().await);
    app.agent()
        .get("/account/sessions")
        .await
        .assert_redirect("/login");
}

/// The current password of the password change is throttled like a sign-in: a stolen session
/// cannot guess it. Five wrong guesses, then even the right password waits (429, Retry-After)
/// and nothing changes; a new password that only breaks the policy does not count.
pub async fn change_password_is_throttled(app: TestApp) {
    let mut thief = app.agent();
    thief.account("ada@example.org").await;
    for i in 0..5 {
        let r = thief
            .post(
                "/account/password",
                &[
                    ("current_password", &format!("guess number {i}")),
                    ("new_password", "the thief's new passphrase"),
                ],
            )
            .await;
        r.assert_status(422);
        assert!(r.body.contains("Your current password is not right."));
    }
    let r = thief
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "the thief's new passphrase"),
            ],
        )
        .await;
    r.assert_status(429);
    assert!(r.header("retry-after").is_some());
    assert!(r.body.contains("Too many wrong passwords."), "{}", r.body);
    let still = app
        .portal
        .accounts
        .authenticate("ada@example.org", PASSWORD)
        .await
        .expect("authenticate");
    assert!(still.is_some(), "the password did not change");

    let mut bob = app.agent();
    bob.account("bob@example.org").await;
    for _ in 0..8 {
        bob.post(
            "/account/password",
            &[("current_password", PASSWORD), ("new_password", "short")],
        )
        .await
        .assert_status(422);
    }
    bob.post(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "bob's brand new passphrase"),
        ],
    )
    .await
    .assert_redirect("/account/sessions");
}

pub async fn change_password_revokes_others(app: TestApp) {
    let mut a = app.agent();
    a.account("ada@example.org").await;
    let mut b = app.agent();
    b.sign_in("ada@example.org", PASSWORD)
        .await
        .assert_redirect("/");
    let form = a.get("/account/password").await;
    form.assert_status(200);
    let r = a
        .post(
            "/account/password",
            &[
                ("current_password", "not the password"),
                ("new_password", "short"),
            ],
        )
        .await;
    r.assert_status(422);
    assert!(
        r.body.contains("id=\"current_password-error\"")
            && r.body.contains("id=\"new_password-error\"")
    );
    assert!(b.signed_in().await, "nothing changed yet");

    let before = a.cookie.clone().expect("cookie");
    let new_password = "a brand new passphrase";
    a.post(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", new_password),
        ],
    )
    .await
    .assert_redirect("/account/sessions");
    let after = a.cookie.clone().expect("cookie");
    assert_ne!(before, after, "this session got a new id");
    let page = a.get("/account/sessions").await;
    assert!(page
        .body
        .contains("Your password is changed. Your other session was signed out."));
    assert_eq!(handles(&page.body).len(), 1);
    assert!(!b.signed_in().await, "the other session is revoked");
    let mut old = app.agent();
    old.cookie = Some(before);
    assert!(!old.signed_in().await, "the old id of this session is dead");

    let mut c = app.agent();
    c.sign_in("ada@example.org", PASSWORD)
        .await
        .assert_status(422);
    c.sign_in("ada@example.org", new_password)
        .await
        .assert_redirect("/");
}

pub async fn csrf_refusals_change_nothing(app: TestApp) {
    let mut a = app.agent();
    a.account("ada@example.org").await;
    a.get("/requests/new").await;
    let token = a.token.clone().expect("token");
    let fields = [
        ("csrf_token", token.as_str()),
        ("blood_group", "A+"),
        ("city", "Leeds"),
        ("hospital", "LGI"),
        ("units", "1"),
        ("urgency", "normal"),
    ];
    let body = form_body(&fields);
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Headers<'_>, &str, &str)] = &[
        (
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://evil.test"),
            ],
            &body,
            "cross-site",
        ),
        (&[("origin", "http://evil.test")], &body, "origin-mismatch"),
        (
            &[
                ("sec-fetch-site", "same-site"),
                ("origin", "http://sub.localhost"),
            ],
            &body,
            "same-site",
        ),
        (&[], &body, "no-origin"),
    ];
    for (headers, body, reason) in cases {
        let mut h = headers.to_vec();
        h.push(("accept", "application/json"));
        let r = a.post_raw("/requests/new", body, &h).await;
        r.assert_status(403);
        assert_eq!(r.json()["reason"], *reason);
    }
    let no_token = form_body(&fields[1..]);
    let r = a
        .post_raw(
            "/requests/new",
            &no_token,
            &[("origin", ORIGIN), ("accept", "application/json")],
        )
        .await;
    assert_eq!(r.json()["reason"], "missing-token");
    let mut other = app.agent();
    other.get("/login").await;
    let forged = form_body(&[
        ("csrf_token", other.token.clone().as_deref().unwrap_or("")),
        ("blood_group", "A+"),
    ]);
    let r = a
        .post_raw(
            "/requests/new",
            &forged,
            &[("origin", ORIGIN), ("accept", "application/json")],
        )
        .await;
    assert_eq!(r.json()["reason"], "bad-token");
    assert_eq!(app.count(Table::BloodRequests).await, 0);
    // A cross-site sign-out does not sign anyone out.
    let r = a
        .post_raw(
            "/logout",
            &form_body(&[("csrf_token", &token)]),
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    r.assert_status(403);
    assert!(a.signed_in().await);
}

pub async fn plumbing_routes(app: TestApp) {
    let mut a = app.agent();
    let css = a.get("/static/portal.css").await;
    css.assert_status(200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    let h = a.get("/healthz").await;
    h.assert_status(200);
    assert_eq!(h.body, "ok");
    let home = a.get("/").await;
    home.assert_status(200);
    let csp = home.header("content-security-policy").expect("csp");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|n| n.split('\'').next())
        .expect("nonce");
    assert!(home.body.contains(&format!("<script nonce=\"{nonce}\">")));
    assert_eq!(
        home.body.matches("<script").count(),
        1,
        "one inline script, with the nonce"
    );
    assert!(!home.body.contains("style=\""), "no inline styles");
    let missing = a
        .get_with("/nowhere", &[("accept", "application/json")])
        .await;
    missing.assert_status(404);
    assert_eq!(missing.json()["status"], 404);
    // The CSP report endpoint takes reports without a token (exempt) and never a 5xx.
    let r = a
        .post_raw(
            "/csp-report",
            r#"{"csp-report":{"document-uri":"http://localhost/","violated-directive":"script-src"}}"#,
            &[("content-type", "application/csp-report")],
        )
        .await;
    assert!(r.status.is_success(), "{:?} {}", r.status, r.body);
}

pub async fn login_limits_per_address_and_account(app: TestApp) {
    let mut a = app.agent();
    a.sign_up("ada@example.org", PASSWORD).await;
    // Per address: 5 requests to /login a minute, the form and the posts together.
    a.get("/login").await.assert_status(200);
    for _ in 0..4 {
        a.post(
            "/login",
            &[("email", "ada@example.org"), ("password", "not it at all")],
        )
        .await
        .assert_status(422);
    }
    let r = a
        .post_raw(
            "/login",
            &form_body(&[
                ("csrf_token", a.token.clone().as_deref().unwrap_or("")),
                ("email", "ada@example.org"),
                ("password", PASSWORD),
            ]),
            &[("origin", ORIGIN), ("accept", "application/json")],
        )
        .await;
    r.assert_status(429);
    assert_eq!(r.json()["reason"], "rate-limited");
    assert!(r.header("retry-after").is_some());
    assert!(!a.signed_in().await, "even the right password waits");
    // Another address is not affected.
    let mut victim = app.agent();
    victim
        .sign_in("ada@example.org", PASSWORD)
        .await
        .assert_redirect("/");

    // Per account, from many addresses: after the allowance every further try waits, for a
    // registered address and an unknown one alike; the owner's own network is not locked out.
    for account in ["ada@example.org", "nobody@example.org"] {
        let mut first_wait = None;
        for i in 0..60 {
            let mut attacker = app.agent();
            attacker.get("/login").await;
            let r = attacker
                .post(
                    "/login",
                    &[("email", account), ("password", "guess guess guess")],
                )
                .await;
            match r.status.as_u16() {
                422 => assert!(r.body.contains(LOG_IN_FAILED)),
                429 => {
                    assert!(r.body.contains("Too many failed sign-ins"), "{}", r.body);
                    assert!(r.header("retry-after").is_some());
                    first_wait = Some(i);
                    break;
                }
                s => panic!("{account}: status {s}"),
            }
        }
        let first_wait = first_wait.unwrap_or_else(|| panic!("{account}: never throttled"));
        eprintln!("{account}: first throttled attempt from a new address: #{first_wait}");
        // The account allows a burst of 50 failures an hour; the four above from `a` count too.
        assert!(
            (40..=50).contains(&first_wait),
            "{account}: throttled after {first_wait}"
        );
    }
    victim.get("/").await;
    victim.post("/logout", &[]).await.assert_redirect("/");
    victim
        .sign_in("ada@example.org", PASSWORD)
        .await
        .assert_redirect("/");
}
