//! Property tests: the validators and normalisers never panic, and what they produce is
//! stable (normalising twice changes nothing) and within the documented rules.

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use buttress_portal::domain::{next_eligible_date, BloodGroup, Eligibility};
use buttress_portal::validate::{
    city_key, collapse_spaces, normalize_email, normalize_phone, password_problem, ProfileInput,
    RequestInput,
};
use proptest::prelude::*;
use time::{Date, Duration};

fn date() -> impl Strategy<Value = Date> {
    (0_i64..40_000).prop_map(|d| {
        Date::from_calendar_date(1950, time::Month::January, 1).unwrap() + Duration::days(d)
    })
}

proptest! {
    #[test]
    fn email_normalisation_is_idempotent(s in "\\PC{0,80}") {
        if let Ok(e) = normalize_email(&s) {
            prop_assert_eq!(normalize_email(&e), Ok(e.clone()));
            prop_assert_eq!(e.matches('@').count(), 1);
            prop_assert!(!e.chars().any(char::is_whitespace));
        }
    }

    #[test]
    fn phone_normalisation_is_idempotent_and_bounded(s in "[+]?[0-9 ()\\-.]{0,30}|\\PC{0,20}") {
        if let Ok(p) = normalize_phone(&s) {
            prop_assert_eq!(normalize_phone(&p), Ok(p.clone()));
            let digits = p.trim_start_matches('+');
            prop_assert!(digits.chars().all(|c| c.is_ascii_digit()));
            prop_assert!((7..=15).contains(&digits.len()));
        }
    }

    #[test]
    fn city_key_is_idempotent(s in "\\PC{0,60}") {
        let k = city_key(&s);
        prop_assert_eq!(city_key(&k), k.clone());
        prop_assert_eq!(city_key(&s.to_uppercase()), city_key(&s.to_lowercase()));
        prop_assert_eq!(collapse_spaces(&collapse_spaces(&s)), collapse_spaces(&s));
    }

    #[test]
    fn short_passwords_are_always_refused(s in "\\PC{0,11}") {
        prop_assert!(password_problem(&s, "x@example.org").is_some());
    }

    #[test]
    fn forms_never_panic(a in "\\PC{0,40}", b in "\\PC{0,10}", c in "\\PC{0,40}", d in "\\PC{0,20}", e in "\\PC{0,12}", today in date()) {
        let _ = ProfileInput { display_name: a.clone(), blood_group: b.clone(), city: c.clone(), phone: d.clone(), last_donation: e.clone(), available: true, relay_only: false }.validate(today);
        let _ = RequestInput { blood_group: b, city: c, hospital: a, units: d, urgency: e }.validate();
    }

    #[test]
    fn eligibility_flips_exactly_at_56_days(last in date(), offset in -10_i64..200) {
        let today = last + Duration::days(offset);
        let eligible = Eligibility::on(today, Some(last)).is_eligible();
        prop_assert_eq!(eligible, offset >= 56);
        prop_assert_eq!(next_eligible_date(last), last + Duration::days(56));
    }

    #[test]
    fn compatibility_matches_the_antigen_rule(d in 0_usize..8, r in 0_usize..8) {
        let (donor, recipient) = (BloodGroup::ALL[d], BloodGroup::ALL[r]);
        prop_assert_eq!(donor.can_give_to(recipient), recipient.compatible_donors().contains(&donor));
        prop_assert!(BloodGroup::ONeg.can_give_to(recipient));
        prop_assert!(donor.can_give_to(BloodGroup::AbPos));
    }
}
