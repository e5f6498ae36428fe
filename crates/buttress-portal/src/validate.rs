//! Input rules. Every form is checked as a whole: all field errors come back at once, in form
//! order, as [`Error::Invalid`] with messages a person can act on.
//!
//! | field | rule | stored as |
//! | --- | --- | --- |
//! | email | one `@`, non-empty local part (≤ 64), a dotted domain, ≤ 254 characters, no spaces or control characters | trimmed, lowercased |
//! | password | 12 to 1,024 characters, not a common password (embedded list), not the email or its local part | argon2id hash only |
//! | display name | 1 to 80 characters, no control or invisible formatting characters | trimmed, inner spaces collapsed |
//! | blood group | `A+ A- B+ B- AB+ AB- O+ O-`, any case | canonical (`AB+`) |
//! | city | 1 to 80 characters, no control or invisible formatting characters | trimmed and spaces collapsed; a case-folded search key beside it |
//! | phone | optional `+`, then 7 to 15 digits; spaces, dashes, dots and parentheses allowed | `+` and digits only |
//! | last donation | empty, or `YYYY-MM-DD`, not in the future, not before 1900 | the date |
//! | hospital | 1 to 120 characters, no control or invisible formatting characters | trimmed, spaces collapsed |
//! | units | a whole number from 1 to 20 | the number |
//! | urgency | `normal`, `urgent` or `critical` | lowercase |
//!
//! City search matches the search key exactly (case-insensitive through the key), so `%` and
//! `_` in a search are ordinary characters, never wildcards.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::Deserialize;
use time::Date;

use crate::domain::{parse_date, BloodGroup, Urgency};
use crate::error::{Error, FieldError};

/// Shortest accepted password, in characters (NIST SP 800-63B asks for at least 8; OWASP
/// ASVS 4.0 V2.1.1 for at least 12).
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest accepted password, in characters (bounds the hashing work per request).
pub const PASSWORD_MAX_CHARS: usize = 1024;

/// Common passwords refused by the policy; see the file's header for where it comes from.
const COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// Whether `password` is on the embedded common-password list (case-insensitive).
#[must_use]
pub fn is_common_password(password: &str) -> bool {
    common_passwords().contains(&password.to_lowercase())
}

/// Trims, lowercases and checks an email address. `Err` holds the message for the field.
pub fn normalize_email(input: &str) -> Result<String, String> {
    let email = input.trim().to_lowercase();
    if email.is_empty() {
        return Err("Enter your email address.".into());
    }
    if email.chars().count() > 254 {
        return Err("Email addresses are at most 254 characters.".into());
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("An email address has no spaces or control characters.".into());
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("Enter an email address like name@example.org.".into());
    };
    let labels_ok = domain.contains('.')
        && domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if local.is_empty()
        || local.chars().count() > 64
        || domain.contains('@')
        || !labels_ok
        || domain.chars().any(|c| "()<>[],;:\\\"'".contains(c))
    {
        return Err("Enter an email address like name@example.org.".into());
    }
    Ok(email)
}

/// The first password-policy problem with `password` for an account with `email` (already
/// normalised, may be empty), or `None` when it is acceptable.
#[must_use]
pub fn password_problem(password: &str, email: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Some(format!(
            "Use at least {PASSWORD_MIN_CHARS} characters; a few unrelated words make a strong password."
        ));
    }
    if chars > PASSWORD_MAX_CHARS {
        return Some(format!("Use at most {PASSWORD_MAX_CHARS} characters."));
    }
    if is_common_password(password) {
        return Some("This password is one of the most common ones; choose another.".into());
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if !email.is_empty() && (lower == email || (!local.is_empty() && lower == local)) {
        return Some("Your password must not be your email address.".into());
    }
    None
}

