//! What a test browser does with pages: keep the session cookie, scrape the CSRF token, encode
//! form values. Shared by the portal's web tests and the cluster tests.

/// Updates `jar` from a response's `Set-Cookie` values for the cookie named `name`: a new value
/// is kept; an empty value or `Max-Age=0` clears it.
///
/// ```
/// let mut jar = None;
/// buttress_testkit::form::update_cookie(&mut jar, "session", ["session=abc; Path=/; HttpOnly"]);
/// assert_eq!(jar.as_deref(), Some("abc"));
/// buttress_testkit::form::update_cookie(&mut jar, "session", ["session=; Max-Age=0"]);
/// assert_eq!(jar, None);
/// ```
pub fn update_cookie<'a>(
    jar: &mut Option<String>,
    name: &str,
    set_cookies: impl IntoIterator<Item = &'a str>,
) {
    let prefix = format!("{name}=");
    for set in set_cookies {
        if let Some(rest) = set.strip_prefix(&prefix) {
            let value = rest.split(';').next().unwrap_or("");
            let cleared = value.is_empty() || set.contains("Max-Age=0");
            *jar = (!cleared).then(|| value.to_owned());
        }
    }
}

/// The value of the first hidden `csrf_token` field of a page.
///
/// ```
/// let page = r#"<input type="hidden" name="csrf_token" value="t0k">"#;
/// assert_eq!(buttress_testkit::form::scrape_token(page).as_deref(), Some("t0k"));
/// ```
pub fn scrape_token(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let at = html.find(marker)?;
    html[at + marker.len()..]
        .split('"')
        .next()
        .map(str::to_owned)
        .filter(|t| !t.is_empty())
}

/// What a browser keeps from one response: the session cookie `name` (see [`update_cookie`])
/// and the page's CSRF token, when it has one (see [`scrape_token`]).
///
/// ```
/// let (mut jar, mut token) = (None, None);
/// let page = r#"<input type="hidden" name="csrf_token" value="t0k">"#;
/// buttress_testkit::form::remember(&mut jar, &mut token, "session", ["session=abc"], page);
/// assert_eq!((jar.as_deref(), token.as_deref()), (Some("abc"), Some("t0k")));
/// ```
pub fn remember<'a>(
    jar: &mut Option<String>,
    token: &mut Option<String>,
    name: &str,
    set_cookies: impl IntoIterator<Item = &'a str>,
    page: &str,
) {
    update_cookie(jar, name, set_cookies);
    if let Some(t) = scrape_token(page) {
        *token = Some(t);
    }
}

/// Percent-encodes a form value (everything but unreserved characters).
///
/// ```
/// assert_eq!(buttress_testkit::form::encode("a b&c"), "a%20b%26c");
/// ```
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An `application/x-www-form-urlencoded` body.
///
/// ```
/// assert_eq!(buttress_testkit::form::form_body(&[("a", "1"), ("b", "x y")]), "a=1&b=x%20y");
/// ```
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
