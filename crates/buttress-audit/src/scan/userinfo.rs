//! Credentials in the target URL (`https://user:pw@host/`, as curl takes them): sent as Basic
//! authentication to that exact origin only (never to its plain-HTTP twin, another port or a
//! redirect elsewhere), and kept out of everything the scan records or shows.

use url::Url;

/// The user name and password of the target URL, and the origin they belong to.
pub(super) struct Credentials {
    origin: Url,
    username: String,
    password: Option<String>,
}

/// Removes the user name and password from `url`; returns them if there were any.
pub(super) fn take(url: &mut Url) -> Option<Credentials> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let username = url.username().to_owned();
    let password = url.password().map(str::to_owned);
    strip(url);
    Some(Credentials {
        origin: url.clone(),
        username,
        password,
    })
}

/// Removes any user name and password from `url` (a `Location` may carry some).
pub(super) fn strip(url: &mut Url) {
    // Only a URL without a host refuses these, and the scanner reads http(s) URLs only.
    let _ = url.set_username("");
    let _ = url.set_password(None);
}

impl Credentials {
    /// `url` as sent: with the credentials if it is on their origin, else as it is. (The HTTP
    /// client turns them into an `Authorization: Basic` header and drops them from the URL.)
    pub(super) fn apply(&self, url: &Url) -> Url {
        let mut wire = url.clone();
        if super::same_origin(url, &self.origin) {
            // Already percent-encoded; `%` is not re-encoded, so they go out as given.
            let _ = wire.set_username(&self.username);
            let _ = wire.set_password(self.password.as_deref());
        }
        wire
    }
}

/// `target` for an error message when it did not parse as a URL: whatever stands before an
/// `@` in its authority is replaced by `***`.
pub(super) fn redact(target: &str) -> String {
    let Some(scheme_end) = target.find("://") else {
        return target.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &target[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &target[..authority_start],
            &target[authority_start + at..]
        ),
        None => target.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn credentials_go_to_their_origin_only() {
        let mut start = url("https://us%40er:p%3Aw%25d@app.example/login?x=1");
        let creds = take(&mut start).expect("credentials");
        assert_eq!(start.as_str(), "https://app.example/login?x=1");
        let sent = creds.apply(&url("https://app.example:443/other"));
        assert_eq!(sent.as_str(), "https://us%40er:p%3Aw%25d@app.example/other");
        for elsewhere in [
            "http://app.example/login",
            "https://app.example:8443/",
            "https://other.example/",
        ] {
            assert_eq!(creds.apply(&url(elsewhere)).as_str(), elsewhere);
        }
        let mut user_only = url("http://alice@app.example/");
        assert!(take(&mut user_only).is_some());
        assert_eq!(user_only.as_str(), "http://app.example/");
        assert!(take(&mut url("https://app.example/")).is_none());
    }

    #[test]
    fn unparsed_targets_are_redacted() {
        assert_eq!(redact("https://u:pw@h ost/"), "https://***@h ost/");
        assert_eq!(redact("https://u:p@w@h/a@b"), "https://***@h/a@b");
        assert_eq!(redact("https://h/a@b"), "https://h/a@b");
        assert_eq!(redact("not a url"), "not a url");
    }
}
