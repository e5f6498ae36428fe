//! The registry's domain: blood groups and who can give to whom, donation eligibility,
//! request urgency and status.
//!
//! # Red-cell compatibility
//!
//! A donor's red cells can go to a recipient when the donor's cells carry no ABO antigen the
//! recipient lacks, and are RhD-negative unless the recipient is RhD-positive. So O− gives to
//! everyone and AB+ receives from everyone. The table ([`BloodGroup::compatible_donors`]):
//!
//! | recipient | compatible donors |
//! | --- | --- |
//! | O− | O− |
//! | O+ | O−, O+ |
//! | A− | O−, A− |
//! | A+ | O−, O+, A−, A+ |
//! | B− | O−, B− |
//! | B+ | O−, O+, B−, B+ |
//! | AB− | O−, A−, B−, AB− |
//! | AB+ | all eight |
//!
//! Sources: American Red Cross, "Blood Types" (red cell compatibility chart,
//! <https://www.redcrossblood.org/donate-blood/blood-types.html>); Wikipedia, "Blood type",
//! section "Red blood cell compatibility" (<https://en.wikipedia.org/wiki/Blood_type>).
//! This is for red cells (whole blood / packed cells); plasma compatibility runs the other way
//! and is not modelled.
//!
//! # Eligibility
//!
//! A whole-blood donor must wait [`DONATION_INTERVAL_DAYS`] (56) days between donations
//! (American Red Cross, "Eligibility Requirements"; the NHS uses 12 weeks for men and 16 for
//! women, so 56 days is the shortest common interval, not advice). Someone who gave on day D
//! is eligible again from day D + 56.

use std::fmt;
use std::str::FromStr;

use time::Date;

/// Days between two whole-blood donations.
pub const DONATION_INTERVAL_DAYS: i64 = 56;

/// One of the eight ABO/RhD blood groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum BloodGroup {
    /// O RhD-negative: the universal red-cell donor.
    ONeg,
    /// O RhD-positive.
    OPos,
    /// A RhD-negative.
    ANeg,
    /// A RhD-positive.
    APos,
    /// B RhD-negative.
    BNeg,
    /// B RhD-positive.
    BPos,
    /// AB RhD-negative.
    AbNeg,
    /// AB RhD-positive: the universal red-cell recipient.
    AbPos,
}

/// The text a blood group could not be read from; the message lists the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Choose a blood group: A+, A-, B+, B-, AB+, AB-, O+ or O-.")]
pub struct BloodGroupParseError;

impl BloodGroup {
    /// All eight groups, in display order.
    pub const ALL: [BloodGroup; 8] = [
        BloodGroup::APos,
        BloodGroup::ANeg,
        BloodGroup::BPos,
        BloodGroup::BNeg,
        BloodGroup::AbPos,
        BloodGroup::AbNeg,
        BloodGroup::OPos,
        BloodGroup::ONeg,
    ];

    /// The canonical spelling stored in the database and shown: `A+`, `AB-`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BloodGroup::ONeg => "O-",
            BloodGroup::OPos => "O+",
            BloodGroup::ANeg => "A-",
            BloodGroup::APos => "A+",
            BloodGroup::BNeg => "B-",
            BloodGroup::BPos => "B+",
            BloodGroup::AbNeg => "AB-",
            BloodGroup::AbPos => "AB+",
        }
    }

    /// Whether the red cells carry the RhD antigen.
    #[must_use]
    pub fn rh_positive(self) -> bool {
        matches!(
            self,
            BloodGroup::OPos | BloodGroup::APos | BloodGroup::BPos | BloodGroup::AbPos
        )
    }

    /// (has A antigen, has B antigen)
    fn antigens(self) -> (bool, bool) {
        match self {
            BloodGroup::ONeg | BloodGroup::OPos => (false, false),
            BloodGroup::ANeg | BloodGroup::APos => (true, false),
            BloodGroup::BNeg | BloodGroup::BPos => (false, true),
            BloodGroup::AbNeg | BloodGroup::AbPos => (true, true),
        }
    }

    /// Whether a donor of group `self` can give red cells to a recipient of group `recipient`.
    #[must_use]
    pub fn can_give_to(self, recipient: BloodGroup) -> bool {
        let (da, db) = self.antigens();
        let (ra, rb) = recipient.antigens();
        (!da || ra) && (!db || rb) && (!self.rh_positive() || recipient.rh_positive())
    }

    /// The donor groups whose red cells a recipient of group `self` can receive (module table).
    #[must_use]
    pub fn compatible_donors(self) -> Vec<BloodGroup> {
        BloodGroup::ALL
            .into_iter()
            .filter(|d| d.can_give_to(self))
            .collect()
    }
}