/// Checks a phone number and returns it as `+` (if given) and digits only.
pub fn normalize_phone(input: &str) -> Result<String, String> {
    let input = input.trim();
    if input.is_empty() {
        return Err("Enter a phone number donors can be reached on.".into());
    }
    let (plus, rest) = match input.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", input),
    };
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(
                    "Use digits, with an optional + in front; spaces and dashes are fine.".into(),
                )
            }
        }
    }
    if !(7..=15).contains(&digits.len()) {
        return Err("A phone number has 7 to 15 digits.".into());
    }
    Ok(format!("{plus}{digits}"))
}

/// Trims a line of text and collapses runs of whitespace to one space.
#[must_use]
pub fn collapse_spaces(input: &str) -> String {
    input.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The search key of a city: spaces collapsed and case folded, so "  New   york " finds
/// "New York" (and "STRASSE" finds "Straße"). Folding is upper-casing then lower-casing, which
/// also maps the characters whose lower case is not unique (`ß`, `ῲ`, final sigma) alike.
#[must_use]
pub fn city_key(input: &str) -> String {
    collapse_spaces(input).to_uppercase().to_lowercase()
}

/// Invisible formatting characters: zero-width ones, which make "London" and "London\u{200B}"
/// two cities that look the same, and the bidirectional controls, which reorder what is shown
/// (a name that displays as another). Letters of right-to-left scripts are fine.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Checks a one-line text field: collapsed, 1..=max characters, no control characters and no
/// invisible formatting characters.
fn text(input: &str, max: usize, empty: &str) -> Result<String, String> {
    if input.chars().any(char::is_control) {
        return Err("Remove the control characters (such as NUL or tabs).".into());
    }
    if input.chars().any(is_invisible_format) {
        return Err(
            "Remove the invisible characters (zero-width spaces or text-direction marks).".into(),
        );
    }
    let s = collapse_spaces(input);
    if s.is_empty() {
        return Err(empty.into());
    }
    if s.chars().count() > max {
        return Err(format!("Use at most {max} characters."));
    }
    Ok(s)
}

/// Keeps a field's value, or records its error.
fn take<T>(errors: &mut Vec<FieldError>, field: &'static str, r: Result<T, String>) -> Option<T> {
    r.map_err(|m| errors.push(FieldError::new(field, m))).ok()
}

/// Accepts a JSON boolean or an HTML checkbox (`on`, `true`, `1`, `yes`; absent = false).
fn checkbox<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bool(bool),
        Text(String),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::Bool(b) => b,
        Raw::Text(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "on" | "true" | "1" | "yes"
        ),
    })
}

/// The sign-up form as submitted.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SignUpInput {
    /// Email address.
    #[serde(default)]
    pub email: String,
    /// Chosen password.
    #[serde(default)]
    pub password: String,
}

/// A checked sign-up.
#[derive(Debug, Clone)]
pub struct SignUp {
    /// Normalised email.
    pub email: String,
    /// The password, checked against the policy.
    pub password: String,
}

