//! Pages rendered with hostile data: everything a user typed comes out as text, every POST
//! form carries the CSRF token, every script the nonce, and phones only for signed-in viewers.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use buttress_portal::db::Page;
use buttress_portal::domain::{BloodGroup, Eligibility, RequestStatus, Urgency};
use buttress_portal::donors::{Donor, SearchInput};
use buttress_portal::error::FieldError;
use buttress_portal::render::{self, Flash, FlashKind, PageContext, SessionRow};
use buttress_portal::requests::BloodRequest;
use buttress_portal::validate::{ProfileInput, RequestInput};
use time::macros::date;

const TOKEN: &str = "tok3n-Abc_123";
const NONCE: &str = "n0nce+/=";
const XSS: &[&str] = &[
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "\"><script>alert(2)</script>",
    "' onmouseover='alert(3)",
    "javascript:alert(4)",
    "</title><svg onload=alert(5)>",
];

fn ctx(signed_in: bool, flash: Option<&'static str>) -> PageContext<'static> {
    PageContext {
        csrf_token: TOKEN,
        nonce: NONCE,
        signed_in,
        unverified: false,
        user_email: signed_in.then_some("<b>me</b>@example.org"),
        flash: flash.map(|message| Flash {
            kind: FlashKind::Error,
            message,
        }),
    }
}

fn donor(name: &str, city: &str) -> Donor {
    Donor {
        user_id: 7,
        display_name: name.into(),
        blood_group: BloodGroup::ONeg,
        city: city.into(),
        phone: "+442079460958".into(),
        last_donation: Some(date!(2026 - 05 - 01)),
        available: true,
        relay_only: false,
        updated_at: 0,
        eligibility: Eligibility::NotYet {
            from: date!(2026 - 06 - 26),
        },
    }
}

fn request(owner_id: i64, hospital: &str, city: &str, status: RequestStatus) -> BloodRequest {
    BloodRequest {
        id: 42,
        owner_id,
        blood_group: BloodGroup::AbNeg,
        city: city.into(),
        hospital: hospital.into(),
        units: 3,
        urgency: Urgency::Critical,
        status,
        created_at: 1_780_000_000,
        closed_at: None,
    }
}

fn page<T>(items: Vec<T>, page: u32, total_pages: u32) -> Page<T> {
    let total = items.len() as u64;
    Page {
        items,
        page,
        total_pages,
        total,
    }
}

/// Asserts the security properties every page must have.
fn check_page(html: &str, payload: &str) {
    // The payload never appears raw: each one holds a character (< > " ') that escaping
    // replaces, so finding it verbatim means it reached the page unescaped.
    let lower = html.to_lowercase();
    if payload.contains(['<', '>', '"', '\'']) {
        assert!(!html.contains(payload), "{payload} rendered raw:\n{html}");
    }
    for bad in ["<img", "<svg", "<script>alert"] {
        assert!(!lower.contains(bad), "{bad} rendered raw:\n{html}");
    }
    // Every script carries the nonce; no inline styles at all.
    assert_eq!(
        lower.matches("<script").count(),
        html.matches(&format!("<script nonce=\"{NONCE}\">")).count(),
        "a script without the nonce"
    );
    assert!(
        !lower.contains("<style") && !lower.contains(" style="),
        "inline style"
    );
    assert!(html.contains("href=\"/static/portal.css\""));
    // Every POST form carries the token exactly once; GET forms never do.
    for form in html.split("<form").skip(1) {
        let form = &form[..form.find("</form>").expect("closed form")];
        let tokens = form
            .matches(&format!(
                "<input type=\"hidden\" name=\"csrf_token\" value=\"{TOKEN}\">"
            ))
            .count();
        if form.contains("method=\"post\"") {
            assert_eq!(tokens, 1, "POST form without exactly one token: {form}");
        } else {
            assert!(
                form.contains("method=\"get\""),
                "form without a method: {form}"
            );
            assert!(!form.contains("csrf_token"), "token in a GET form: {form}");
        }
    }
}

#[test]
fn every_page_escapes_user_data_and_carries_token_and_nonce() {
    for &x in XSS {
        let c = ctx(true, Some(x));
        let signed_out = ctx(false, None);
        let field_errors = [FieldError::new("email", x)];
        let d = donor(x, x);
        let r = request(1, x, x, RequestStatus::Open);
        let mut pages = vec![
            render::landing(&c, &page(vec![r.clone()], 1, 1)).unwrap(),
            render::sign_up(&c, x, &field_errors).unwrap(),
            render::log_in(&signed_out, x, Some(x)).unwrap(),
            render::profile(
                &c,
                &render::profile_input(&d),
                &[FieldError::new("city", x)],
                Some(&d),
            )
            .unwrap(),
            render::requests(&c, &page(vec![r.clone()], 1, 1), std::slice::from_ref(&r)).unwrap(),
            render::request_detail(&c, &r, &page(vec![d.clone()], 1, 2), Some(1)).unwrap(),
            render::request_detail(&signed_out, &r, &page(vec![d.clone()], 1, 1), None).unwrap(),
            render::request_form(
                &c,
                &RequestInput {
                    blood_group: x.into(),
                    city: x.into(),
                    hospital: x.into(),
                    units: x.into(),
                    urgency: x.into(),
                },
                &[FieldError::new("hospital", x)],
            )
            .unwrap(),
            render::sessions(
                &c,
                &[
                    SessionRow {
                        id: x.into(),
                        created: 0,
                        last_seen: 60,
                        client: x.into(),
                        current: true,
                    },
                    SessionRow {
                        id: "abc".into(),
                        created: 0,
                        last_seen: 60,
                        client: "curl".into(),
                        current: false,
                    },
                ],
            )
            .unwrap(),
            render::change_password(&c, x, &[FieldError::new("new_password", x)]).unwrap(),
            render::error_page(&c, 404, Some(x)).unwrap(),
            render::error_page(&signed_out, 503, None).unwrap(),
        ];
        let form = SearchInput {
            blood_group: x.into(),
            mode: x.into(),
            city: x.into(),
            eligible_only: Some(x.into()),
            page: x.into(),
        };
        pages.push(
            render::search(
                &c,
                &form,
                &[FieldError::new("city", x)],
                Some(&page(vec![d.clone()], 1, 3)),
            )
            .unwrap(),
        );
        pages.push(render::search(&signed_out, &form, &[], None).unwrap());
        for html in &pages {
            check_page(html, x);
        }
        // The donor name shows as text, escaped (askama writes numeric entities).
        let escaped = x
            .replace('&', "&#38;")
            .replace('<', "&#60;")
            .replace('>', "&#62;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        assert!(
            pages[5].contains(&format!("<td data-label=\"Name\">{escaped}</td>")),
            "{escaped}"
        );
    }
}

#[test]
fn script_payload_in_a_donor_name_is_text() {
    let d = donor("<script>alert(1)</script>", "London");
    let html = render::search(
        &ctx(true, None),
        &SearchInput::default(),
        &[],
        Some(&page(vec![d], 1, 1)),
    )
    .unwrap();
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the nonce'd script"
    );
}

