//! Demo data: realistic, deterministic donors for trying the portal out.
//!
//! [`seed_demo`] fills `n` donors from a fixed seed; [`seed_demo_with`] takes the seed and the
//! day to count donation dates back from, so the same arguments always give the same rows.
//!
//! * Names from a small, varied list; cities from [`DEMO_CITIES`].
//! * Blood groups drawn with approximate population frequencies (per mille, U.S. donors:
//!   O+ 374, A+ 357, B+ 85, O− 66, A− 63, AB+ 34, B− 15, AB− 6; Stanford Blood Center,
//!   "Blood Types", <https://stanfordbloodcenter.org/donate-blood/blood-donation-facts/blood-types/>).
//! * About 30% gave blood within the last 56 days (not yet eligible), 45% earlier in the
//!   year, 25% never; 85% are available.
//! * Phone numbers are from the UK range Ofcom reserves for drama (07700 900000–900999), so
//!   none is anyone's real number; emails are `demo-N@example.org`.
//! * Demo accounts cannot sign in: their password hash is a marker that is not a PHC string,
//!   so sign-in treats them like unknown users (same dummy-hash timing).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::{Date, Duration};

use crate::db::{date_to_sql, now_unix, Db};
use crate::domain::BloodGroup;
use crate::error::Result;
use crate::validate::city_key;

/// The seed [`seed_demo`] uses.
pub const DEFAULT_SEED: u64 = 0x00b1_00d5;

/// The stored "password hash" of demo accounts: not a PHC string, so no password matches.
pub const DEMO_PASSWORD_HASH: &str = "!demo-account-cannot-sign-in";

/// Cities the demo donors live in.
pub const DEMO_CITIES: &[&str] = &[
    "Dhaka",
    "Chattogram",
    "London",
    "Manchester",
    "Lagos",
    "Nairobi",
    "Mumbai",
    "São Paulo",
    "Toronto",
    "Berlin",
    "Sydney",
    "Leeds",
];

const FIRST: &[&str] = &[
    "Ada", "Amina", "Arjun", "Bea", "Carlos", "Chen", "Dana", "Farhan", "Fatima", "Grace", "Hiro",
    "Ines", "Jamal", "Karin", "Leila", "Mateo", "Nadia", "Olu", "Priya", "Rafi", "Sara", "Tariq",
    "Uma", "Yusuf", "Zoe",
];

const LAST: &[&str] = &[
    "Ahmed", "Banerjee", "Costa", "Dubois", "Eze", "Fischer", "García", "Haque", "Ito", "Jensen",
    "Kamau", "Lopez", "Müller", "Nowak", "Okafor", "Patel", "Rahman", "Silva", "Tanaka", "Wong",
];

/// Blood groups with their approximate frequency per mille (module docs).
const GROUP_FREQUENCIES: [(BloodGroup, u32); 8] = [
    (BloodGroup::OPos, 374),
    (BloodGroup::APos, 357),
    (BloodGroup::BPos, 85),
    (BloodGroup::ONeg, 66),
    (BloodGroup::ANeg, 63),
    (BloodGroup::AbPos, 34),
    (BloodGroup::BNeg, 15),
    (BloodGroup::AbNeg, 6),
];

fn pick_group(rng: &mut StdRng) -> BloodGroup {
    let mut roll = rng.gen_range(0..1000);
    for (group, per_mille) in GROUP_FREQUENCIES {
        if roll < per_mille {
            return group;
        }
        roll -= per_mille;
    }
    BloodGroup::OPos
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

/// Adds `n` demo donors (seed [`DEFAULT_SEED`], donation dates counted back from today, UTC).
/// Returns how many were added; donors already present from an earlier run are skipped.
///
/// # Errors
/// Database errors.
pub async fn seed_demo(db: &Db, n: usize) -> Result<usize> {
    seed_demo_with(db, n, DEFAULT_SEED, crate::db::today_utc()).await
}

/// Adds `n` demo donors drawn from `seed`, donation dates counted back from `today`.
///
/// # Errors
/// Database errors.
pub async fn seed_demo_with(db: &Db, n: usize, seed: u64, today: Date) -> Result<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = now_unix();
    let mut tx = db.pool().begin().await?;
    let mut added = 0;
    for i in 0..n {
        let id: i64 = rng.gen_range(1..(1_i64 << 53));
        let name = format!("{} {}", pick(&mut rng, FIRST), pick(&mut rng, LAST));
        let group = pick_group(&mut rng);
        let city = pick(&mut rng, DEMO_CITIES);
        let phone = format!("+447700900{:03}", rng.gen_range(0..1000));
        let last_donation = match rng.gen_range(0..100) {
            0..30 => Some(today - Duration::days(rng.gen_range(0..56))),
            30..75 => Some(today - Duration::days(rng.gen_range(56..365))),
            _ => None,
        };
        let available = rng.gen_range(0..100) < 85;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, password_hash, created_at, verified_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(format!("demo-{i}@example.org"))
        .bind(DEMO_PASSWORD_HASH)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            continue;
        }
        sqlx::query(
            "INSERT INTO donors (user_id, display_name, blood_group, city, city_key, phone, \
             last_donation, available, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(name)
        .bind(group.as_str())
        .bind(city)
        .bind(city_key(city))
        .bind(phone)
        .bind(date_to_sql(last_donation))
        .bind(available)
        .bind(now - i64::try_from(i).unwrap_or(0))
        .execute(&mut *tx)
        .await?;
        added += 1;
    }
    tx.commit().await?;
    Ok(added)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_add_up_to_a_thousand() {
        assert_eq!(GROUP_FREQUENCIES.iter().map(|(_, f)| f).sum::<u32>(), 1000);
        let mut groups: Vec<_> = GROUP_FREQUENCIES.iter().map(|(g, _)| *g).collect();
        groups.sort();
        let mut all = BloodGroup::ALL.to_vec();
        all.sort();
        assert_eq!(groups, all);
    }
}