impl SignUpInput {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Invalid`] listing each broken rule.
    pub fn validate(&self) -> Result<SignUp, Error> {
        let mut errors = Vec::new();
        let email = normalize_email(&self.email)
            .map_err(|m| errors.push(FieldError::new("email", m)))
            .ok();
        if let Some(m) = password_problem(&self.password, email.as_deref().unwrap_or_default()) {
            errors.push(FieldError::new("password", m));
        }
        match email {
            Some(email) if errors.is_empty() => Ok(SignUp {
                email,
                password: self.password.clone(),
            }),
            _ => Err(Error::Invalid(errors)),
        }
    }
}

/// The donor profile form as submitted.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProfileInput {
    /// Name shown to searchers.
    #[serde(default)]
    pub display_name: String,
    /// Blood group text.
    #[serde(default)]
    pub blood_group: String,
    /// City text.
    #[serde(default)]
    pub city: String,
    /// Phone text.
    #[serde(default)]
    pub phone: String,
    /// Last donation, `YYYY-MM-DD` or empty.
    #[serde(default)]
    pub last_donation: String,
    /// Whether the donor is willing to be contacted now (a checkbox).
    #[serde(default, deserialize_with = "checkbox")]
    pub available: bool,
    /// "Contact me through the registry only" (a checkbox): the phone number is never shown;
    /// a matching request's owner can only have the registry relay a message by mail.
    #[serde(default, deserialize_with = "checkbox")]
    pub relay_only: bool,
}

/// A checked donor profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Name shown to searchers, spaces collapsed.
    pub display_name: String,
    /// Blood group.
    pub blood_group: BloodGroup,
    /// City as shown, spaces collapsed.
    pub city: String,
    /// Phone, `+` and digits.
    pub phone: String,
    /// Last whole-blood donation, if any.
    pub last_donation: Option<Date>,
    /// Willing to be contacted.
    pub available: bool,
    /// Contact through the registry only (the number is never revealed).
    pub relay_only: bool,
}

impl ProfileInput {
    /// Checks every field; `today` bounds the last-donation date.
    ///
    /// # Errors
    /// [`Error::Invalid`] listing each broken rule.
    pub fn validate(&self, today: Date) -> Result<Profile, Error> {
        let mut errors = Vec::new();
        let display_name = take(
            &mut errors,
            "display_name",
            text(&self.display_name, 80, "Enter the name searchers will see."),
        );
        let blood_group = take(
            &mut errors,
            "blood_group",
            self.blood_group
                .parse::<BloodGroup>()
                .map_err(|e| e.to_string()),
        );
        let city = take(
            &mut errors,
            "city",
            text(&self.city, 80, "Enter your city."),
        );
        let phone = take(&mut errors, "phone", normalize_phone(&self.phone));
        let last_donation = take(
            &mut errors,
            "last_donation",
            last_donation(&self.last_donation, today),
        );
        match (display_name, blood_group, city, phone, last_donation) {
            (
                Some(display_name),
                Some(blood_group),
                Some(city),
                Some(phone),
                Some(last_donation),
            ) if errors.is_empty() => Ok(Profile {
                display_name,
                blood_group,
                city,
                phone,
                last_donation,
                available: self.available,
                relay_only: self.relay_only,
            }),
            _ => Err(Error::Invalid(errors)),
        }
    }
}

fn last_donation(input: &str, today: Date) -> Result<Option<Date>, String> {
    if input.trim().is_empty() {
        return Ok(None);
    }
    let Some(d) = parse_date(input) else {
        return Err("Enter the date as YYYY-MM-DD, or leave it empty if you never gave.".into());
    };
    if d > today {
        return Err("The last donation cannot be in the future.".into());
    }
    if d.year() < 1900 {
        return Err("Enter a date after 1900.".into());
    }
    Ok(Some(d))
}

/// The blood request form as submitted.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestInput {
    /// Recipient's blood group.
    #[serde(default)]
    pub blood_group: String,
    /// City of the hospital.
    #[serde(default)]
    pub city: String,
    /// Hospital name.
    #[serde(default)]
    pub hospital: String,
    /// Units needed, 1..=20 (text, as forms send it).
    #[serde(default)]
    pub units: String,
    /// `normal`, `urgent` or `critical`.
    #[serde(default)]
    pub urgency: String,
}

/// A checked blood request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// Recipient's blood group.
    pub blood_group: BloodGroup,
    /// City, spaces collapsed.
    pub city: String,
    /// Hospital, spaces collapsed.
    pub hospital: String,
    /// Units needed, 1..=20.
    pub units: u8,
    /// Urgency.
    pub urgency: Urgency,
}

impl RequestInput {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Invalid`] listing each broken rule.
    pub fn validate(&self) -> Result<NewRequest, Error> {
        let mut errors = Vec::new();
        let blood_group = take(
            &mut errors,
            "blood_group",
            self.blood_group
                .parse::<BloodGroup>()
                .map_err(|e| e.to_string()),
        );
        let city = take(
            &mut errors,
            "city",
            text(&self.city, 80, "Enter the hospital's city."),
        );
        let hospital = take(
            &mut errors,
            "hospital",
            text(&self.hospital, 120, "Enter the hospital's name."),
        );
        let units = take(
            &mut errors,
            "units",
            match self.units.trim().parse::<u8>() {
                Ok(n) if (1..=20).contains(&n) => Ok(n),
                _ => Err("Enter a whole number of units from 1 to 20.".into()),
            },
        );
        let urgency = take(
            &mut errors,
            "urgency",
            Urgency::parse(&self.urgency)
                .ok_or_else(|| "Choose normal, urgent or critical.".to_string()),
        );
        match (blood_group, city, hospital, units, urgency) {
            (Some(blood_group), Some(city), Some(hospital), Some(units), Some(urgency))
                if errors.is_empty() =>
            {
                Ok(NewRequest {
                    blood_group,
                    city,
                    hospital,
                    units,
                    urgency,
                })
            }
            _ => Err(Error::Invalid(errors)),
        }
    }
}