#[test]
fn phones_never_in_lists_and_only_revealed_ones_for_the_owner() {
    let d = donor("Ada", "London");
    let results = page(vec![d.clone()], 1, 1);
    let form = SearchInput::default();
    for signed_in in [false, true] {
        let out = render::search(&ctx(signed_in, None), &form, &[], Some(&results)).unwrap();
        assert!(!out.contains("2079460958"), "phone in the search results");
        assert!(
            !out.contains("2026-06-26") && out.contains("Not yet"),
            "the first eligible day tells the last donation's date"
        );
    }
    let r = request(1, "St Mary's", "London", RequestStatus::Open);
    let revealed = [(7, "+442079460958".to_owned())];
    let contact = render::RequestContact {
        quota: 10,
        revealed: &revealed,
    };
    let other =
        render::request_detail_with(&ctx(true, None), &r, &results, Some(2), contact).unwrap();
    assert!(!other.contains("2079460958"), "not the owner");
    assert!(!other.contains("/reveal"));
    let owner =
        render::request_detail_with(&ctx(true, None), &r, &results, Some(1), contact).unwrap();
    assert!(owner.contains("tel:+442079460958"));
    let unrevealed = render::request_detail(&ctx(true, None), &r, &results, Some(1)).unwrap();
    assert!(!unrevealed.contains("2079460958"));
    assert!(unrevealed.contains("action=\"/requests/42/reveal\""));
}

#[test]
fn json_view_has_no_phone_and_no_dates() {
    let d = donor("Ada", "London");
    let view = serde_json::to_value(d.view()).unwrap();
    assert!(view.get("phone").is_none());
    assert_eq!(view["eligible"], false);
    assert!(view.get("eligible_from").is_none(), "{view}");
    assert!(view.get("last_donation").is_none());
    assert!(view.get("user_id").is_none(), "no account key in the API");
    assert_eq!(view["blood_group"], "O-");
}

#[test]
fn close_button_only_for_the_owner_of_an_open_request() {
    let matches = page(Vec::new(), 1, 1);
    let open = request(1, "H", "C", RequestStatus::Open);
    let has_close = |html: String| html.contains("action=\"/requests/42/close\"");
    assert!(has_close(
        render::request_detail(&ctx(true, None), &open, &matches, Some(1)).unwrap()
    ));
    assert!(!has_close(
        render::request_detail(&ctx(true, None), &open, &matches, Some(2)).unwrap()
    ));
    assert!(!has_close(
        render::request_detail(&ctx(false, None), &open, &matches, None).unwrap()
    ));
    let closed = request(1, "H", "C", RequestStatus::Closed);
    assert!(!has_close(
        render::request_detail(&ctx(true, None), &closed, &matches, Some(1)).unwrap()
    ));
}