impl fmt::Display for BloodGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BloodGroup {
    type Err = BloodGroupParseError;

    /// Reads `A+ A- B+ B- AB+ AB- O+ O-`, in any letter case, with spaces ignored and the
    /// Unicode minus sign (U+2212) taken as `-`. Nothing else (no "A pos", no "0+").
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let compact: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| {
                if c == '\u{2212}' {
                    '-'
                } else {
                    c.to_ascii_uppercase()
                }
            })
            .collect();
        BloodGroup::ALL
            .into_iter()
            .find(|g| g.as_str() == compact)
            .ok_or(BloodGroupParseError)
    }
}

/// How urgent a blood request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Urgency {
    /// Planned need.
    Normal,
    /// Needed within a day or so.
    Urgent,
    /// Needed now.
    Critical,
}

impl Urgency {
    /// All values, least urgent first.
    pub const ALL: [Urgency; 3] = [Urgency::Normal, Urgency::Urgent, Urgency::Critical];

    /// The stored and submitted spelling: `normal`, `urgent`, `critical`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Normal => "normal",
            Urgency::Urgent => "urgent",
            Urgency::Critical => "critical",
        }
    }

    /// Parses the stored spelling (case-insensitive, trimmed).
    #[must_use]
    pub fn parse(s: &str) -> Option<Urgency> {
        let s = s.trim();
        Urgency::ALL
            .into_iter()
            .find(|u| u.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a blood request still needs donors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RequestStatus {
    /// Still looking for donors.
    Open,
    /// Closed by its owner.
    Closed,
}

impl RequestStatus {
    /// The stored spelling: `open`, `closed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Closed => "closed",
        }
    }

    /// Parses the stored spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<RequestStatus> {
        match s {
            "open" => Some(RequestStatus::Open),
            "closed" => Some(RequestStatus::Closed),
            _ => None,
        }
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a donor may give blood on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Eligibility {
    /// May donate (never donated, or the last donation was at least 56 days ago).
    Eligible,
    /// Gave blood less than 56 days ago; eligible again from this date.
    NotYet {
        /// The first day the donor may give again.
        from: Date,
    },
}

impl Eligibility {
    /// Eligibility on `today` for someone whose last donation was `last_donation`.
    #[must_use]
    pub fn on(today: Date, last_donation: Option<Date>) -> Eligibility {
        match last_donation.map(next_eligible_date) {
            Some(from) if today < from => Eligibility::NotYet { from },
            _ => Eligibility::Eligible,
        }
    }

    /// Whether the donor may give now.
    #[must_use]
    pub fn is_eligible(self) -> bool {
        matches!(self, Eligibility::Eligible)
    }
}

/// The first day someone who gave on `last_donation` may give again (D + 56 days).
#[must_use]
pub fn next_eligible_date(last_donation: Date) -> Date {
    last_donation.saturating_add(time::Duration::days(DONATION_INTERVAL_DAYS))
}

/// The latest last-donation date that is eligible on `today` (today − 56 days).
#[must_use]
pub fn eligibility_cutoff(today: Date) -> Date {
    today.saturating_sub(time::Duration::days(DONATION_INTERVAL_DAYS))
}

/// Dates are stored and exchanged as ISO 8601 calendar dates: `YYYY-MM-DD`.
pub(crate) const DATE_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Formats a date as `YYYY-MM-DD`.
#[must_use]
pub fn format_date(d: Date) -> String {
    d.format(DATE_FORMAT).unwrap_or_default()
}

/// Parses a `YYYY-MM-DD` date.
#[must_use]
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), DATE_FORMAT).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::date;
    use BloodGroup::*;

    #[test]
    fn compatibility_table_for_all_eight_recipients() {
        struct Case {
            recipient: BloodGroup,
            donors: &'static [BloodGroup],
        }
        let cases = [
            Case {
                recipient: ONeg,
                donors: &[ONeg],
            },
            Case {
                recipient: OPos,
                donors: &[OPos, ONeg],
            },
            Case {
                recipient: ANeg,
                donors: &[ANeg, ONeg],
            },
            Case {
                recipient: APos,
                donors: &[APos, ANeg, OPos, ONeg],
            },
            Case {
                recipient: BNeg,
                donors: &[BNeg, ONeg],
            },
            Case {
                recipient: BPos,
                donors: &[BPos, BNeg, OPos, ONeg],
            },
            Case {
                recipient: AbNeg,
                donors: &[ANeg, BNeg, AbNeg, ONeg],
            },
            Case {
                recipient: AbPos,
                donors: &BloodGroup::ALL,
            },
        ];
        for case in cases {
            let mut got = case.recipient.compatible_donors();
            let mut want = case.donors.to_vec();
            got.sort();
            want.sort();
            assert_eq!(got, want, "recipient {}", case.recipient);
        }
        // O- gives to all, AB+ receives from all.
        assert!(BloodGroup::ALL.iter().all(|r| ONeg.can_give_to(*r)));
        assert_eq!(AbPos.compatible_donors().len(), 8);
    }

    #[test]
    fn parses_strict_but_friendly() {
        for (input, want) in [
            ("A+", APos),
            ("a+", APos),
            (" ab- ", AbNeg),
            ("AB +", AbPos),
            ("o\u{2212}", ONeg),
            ("B-", BNeg),
        ] {
            assert_eq!(input.parse::<BloodGroup>(), Ok(want), "{input:?}");
        }
        for bad in [
            "",
            "A",
            "0+",
            "A pos",
            "C+",
            "AB",
            "A++",
            "' OR 1=1 --",
            "A+\0",
        ] {
            assert!(bad.parse::<BloodGroup>().is_err(), "{bad:?}");
        }
        for g in BloodGroup::ALL {
            assert_eq!(g.as_str().parse::<BloodGroup>(), Ok(g));
        }
    }

    #[test]
    fn fifty_six_day_boundary() {
        let gave = date!(2026 - 01 - 01);
        assert_eq!(next_eligible_date(gave), date!(2026 - 02 - 26));
        // 55 days later: not yet, with the date.
        assert_eq!(
            Eligibility::on(date!(2026 - 02 - 25), Some(gave)),
            Eligibility::NotYet {
                from: date!(2026 - 02 - 26)
            }
        );
        // exactly 56 days later: eligible.
        assert!(Eligibility::on(date!(2026 - 02 - 26), Some(gave)).is_eligible());
        assert!(Eligibility::on(date!(2026 - 01 - 01), None).is_eligible());
        assert_eq!(eligibility_cutoff(date!(2026 - 02 - 26)), gave);
        // a date in the future (bad clock) is "not yet".
        assert!(!Eligibility::on(gave, Some(date!(2026 - 01 - 02))).is_eligible());
    }

    #[test]
    fn urgency_and_status_round_trip() {
        for u in Urgency::ALL {
            assert_eq!(Urgency::parse(u.as_str()), Some(u));
        }
        assert_eq!(Urgency::parse(" Critical "), Some(Urgency::Critical));
        assert_eq!(Urgency::parse("panic"), None);
        assert_eq!(RequestStatus::parse("open"), Some(RequestStatus::Open));
        assert_eq!(RequestStatus::parse("x"), None);
        assert_eq!(format_date(date!(2026 - 03 - 09)), "2026-03-09");
        assert_eq!(parse_date("2026-03-09"), Some(date!(2026 - 03 - 09)));
        assert_eq!(parse_date("09/03/2026"), None);
    }
}