/// The change-password form as submitted.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChangePasswordInput {
    /// The password now in use.
    #[serde(default)]
    pub current_password: String,
    /// The new password.
    #[serde(default)]
    pub new_password: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::date;

    fn fields(e: Error) -> Vec<&'static str> {
        e.field_errors().iter().map(|f| f.field).collect()
    }

    #[test]
    fn emails() {
        for (input, want) in [
            ("Ada@Example.org", Some("ada@example.org")),
            (
                "  bob.smith+tag@mail.example.co.uk ",
                Some("bob.smith+tag@mail.example.co.uk"),
            ),
            ("", None),
            ("plain", None),
            ("a@b", None),
            ("a@@b.org", None),
            ("a b@c.org", None),
            ("@c.org", None),
            ("a@.org", None),
            ("a@c..org", None),
            ("' OR 1=1 --@x.org", None),
            ("a\0@b.org", None),
            ("a@b.org'); DROP TABLE users; --", None),
        ] {
            assert_eq!(normalize_email(input).ok().as_deref(), want, "{input:?}");
        }
        assert!(normalize_email(&format!("{}@x.org", "a".repeat(65))).is_err());
        assert!(normalize_email(&format!("a@{}.org", "b".repeat(250))).is_err());
    }

    #[test]
    fn passwords() {
        let email = "ada@example.org";
        assert!(password_problem("correct horse battery staple", email).is_none());
        assert!(password_problem("short", email).unwrap().contains("12"));
        assert!(password_problem(&"x".repeat(1025), email)
            .unwrap()
            .contains("1024"));
        assert!(
            password_problem(&"é".repeat(12), email).is_none(),
            "counts characters"
        );
        // On the list (first 1,000) and long enough to pass the length rule.
        assert!(is_common_password("qwertyuiop12"));
        assert!(is_common_password("1q2w3e4r5t6y"));
        assert!(password_problem("1Q2W3E4R5T6Y", email)
            .unwrap()
            .contains("common"));
        assert!(is_common_password("password"));
        assert!(password_problem("ADA@EXAMPLE.ORG", email)
            .unwrap()
            .contains("email"));
        assert!(password_problem("adalovelace1815", "adalovelace1815@x.org").is_some());
        assert!(common_passwords().len() > 1000);
    }

    #[test]
    fn phones() {
        for (input, want) in [
            ("+44 20 7946 0958", Some("+442079460958")),
            ("020-7946-0958", Some("02079460958")),
            ("(555) 123.4567", Some("5551234567")),
            ("123456", None),
            ("+1234567890123456", None),
            ("12345abc", None),
            ("++1234567", None),
            ("' OR 1=1 --", None),
            ("", None),
        ] {
            assert_eq!(normalize_phone(input).ok().as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn invisible_and_direction_characters_are_refused() {
        for bad in [
            "London\u{200B}",
            "Ada\u{202E}evoL",
            "\u{FEFF}Leeds",
            "St\u{00AD}Mary",
        ] {
            let err = text(bad, 80, "empty").expect_err(bad);
            assert!(err.contains("invisible"), "{bad:?}: {err}");
        }
        for good in ["Zürich", "القاهرة", "תל אביב", "São Paulo", "Straße"] {
            assert_eq!(text(good, 80, "empty").as_deref(), Ok(good));
        }
    }

    #[test]
    fn cities() {
        assert_eq!(collapse_spaces("  New   York \t"), "New York");
        assert_eq!(city_key("  new   YORK "), "new york");
        assert_eq!(city_key("MÜNCHEN"), "münchen");
        assert_eq!(city_key("Straße"), city_key("STRASSE"));
    }

    #[test]
    fn sign_up_reports_every_field() {
        let e = SignUpInput {
            email: "nope".into(),
            password: "short".into(),
        }
        .validate()
        .unwrap_err();
        assert_eq!(fields(e), ["email", "password"]);
        let ok = SignUpInput {
            email: " Ada@Example.ORG ".into(),
            password: "correct horse battery".into(),
        }
        .validate()
        .unwrap();
        assert_eq!(ok.email, "ada@example.org");
    }

    #[test]
    fn profile_reports_every_field() {
        let today = date!(2026 - 06 - 01);
        let e = ProfileInput {
            display_name: " \0 ".into(),
            blood_group: "C+".into(),
            city: "".into(),
            phone: "12".into(),
            last_donation: "2026-06-02".into(),
            available: true,
            relay_only: false,
        }
        .validate(today)
        .unwrap_err();
        assert_eq!(
            fields(e),
            [
                "display_name",
                "blood_group",
                "city",
                "phone",
                "last_donation"
            ]
        );
        let p = ProfileInput {
            display_name: "  Ada   Lovelace ".into(),
            blood_group: "ab-".into(),
            city: " London ".into(),
            phone: "+44 20 7946 0958".into(),
            last_donation: "".into(),
            available: true,
            relay_only: false,
        }
        .validate(today)
        .unwrap();
        assert_eq!(p.display_name, "Ada Lovelace");
        assert_eq!(p.blood_group, BloodGroup::AbNeg);
        assert_eq!(p.last_donation, None);
        let html = "<img src=x onerror=alert(1)>";
        let p = ProfileInput {
            display_name: html.into(),
            ..valid_profile()
        }
        .validate(today)
        .unwrap();
        assert_eq!(
            p.display_name, html,
            "stored as typed; escaped when rendered"
        );
        assert!(ProfileInput {
            last_donation: "1899-12-31".into(),
            ..valid_profile()
        }
        .validate(today)
        .is_err());
        assert!(ProfileInput {
            last_donation: "2026-06-01".into(),
            ..valid_profile()
        }
        .validate(today)
        .is_ok());
        assert!(ProfileInput {
            display_name: "x".repeat(81),
            ..valid_profile()
        }
        .validate(today)
        .is_err());
    }

    fn valid_profile() -> ProfileInput {
        ProfileInput {
            display_name: "Ada".into(),
            blood_group: "O-".into(),
            city: "London".into(),
            phone: "+442079460958".into(),
            last_donation: "".into(),
            available: true,
            relay_only: false,
        }
    }

    #[test]
    fn request_reports_every_field() {
        let e = RequestInput {
            blood_group: "".into(),
            city: "".into(),
            hospital: "".into(),
            units: "21".into(),
            urgency: "whenever".into(),
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            fields(e),
            ["blood_group", "city", "hospital", "units", "urgency"]
        );
        for (units, ok) in [
            ("0", false),
            ("1", true),
            ("20", true),
            ("21", false),
            ("-1", false),
            ("1.5", false),
            ("x", false),
        ] {
            let r = RequestInput {
                blood_group: "A+".into(),
                city: "Leeds".into(),
                hospital: "St James's".into(),
                units: units.into(),
                urgency: "urgent".into(),
            }
            .validate();
            assert_eq!(r.is_ok(), ok, "{units}");
        }
    }

    #[test]
    fn checkbox_accepts_forms_and_json() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "checkbox")]
            available: bool,
        }
        let t: T = serde_json::from_str(r#"{"available": true}"#).unwrap();
        assert!(t.available);
        let t: T = serde_json::from_str(r#"{"available": "on"}"#).unwrap();
        assert!(t.available);
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert!(!t.available);
    }
}