#[test]
fn field_errors_sit_next_to_fields_and_input_is_kept() {
    let form = ProfileInput {
        display_name: "Ada".into(),
        blood_group: "ab-".into(),
        city: "Lon don".into(),
        phone: "12".into(),
        last_donation: "2026-01-01".into(),
        available: true,
        relay_only: false,
    };
    let errors = [FieldError::new(
        "phone",
        "A phone number has 7 to 15 digits.",
    )];
    let html = render::profile(&ctx(true, None), &form, &errors, None).unwrap();
    assert!(html.contains("id=\"phone\" name=\"phone\""));
    assert!(html.contains("aria-invalid=\"true\" aria-errormessage=\"phone-error\""));
    assert!(html.contains(
        "<p class=\"field-error\" id=\"phone-error\">A phone number has 7 to 15 digits.</p>"
    ));
    assert!(
        html.contains("<a href=\"#phone\">A phone number has 7 to 15 digits.</a>"),
        "summary links to the field"
    );
    assert!(html.contains("value=\"Lon don\""));
    assert!(html.contains("<option value=\"AB-\" selected>"));
    assert!(html.contains("checked"));
    // Passwords are never refilled: the sign-up page has no value on the password input.
    let html = render::sign_up(
        &ctx(false, None),
        "ada@example.org",
        &[FieldError::new("password", "Too short")],
    )
    .unwrap();
    let pw = &html[html.find("id=\"password\"").unwrap()..];
    let pw = &pw[..pw.find('>').unwrap()];
    assert!(!pw.contains("value="), "{pw}");
    assert!(html.contains("value=\"ada@example.org\""));
}

#[test]
fn pagination_links_keep_the_search_and_encode_it() {
    let form = SearchInput {
        blood_group: "AB+".into(),
        mode: "compatible".into(),
        city: "São Paulo & Rio".into(),
        eligible_only: Some("on".into()),
        page: "2".into(),
    };
    let d = donor("Ada", "São Paulo & Rio");
    let html = render::search(&ctx(false, None), &form, &[], Some(&page(vec![d], 2, 3))).unwrap();
    assert!(html.contains(
        "href=\"/donors?blood_group=AB%2B&#38;mode=compatible&#38;city=S%C3%A3o%20Paulo%20%26%20Rio&#38;eligible_only=on&#38;page=1\""
    ), "{html}");
    assert!(html.contains("&#38;page=3\""));
    assert!(html.contains("Page 2 of 3"));
    // First and last pages have no link beyond the ends.
    let first = render::search(
        &ctx(false, None),
        &form,
        &[],
        Some(&page(vec![donor("A", "B")], 1, 3)),
    )
    .unwrap();
    assert!(!first.contains("rel=\"prev\""));
    let last = render::search(
        &ctx(false, None),
        &form,
        &[],
        Some(&page(vec![donor("A", "B")], 3, 3)),
    )
    .unwrap();
    assert!(!last.contains("rel=\"next\""));
}

#[test]
fn sessions_page_lists_rows_with_revoke_buttons() {
    let rows = [
        SessionRow {
            id: "s1".into(),
            created: 1_780_000_000,
            last_seen: 1_780_000_600,
            client: "Firefox on Linux".into(),
            current: true,
        },
        SessionRow {
            id: "s2".into(),
            created: 1_779_000_000,
            last_seen: 1_779_000_600,
            client: "curl/8".into(),
            current: false,
        },
    ];
    let html = render::sessions(&ctx(true, None), &rows).unwrap();
    assert!(html.contains("action=\"/account/sessions/s1/revoke\""));
    assert!(html.contains("action=\"/account/sessions/s2/revoke\""));
    assert!(html.contains("action=\"/account/sessions/revoke-all\""));
    assert_eq!(html.matches("this device").count(), 1);
    assert!(html.contains("2026-05-28 20:26 UTC"), "{html}");
    check_page(&html, "");
}

#[test]
fn error_pages_are_generic() {
    let html = render::error_page(&ctx(false, None), 503, Some("req-1")).unwrap();
    assert!(html.contains("Temporarily unavailable"));
    assert!(html.contains("req-1"));
    let e = buttress_portal::Error::Unavailable(None);
    let (status, html) = render::error_for(&ctx(false, None), &e, None).unwrap();
    assert_eq!(status, 503);
    assert!(!html.to_lowercase().contains("sql"));
    assert!(render::PORTAL_CSS.contains("@media"));
}

#[test]
#[ignore = "prints a page for eyeballing: cargo test -p buttress-portal --test render show -- --ignored --nocapture"]
fn show_request_detail() {
    let d = donor("Ada Lovelace", "London");
    let r = request(1, "St Thomas' Hospital", "London", RequestStatus::Open);
    let html = render::request_detail(
        &ctx(true, Some("Request posted.")),
        &r,
        &page(vec![d], 1, 2),
        Some(1),
    )
    .unwrap();
    eprintln!("{html}");
}
