//! Every query, run against SQLite and against a real PostgreSQL from `buttress-testkit`.
//!
//! Each check is one async fn taking a fresh [`Db`]; `both!` runs it on an in-memory SQLite
//! database, and `postgres_all` runs every check, each on its own new database, on one
//! PostgreSQL server (one server per test process keeps the suite quick under nextest).

#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use buttress_portal::accounts::{Accounts, PasswordParams, SignUpOutcome};
use buttress_portal::db::{Db, Table};
use buttress_portal::domain::{
    eligibility_cutoff, format_date, BloodGroup, Eligibility, RequestStatus, Urgency,
};
use buttress_portal::donors::{DonorSearch, GroupFilter, SearchInput};
use buttress_portal::error::Error;
use buttress_portal::validate::{
    city_key, ChangePasswordInput, ProfileInput, RequestInput, SignUpInput,
};
use buttress_portal::Page;
use sqlx::Row;
use time::macros::date;
use time::Date;

const TODAY: Date = date!(2026 - 06 - 01);
const PASSWORD: &str = "correct horse battery staple";

/// A fresh directory under the system's temp dir, removed on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(what: &str) -> TempDir {
        TempDir(
            tempfile::Builder::new()
                .prefix(&format!("buttress-storage-{what}-"))
                .tempdir()
                .unwrap(),
        )
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

type Check = fn(Db) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = buttress_portal::db::Db::in_memory().await.expect("sqlite");
                    assert!(!db.reads_inline());
                    super::$name(db).await;
                }
            )*
        }

        /// The same checks on a SQLite file, where the hot reads run on the calling thread.
        mod sqlite_file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = super::TempDir::new(stringify!($name));
                    let db = buttress_portal::db::Db::open_in_dir(dir.path()).await.expect("sqlite file");
                    assert!(db.reads_inline());
                    super::$name(db.clone()).await;
                    db.close().await;
                }
            )*
        }

        const ALL: &[(&str, Check)] = &[$((stringify!($name), |db| Box::pin($name(db)))),*];
    };
}

checks!(
    sign_up_and_authenticate,
    duplicate_email_is_not_revealed,
    change_password_checks_the_old_one,
    dummy_hash_timing,
    profile_upsert_and_get,
    search_filters_and_compatibility,
    fifty_six_day_boundary_in_search,
    pagination_edges,
    search_same_as_the_single_statement,
    request_lists_paginate_in_one_query,
    requests_lifecycle_and_owner_only_close,
    matching_donors_for_a_request,
    injection_payloads_through_every_input,
    seed_demo_check,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_all() {
    let pg = buttress_testkit::PostgresServer::start().expect("PostgreSQL for tests");
    for (i, (name, check)) in ALL.iter().enumerate() {
        let url = pg.create_database(&format!("check_{i}")).expect("createdb");
        let db = Db::open(&url).await.expect("open postgres");
        assert_eq!(db.backend(), buttress_portal::Backend::Postgres);
        assert!(!db.reads_inline(), "PostgreSQL reads go through the pool");
        eprintln!("postgres: {name}");
        check(db.clone()).await;
        db.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unavailable_is_503_and_recovers() {
    let mut pg = buttress_testkit::PostgresServer::start().expect("PostgreSQL for tests");
    let db = Db::open(&pg.url()).await.expect("open");
    db.ping().await.expect("ping");
    pg.stop().expect("stop");
    let started = Instant::now();
    let err = db.open_requests(1).await.expect_err("server is down");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert_eq!(err.status_code(), 503);
    assert!(!err.to_string().to_lowercase().contains("select"));
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = Db::open(&pg.url())
        .await
        .expect_err("cannot open while down");
    assert_eq!(err.status_code(), 503);
    pg.restart().expect("restart");
    // The pool reconnects on its own.
    let mut ok = false;
    for _ in 0..50 {
        if db.open_requests(1).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "recovered after restart");
}

/// On a SQLite file the page-view reads are answered on the calling thread (counted), and
/// see at once what the pool just wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_reads_are_answered_on_the_calling_thread() {
    let dir = TempDir::new("inline");
    let db = Db::open_in_dir(dir.path()).await.unwrap();
    let accounts = accounts(&db).await;
    let id = user(&accounts, "inline@example.org").await;
    let before = db.inline_read_counts().unwrap();
    assert!(accounts.user(id).await.unwrap().is_some());
    db.upsert_donor(
        id,
        &profile("Ana", "O+", "Leeds", "", true)
            .validate(TODAY)
            .unwrap(),
        TODAY,
    )
    .await
    .unwrap();
    let found = db
        .search_donors(&search(GroupFilter::Any, Some("Leeds"), false), 1, TODAY)
        .await
        .unwrap();
    assert_eq!(
        found.total, 1,
        "the write just made through the pool is read here"
    );
    assert_eq!(db.open_requests(1).await.unwrap().total, 0);
    let (served, deferred) = db.inline_read_counts().unwrap();
    // user, the donor read back by upsert_donor, the search, the open requests
    assert_eq!((served - before.0, deferred - before.1), (4, 0));
}

/// [`Db::close`] ends every read: 503 on the calling thread's path and on the pool's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_db_is_unavailable_for_every_read_on_both_paths() {
    let dir = TempDir::new("closed");
    let file = Db::open_in_dir(dir.path()).await.unwrap();
    let memory = Db::in_memory().await.unwrap();
    for db in [file, memory] {
        let accounts = accounts(&db).await;
        let id = user(&accounts, "closed@example.org").await;
        assert!(accounts.user(id).await.unwrap().is_some());
        db.close().await;
        for err in [
            accounts.user(id).await.expect_err("closed"),
            db.open_requests(1).await.expect_err("closed"),
            db.search_donors(&search(GroupFilter::Any, None, false), 1, TODAY)
                .await
                .expect_err("closed"),
        ] {
            assert!(
                matches!(err, Error::Unavailable(_)),
                "{} {err:?}",
                db.reads_inline()
            );
        }
    }
}

// ---- helpers ----

async fn accounts(db: &Db) -> Accounts {
    Accounts::new(db.clone(), PasswordParams::insecure_fast_for_tests())
        .await
        .expect("accounts")
}

async fn user(accounts: &Accounts, email: &str) -> i64 {
    match accounts
        .sign_up(&SignUpInput {
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("sign up")
    {
        SignUpOutcome::Created(u) => u.id,
        SignUpOutcome::AlreadyRegistered => panic!("{email} already registered"),
    }
}

fn profile(name: &str, group: &str, city: &str, last: &str, available: bool) -> ProfileInput {
    ProfileInput {
        display_name: name.into(),
        blood_group: group.into(),
        city: city.into(),
        phone: "+44 20 7946 0958".into(),
        last_donation: last.into(),
        available,
        relay_only: false,
    }
}

async fn donor(db: &Db, accounts: &Accounts, email: &str, p: ProfileInput) -> i64 {
    let id = user(accounts, email).await;
    db.upsert_donor(id, &p.validate(TODAY).expect("valid profile"), TODAY)
        .await
        .expect("upsert");
    id
}

fn search(groups: GroupFilter, city: Option<&str>, eligible_only: bool) -> DonorSearch {
    DonorSearch {
        groups,
        city: city.map(Into::into),
        eligible_only,
    }
}

fn request_input(group: &str, city: &str) -> RequestInput {
    RequestInput {
        blood_group: group.into(),
        city: city.into(),
        hospital: "St Thomas' Hospital".into(),
        units: "2".into(),
        urgency: "urgent".into(),
    }
}

// ---- checks ----

async fn sign_up_and_authenticate(db: Db) {
    let accounts = accounts(&db).await;
    let id = user(&accounts, "Ada@Example.org").await;
    let u = accounts
        .authenticate("ada@example.org", PASSWORD)
        .await
        .unwrap()
        .expect("signed in");
    assert_eq!(u.id, id);
    assert_eq!(u.email, "ada@example.org");
    // Case-insensitive email, surrounding spaces.
    assert!(accounts
        .authenticate(" ADA@EXAMPLE.ORG ", PASSWORD)
        .await
        .unwrap()
        .is_some());
    assert!(accounts
        .authenticate("ada@example.org", "wrong password!!")
        .await
        .unwrap()
        .is_none());
    assert!(accounts
        .authenticate("nobody@example.org", PASSWORD)
        .await
        .unwrap()
        .is_none());
    assert!(accounts
        .authenticate("not an email", PASSWORD)
        .await
        .unwrap()
        .is_none());
    assert!(accounts
        .authenticate("ada@example.org", &"x".repeat(5000))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        accounts.user(id).await.unwrap().unwrap().email,
        "ada@example.org"
    );
    assert_eq!(accounts.user(12345).await.unwrap(), None);
    // Validation lists every field.
    let err = accounts
        .sign_up(&SignUpInput {
            email: "nope".into(),
            password: "password".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), 422);
    assert_eq!(err.field_errors().len(), 2);
}

async fn duplicate_email_is_not_revealed(db: Db) {
    let accounts = accounts(&db).await;
    user(&accounts, "bob@example.org").await;
    let again = accounts
        .sign_up(&SignUpInput {
            email: "BOB@example.org".into(),
            password: "another long passphrase".into(),
        })
        .await
        .expect("a duplicate is not an error");
    assert_eq!(again, SignUpOutcome::AlreadyRegistered);
    // The first password still works; the second did not replace it.
    assert!(accounts
        .authenticate("bob@example.org", PASSWORD)
        .await
        .unwrap()
        .is_some());
    assert!(accounts
        .authenticate("bob@example.org", "another long passphrase")
        .await
        .unwrap()
        .is_none());
    assert_eq!(db.count_rows(Table::Users).await.unwrap(), 1);
}

async fn change_password_checks_the_old_one(db: Db) {
    let accounts = accounts(&db).await;
    let id = user(&accounts, "carol@example.org").await;
    let err = accounts
        .change_password(
            id,
            &ChangePasswordInput {
                current_password: "wrong one here".into(),
                new_password: "short".into(),
            },
        )
        .await
        .unwrap_err();
    let fields: Vec<_> = err.field_errors().iter().map(|f| f.field).collect();
    assert_eq!(fields, ["current_password", "new_password"]);
    let err = accounts
        .change_password(
            id,
            &ChangePasswordInput {
                current_password: PASSWORD.into(),
                new_password: PASSWORD.into(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "new_password");
    accounts
        .change_password(
            id,
            &ChangePasswordInput {
                current_password: PASSWORD.into(),
                new_password: "a brand new passphrase".into(),
            },
        )
        .await
        .expect("changed");
    assert!(accounts
        .authenticate("carol@example.org", PASSWORD)
        .await
        .unwrap()
        .is_none());
    assert!(accounts
        .authenticate("carol@example.org", "a brand new passphrase")
        .await
        .unwrap()
        .is_some());
    let err = accounts
        .change_password(
            999,
            &ChangePasswordInput {
                current_password: PASSWORD.into(),
                new_password: "a brand new passphrase".into(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound));
}

async fn dummy_hash_timing(db: Db) {
    // Heavier than the other tests' parameters so argon2 dominates the database lookup.
    let params = PasswordParams {
        m_cost: 16 * 1024,
        t_cost: 2,
        p_cost: 1,
    };
    let accounts = Accounts::new(db.clone(), params).await.unwrap();
    let _ = accounts
        .sign_up(&SignUpInput {
            email: "dave@example.org".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap();
    let once = |email: &'static str| {
        let accounts = accounts.clone();
        async move {
            let t = Instant::now();
            assert!(accounts
                .authenticate(email, "wrong password!!")
                .await
                .unwrap()
                .is_none());
            t.elapsed()
        }
    };
    let _ = once("dave@example.org").await; // warm up
                                            // Alternate the two cases so load from other tests hits both alike; compare medians.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        known.push(once("dave@example.org").await);
        unknown.push(once("nobody@example.org").await);
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[4], unknown[4]);
    let ratio = k.as_secs_f64() / u.as_secs_f64();
    eprintln!("median: wrong password {k:?}, unknown user {u:?}, ratio {ratio:.2}");
    assert!(
        (1.0 / 3.0..3.0).contains(&ratio),
        "timing differs: ratio {ratio:.2}"
    );
    // Both clearly paid for an argon2 verification (no fast path for unknown users).
    assert!(u > Duration::from_micros(500), "{u:?}");

    // Sign-up: a new and an already registered address cost the same (hash first).
    let (mut new, mut existing) = (Vec::new(), Vec::new());
    for i in 0..9 {
        let t = Instant::now();
        let outcome = accounts
            .sign_up(&SignUpInput {
                email: format!("new{i}@example.org"),
                password: PASSWORD.into(),
            })
            .await
            .unwrap();
        new.push(t.elapsed());
        assert!(matches!(outcome, SignUpOutcome::Created(_)));
        let t = Instant::now();
        let outcome = accounts
            .sign_up(&SignUpInput {
                email: "dave@example.org".into(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap();
        existing.push(t.elapsed());
        assert_eq!(outcome, SignUpOutcome::AlreadyRegistered);
    }
    new.sort();
    existing.sort();
    let ratio = new[4].as_secs_f64() / existing[4].as_secs_f64();
    eprintln!(
        "median sign-up: new {:?}, existing {:?}, ratio {ratio:.2}",
        new[4], existing[4]
    );
    assert!(
        (1.0 / 3.0..3.0).contains(&ratio),
        "sign-up timing differs: ratio {ratio:.2}"
    );
}

async fn profile_upsert_and_get(db: Db) {
    let accounts = accounts(&db).await;
    let id = user(&accounts, "erin@example.org").await;
    assert_eq!(db.donor(id, TODAY).await.unwrap(), None);
    let p = profile("  Erin   Doe ", "ab-", " New   York ", "2026-05-01", true)
        .validate(TODAY)
        .unwrap();
    let d = db.upsert_donor(id, &p, TODAY).await.unwrap();
    assert_eq!(d.display_name, "Erin Doe");
    assert_eq!(d.city, "New York");
    assert_eq!(d.blood_group, BloodGroup::AbNeg);
    assert_eq!(d.phone, "+442079460958");
    assert_eq!(d.last_donation, Some(date!(2026 - 05 - 01)));
    assert_eq!(
        d.eligibility,
        Eligibility::NotYet {
            from: date!(2026 - 06 - 26)
        }
    );
    assert!(d.available);
    // Update in place.
    let p = profile("Erin", "O+", "Boston", "", false)
        .validate(TODAY)
        .unwrap();
    let d = db.upsert_donor(id, &p, TODAY).await.unwrap();
    assert_eq!(
        (d.blood_group, d.city.as_str(), d.last_donation, d.available),
        (BloodGroup::OPos, "Boston", None, false)
    );
    assert!(d.eligibility.is_eligible());
    assert_eq!(db.count_rows(Table::Donors).await.unwrap(), 1);
    // Unknown user: not found (foreign key).
    let err = db.upsert_donor(424242, &p, TODAY).await.unwrap_err();
    assert!(matches!(err, Error::NotFound), "{err:?}");
}

async fn search_filters_and_compatibility(db: Db) {
    let accounts = accounts(&db).await;
    // One available donor of every group in London, plus extras elsewhere / unavailable.
    for (i, g) in BloodGroup::ALL.iter().enumerate() {
        donor(
            &db,
            &accounts,
            &format!("d{i}@example.org"),
            profile(&format!("D{i}"), g.as_str(), "London", "", true),
        )
        .await;
    }
    donor(
        &db,
        &accounts,
        "away@example.org",
        profile("Away", "O-", "Paris", "", true),
    )
    .await;
    donor(
        &db,
        &accounts,
        "off@example.org",
        profile("Off", "O-", "London", "", false),
    )
    .await;

    let all = db
        .search_donors(&search(GroupFilter::Any, None, false), 1, TODAY)
        .await
        .unwrap();
    assert_eq!(all.total, 9, "unavailable donors are never listed");
    let london = db
        .search_donors(
            &search(GroupFilter::Any, Some("  LONDON "), false),
            1,
            TODAY,
        )
        .await
        .unwrap();
    assert_eq!(
        london.total, 8,
        "city matched case- and space-insensitively"
    );
    for recipient in BloodGroup::ALL {
        let page = db
            .search_donors(
                &search(
                    GroupFilter::CompatibleWith(recipient),
                    Some("london"),
                    false,
                ),
                1,
                TODAY,
            )
            .await
            .unwrap();
        let mut got: Vec<_> = page.items.iter().map(|d| d.blood_group).collect();
        let mut want = recipient.compatible_donors();
        got.sort();
        want.sort();
        assert_eq!(got, want, "donors for recipient {recipient}");
        let exact = db
            .search_donors(
                &search(GroupFilter::Exact(recipient), Some("london"), false),
                1,
                TODAY,
            )
            .await
            .unwrap();
        assert_eq!(exact.items.len(), 1);
        assert_eq!(exact.items[0].blood_group, recipient);
    }
    // The form path.
    let (s, page) = SearchInput {
        blood_group: "ab-".into(),
        mode: "compatible".into(),
        city: "London".into(),
        eligible_only: Some("on".into()),
        page: "x".into(),
    }
    .validate()
    .unwrap();
    assert_eq!(page, 1);
    assert_eq!(db.search_donors(&s, page, TODAY).await.unwrap().total, 4);
    let err = SearchInput {
        blood_group: "Z".into(),
        mode: "fuzzy".into(),
        ..Default::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(err.field_errors().len(), 2);
}

async fn fifty_six_day_boundary_in_search(db: Db) {
    let accounts = accounts(&db).await;
    // TODAY - 56 days = 2026-04-06: eligible; one day later: not yet.
    donor(
        &db,
        &accounts,
        "a@example.org",
        profile("Exactly56", "A+", "Leeds", "2026-04-06", true),
    )
    .await;
    donor(
        &db,
        &accounts,
        "b@example.org",
        profile("Only55", "A+", "Leeds", "2026-04-07", true),
    )
    .await;
    donor(
        &db,
        &accounts,
        "c@example.org",
        profile("Never", "A+", "Leeds", "", true),
    )
    .await;
    let all = db
        .search_donors(
            &search(GroupFilter::Exact(BloodGroup::APos), Some("leeds"), false),
            1,
            TODAY,
        )
        .await
        .unwrap();
    assert_eq!(all.total, 3);
    for d in &all.items {
        match d.display_name.as_str() {
            "Exactly56" | "Never" => assert!(d.eligibility.is_eligible(), "{}", d.display_name),
            "Only55" => assert_eq!(
                d.eligibility,
                Eligibility::NotYet {
                    from: TODAY.next_day().unwrap()
                }
            ),
            other => panic!("{other}"),
        }
    }
    let eligible = db
        .search_donors(
            &search(GroupFilter::Exact(BloodGroup::APos), Some("leeds"), true),
            1,
            TODAY,
        )
        .await
        .unwrap();
    let mut names: Vec<_> = eligible
        .items
        .iter()
        .map(|d| d.display_name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["Exactly56", "Never"]);
}

async fn pagination_edges(db: Db) {
    let accounts = accounts(&db).await;
    let s = search(GroupFilter::Any, None, false);
    let empty = db.search_donors(&s, 1, TODAY).await.unwrap();
    assert_eq!(
        (
            empty.items.len(),
            empty.page,
            empty.total_pages,
            empty.total
        ),
        (0, 1, 1, 0)
    );
    assert!(!empty.has_prev() && !empty.has_next());
    for i in 0..41 {
        donor(
            &db,
            &accounts,
            &format!("p{i}@example.org"),
            profile(&format!("P{i}"), "O+", "Rome", "", true),
        )
        .await;
    }
    let p1 = db.search_donors(&s, 1, TODAY).await.unwrap();
    assert_eq!(
        (p1.items.len(), p1.page, p1.total_pages, p1.total),
        (20, 1, 3, 41)
    );
    assert!(p1.has_next() && !p1.has_prev());
    let p2 = db.search_donors(&s, 2, TODAY).await.unwrap();
    assert_eq!(p2.items.len(), 20);
    let p3 = db.search_donors(&s, 3, TODAY).await.unwrap();
    assert_eq!((p3.items.len(), p3.has_next()), (1, false));
    // Beyond the end: the last page; page 0: the first.
    assert_eq!(db.search_donors(&s, 99, TODAY).await.unwrap().page, 3);
    assert_eq!(
        db.search_donors(&s, u32::MAX, TODAY).await.unwrap().items,
        p3.items
    );
    assert_eq!(
        db.search_donors(&s, 0, TODAY).await.unwrap().items,
        p1.items
    );
    // No donor on two pages, none missing.
    let mut ids: Vec<_> = p1
        .items
        .iter()
        .chain(&p2.items)
        .chain(&p3.items)
        .map(|d| d.user_id)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 41);
}

/// The search as it was before it was split into statements that can use the index: one
/// static count and one static page statement for every filter, switched by bound values.
/// The reference the statements now used must agree with, row for row.
async fn search_the_old_way(
    db: &Db,
    s: &DonorSearch,
    requested: u32,
    exclude_user: i64,
) -> Page<i64> {
    const WHERE: &str = " WHERE available = TRUE \
         AND blood_group IN ($1, $2, $3, $4, $5, $6, $7, $8) \
         AND ($9 = '' OR city_key = $9) \
         AND ($10 = 0 OR last_donation IS NULL OR last_donation <= $11) \
         AND user_id <> $12";
    let groups = s.groups.groups();
    let group = |i: usize| groups.get(i).map_or("", |g| g.as_str());
    let city = s.city.as_deref().map(city_key).unwrap_or_default();
    let cutoff = format_date(eligibility_cutoff(TODAY));
    macro_rules! bind_filter {
        ($q:expr) => {
            $q.bind(group(0))
                .bind(group(1))
                .bind(group(2))
                .bind(group(3))
                .bind(group(4))
                .bind(group(5))
                .bind(group(6))
                .bind(group(7))
                .bind(city.as_str())
                .bind(i64::from(s.eligible_only))
                .bind(cutoff.as_str())
                .bind(exclude_user)
        };
    }
    let count_sql = format!("SELECT COUNT(*) FROM donors{WHERE}");
    let total: i64 = bind_filter!(sqlx::query(&count_sql))
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get(0);
    let total_pages = u32::try_from(total.max(0)).unwrap().div_ceil(20).max(1);
    let page = requested.clamp(1, total_pages);
    let page_sql = format!(
        "SELECT user_id FROM donors{WHERE} ORDER BY updated_at DESC, user_id ASC LIMIT $13 OFFSET $14"
    );
    let items = bind_filter!(sqlx::query(&page_sql))
        .bind(20_i64)
        .bind(i64::from(page - 1) * 20)
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect();
    Page {
        items,
        page,
        total_pages,
        total: u64::try_from(total).unwrap(),
    }
}

fn ids(page: Page<buttress_portal::Donor>) -> Page<i64> {
    Page {
        items: page.items.iter().map(|d| d.user_id).collect(),
        page: page.page,
        total_pages: page.total_pages,
        total: page.total,
    }
}

async fn search_same_as_the_single_statement(db: Db) {
    use buttress_portal::seed::seed_demo_with;
    assert_eq!(seed_demo_with(&db, 1000, 11, TODAY).await.unwrap(), 1000);
    // Ties on the sort key, so that the second key (user id) decides too.
    sqlx::query("UPDATE donors SET updated_at = 1000 WHERE user_id % 4 = 0")
        .execute(db.pool())
        .await
        .unwrap();
    let mut filters = vec![GroupFilter::Any];
    for g in BloodGroup::ALL {
        filters.push(GroupFilter::Exact(g));
        filters.push(GroupFilter::CompatibleWith(g));
    }
    let mut multi_page = 0;
    for groups in filters {
        for city in [
            None,
            Some("London"),
            Some("  são   PAULO "),
            Some("   "),
            Some("Atlantis"),
        ] {
            for eligible_only in [false, true] {
                let s = search(groups, city, eligible_only);
                for page in [1, 2, 3, 5, 99, 0] {
                    let want = search_the_old_way(&db, &s, page, 0).await;
                    let got = ids(db.search_donors(&s, page, TODAY).await.unwrap());
                    assert_eq!(got, want, "{s:?}, page {page}");
                    if page == 2 && want.page == 2 {
                        multi_page += 1;
                    }
                }
            }
        }
    }
    assert!(multi_page > 20, "enough searches span pages: {multi_page}");
    // Leaving a user out (the requester, for a request's matches).
    let owners: Vec<i64> = sqlx::query(
        "SELECT user_id FROM donors WHERE city_key = 'london' AND available = TRUE \
         ORDER BY user_id LIMIT 3",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(owners.len(), 3);
    for (owner, group) in owners.iter().zip(["AB+", "O+", "A-"]) {
        let r = db
            .create_request(*owner, &request_input(group, "london").validate().unwrap())
            .await
            .unwrap();
        let s = search(
            GroupFilter::CompatibleWith(r.blood_group),
            Some(&r.city),
            true,
        );
        for page in [1, 2, 99] {
            let want = search_the_old_way(&db, &s, page, *owner).await;
            let got = ids(db.matching_donors(&r, page, TODAY).await.unwrap());
            assert_eq!(got, want, "matches for {group}, page {page}");
            assert!(!got.items.contains(owner));
        }
    }
}

async fn request_lists_paginate_in_one_query(db: Db) {
    let accounts = accounts(&db).await;
    let a = user(&accounts, "many@example.org").await;
    let b = user(&accounts, "few@example.org").await;
    let nobody = user(&accounts, "none@example.org").await;
    let shape =
        |p: &Page<buttress_portal::BloodRequest>| (p.items.len(), p.page, p.total_pages, p.total);
    // Empty lists: page 1 and a page past the end are the same empty first page.
    for page in [0, 1, 2, 99] {
        assert_eq!(shape(&db.open_requests(page).await.unwrap()), (0, 1, 1, 0));
        assert_eq!(shape(&db.requests_of(a, page).await.unwrap()), (0, 1, 1, 0));
    }
    let mut mine = Vec::new();
    for i in 0..41 {
        let mut input = request_input("A+", "York");
        input.urgency = Urgency::ALL[i % 3].as_str().into();
        mine.push(
            db.create_request(a, &input.validate().unwrap())
                .await
                .unwrap(),
        );
    }
    for _ in 0..3 {
        db.create_request(b, &request_input("O-", "Hull").validate().unwrap())
            .await
            .unwrap();
    }
    db.close_request(mine[0].id, a).await.unwrap();
    db.close_request(mine[1].id, a).await.unwrap();

    // Open requests: 42 of them, 20 + 20 + 2.
    let p1 = db.open_requests(1).await.unwrap();
    let p2 = db.open_requests(2).await.unwrap();
    let p3 = db.open_requests(3).await.unwrap();
    assert_eq!(shape(&p1), (20, 1, 3, 42));
    assert_eq!(shape(&p2), (20, 2, 3, 42));
    assert_eq!(shape(&p3), (2, 3, 3, 42), "the last page");
    for past in [4, 99, u32::MAX] {
        let p = db.open_requests(past).await.unwrap();
        assert_eq!(shape(&p), (2, 3, 3, 42), "page {past}: the last page");
        assert_eq!(p.items, p3.items);
    }
    assert_eq!(db.open_requests(0).await.unwrap().items, p1.items);
    let all: Vec<_> = p1.items.iter().chain(&p2.items).chain(&p3.items).collect();
    let rank = |u: Urgency| match u {
        Urgency::Critical => 0,
        Urgency::Urgent => 1,
        Urgency::Normal => 2,
    };
    let mut sorted = all.clone();
    sorted.sort_by_key(|r| (rank(r.urgency), std::cmp::Reverse(r.created_at), r.id));
    assert_eq!(
        all, sorted,
        "most urgent, then newest, then by id, across pages"
    );
    assert!(all.iter().all(|r| r.status == RequestStatus::Open));

    // One owner's requests, open and closed: 41 of them.
    let m3 = db.requests_of(a, 3).await.unwrap();
    assert_eq!(shape(&db.requests_of(a, 1).await.unwrap()), (20, 1, 3, 41));
    assert_eq!(shape(&m3), (1, 3, 3, 41));
    assert_eq!(
        db.requests_of(a, 7).await.unwrap(),
        m3,
        "past the end: the last page"
    );
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.extend(
            db.requests_of(a, n)
                .await
                .unwrap()
                .items
                .iter()
                .map(|r| r.id),
        );
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 41, "every request once");
    // A list of one page: page 2 is page 1.
    let few = db.requests_of(b, 2).await.unwrap();
    assert_eq!(shape(&few), (3, 1, 1, 3));
    assert_eq!(
        shape(&db.requests_of(nobody, 3).await.unwrap()),
        (0, 1, 1, 0)
    );
}

async fn requests_lifecycle_and_owner_only_close(db: Db) {
    let accounts = accounts(&db).await;
    let owner = user(&accounts, "owner@example.org").await;
    let other = user(&accounts, "other@example.org").await;
    let new = request_input("B-", "  Cardiff ").validate().unwrap();
    let r = db.create_request(owner, &new).await.unwrap();
    assert_eq!(r.status, RequestStatus::Open);
    assert_eq!(r.city, "Cardiff");
    assert_eq!(db.request(r.id).await.unwrap(), r);
    let mut crit = request_input("O+", "Cardiff");
    crit.urgency = "critical".into();
    let r2 = db
        .create_request(other, &crit.validate().unwrap())
        .await
        .unwrap();
    let open = db.open_requests(1).await.unwrap();
    assert_eq!(open.total, 2);
    assert_eq!(open.items[0].id, r2.id, "critical first");
    assert_eq!(
        db.requests_of(owner, 1).await.unwrap().items,
        vec![r.clone()]
    );
    // Not the owner: refused, and nothing changed.
    assert!(matches!(
        db.close_request(r.id, other).await.unwrap_err(),
        Error::Forbidden
    ));
    assert_eq!(db.request(r.id).await.unwrap().status, RequestStatus::Open);
    assert!(matches!(
        db.close_request(777, owner).await.unwrap_err(),
        Error::NotFound
    ));
    assert!(matches!(
        db.request(777).await.unwrap_err(),
        Error::NotFound
    ));
    let closed = db.close_request(r.id, owner).await.unwrap();
    assert_eq!(closed.status, RequestStatus::Closed);
    assert!(closed.closed_at.is_some());
    assert_eq!(
        db.close_request(r.id, owner).await.unwrap(),
        closed,
        "closing twice is a no-op"
    );
    assert!(matches!(
        db.close_request(r.id, other).await.unwrap_err(),
        Error::Forbidden
    ));
    assert_eq!(db.open_requests(1).await.unwrap().total, 1);
    // Owner must exist.
    assert!(matches!(
        db.create_request(999_999, &new).await.unwrap_err(),
        Error::NotFound
    ));
}

async fn matching_donors_for_a_request(db: Db) {
    let accounts = accounts(&db).await;
    let owner = donor(
        &db,
        &accounts,
        "needs@example.org",
        profile("Owner", "A-", "Oslo", "", true),
    )
    .await;
    donor(
        &db,
        &accounts,
        "m1@example.org",
        profile("Match O-", "O-", "oslo", "", true),
    )
    .await;
    donor(
        &db,
        &accounts,
        "m2@example.org",
        profile("Match A-", "A-", "Oslo", "2026-01-01", true),
    )
    .await;
    donor(
        &db,
        &accounts,
        "n1@example.org",
        profile("Wrong group", "A+", "Oslo", "", true),
    )
    .await;
    donor(
        &db,
        &accounts,
        "n2@example.org",
        profile("Too recent", "O-", "Oslo", "2026-05-20", true),
    )
    .await;
    donor(
        &db,
        &accounts,
        "n3@example.org",
        profile("Elsewhere", "O-", "Bergen", "", true),
    )
    .await;
    donor(
        &db,
        &accounts,
        "n4@example.org",
        profile("Unavailable", "O-", "Oslo", "", false),
    )
    .await;
    let r = db
        .create_request(owner, &request_input("A-", "OSLO").validate().unwrap())
        .await
        .unwrap();
    let m = db.matching_donors(&r, 1, TODAY).await.unwrap();
    let mut names: Vec<_> = m.items.iter().map(|d| d.display_name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["Match A-", "Match O-"],
        "owner, wrong group, too recent, elsewhere, unavailable left out"
    );
    assert!(m.items.iter().all(|d| d.eligibility.is_eligible()));
}

const PAYLOADS: &[&str] = &[
    "' OR 1=1 --",
    "' OR '1'='1",
    "'); DROP TABLE users; --",
    "\"; DROP TABLE donors; --",
    "%",
    "_",
    "%%",
    "London%",
    "Lond_n",
    "\\",
    "Zürich 東京 🩸",
    "a\0b",
    "\0",
    "1; SELECT pg_sleep(5)",
    "$1",
    "?",
    "<script>alert(1)</script>",
];

async fn injection_payloads_through_every_input(db: Db) {
    let accounts = accounts(&db).await;
    let owner = donor(
        &db,
        &accounts,
        "real@example.org",
        profile("Real", "O-", "London", "", true),
    )
    .await;
    db.create_request(owner, &request_input("O-", "London").validate().unwrap())
        .await
        .unwrap();
    let counts = |db: Db| async move {
        (
            db.count_rows(Table::Users).await.unwrap(),
            db.count_rows(Table::Donors).await.unwrap(),
            db.count_rows(Table::BloodRequests).await.unwrap(),
        )
    };
    let before = counts(db.clone()).await;
    let only_validation = |r: Result<_, Error>, what: &str| match r {
        Ok(_) | Err(Error::Invalid(_)) => {}
        Err(e) => panic!("{what}: {e:?}"),
    };
    for p in PAYLOADS {
        // Sign-in: never an error, never a user.
        assert!(
            accounts.authenticate(p, p).await.unwrap().is_none(),
            "login {p:?}"
        );
        assert!(accounts
            .authenticate(&format!("{p}@x.org"), PASSWORD)
            .await
            .unwrap()
            .is_none());
        // Sign-up: validation only (a payload with a long password may be a valid account).
        only_validation(
            accounts
                .sign_up(&SignUpInput {
                    email: (*p).into(),
                    password: format!("{p} long enough pass"),
                })
                .await
                .map(|_| ()),
            "sign up",
        );
        // Search: every filter field; results only what the filter means.
        let r = SearchInput {
            blood_group: (*p).into(),
            mode: (*p).into(),
            city: (*p).into(),
            eligible_only: Some((*p).into()),
            page: (*p).into(),
        }
        .validate();
        assert!(matches!(r, Err(Error::Invalid(_))), "search {p:?}");
        match (SearchInput {
            city: (*p).into(),
            ..Default::default()
        })
        .validate()
        {
            Ok((s, page)) => {
                let found = db.search_donors(&s, page, TODAY).await.unwrap();
                assert_eq!(found.total, 0, "city {p:?} matched rows");
            }
            Err(Error::Invalid(_)) => assert!(p.contains('\0')),
            Err(e) => panic!("{e:?}"),
        }
        // Profile and request: every field.
        let prof = ProfileInput {
            display_name: (*p).into(),
            blood_group: (*p).into(),
            city: (*p).into(),
            phone: (*p).into(),
            last_donation: (*p).into(),
            available: true,
            relay_only: false,
        };
        assert!(matches!(prof.validate(TODAY), Err(Error::Invalid(_))));
        let text_only = profile(p, "A+", p, "", true);
        match text_only.validate(TODAY) {
            Ok(valid) => {
                let d = db.upsert_donor(owner, &valid, TODAY).await.unwrap();
                assert_eq!(d.display_name, p.trim(), "stored verbatim");
                let s = search(GroupFilter::Any, Some(p), false);
                let found = db.search_donors(&s, 1, TODAY).await.unwrap();
                assert_eq!(
                    found.total, 1,
                    "only the donor whose city is literally {p:?}"
                );
                assert_eq!(found.items[0].user_id, owner);
            }
            Err(Error::Invalid(_)) => assert!(p.contains('\0') || p.trim().is_empty(), "{p:?}"),
            Err(e) => panic!("{e:?}"),
        }
        let req = RequestInput {
            blood_group: (*p).into(),
            city: (*p).into(),
            hospital: (*p).into(),
            units: (*p).into(),
            urgency: (*p).into(),
        };
        assert!(matches!(req.validate(), Err(Error::Invalid(_))));
        let mut text_req = request_input("AB+", p);
        text_req.hospital = (*p).into();
        if let Ok(valid) = text_req.validate() {
            let r = db.create_request(owner, &valid).await.unwrap();
            assert_eq!(db.request(r.id).await.unwrap().hospital, p.trim());
        }
    }
    // Tables intact: the same users (plus any valid sign-ups), all tables still answer.
    let after = counts(db.clone()).await;
    assert!(
        after.0 >= before.0 && after.1 == before.1 && after.2 >= before.2,
        "{before:?} -> {after:?}"
    );
    assert!(accounts
        .authenticate("real@example.org", PASSWORD)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_database_created_in_data_dir() {
    let dir = tempfile::Builder::new()
        .prefix("buttress-portal-")
        .tempdir()
        .unwrap();
    let nested = dir.path().join("data dir");
    let portal =
        buttress_portal::Portal::open(None, &nested, PasswordParams::insecure_fast_for_tests())
            .await
            .expect("created on first run");
    let db = portal.db.clone();
    assert_eq!(db.backend(), buttress_portal::Backend::Sqlite);
    let accounts = accounts(&db).await;
    user(&accounts, "file@example.org").await;
    db.close().await;
    assert!(nested.join(buttress_portal::db::SQLITE_FILE).is_file());
    // Reopen: data kept, migrations not re-run.
    let db = Db::open_in_dir(&nested).await.expect("reopen");
    assert_eq!(db.count_rows(Table::Users).await.unwrap(), 1);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    db.close().await;
}

async fn seed_demo_check(db: Db) {
    use buttress_portal::seed::{seed_demo_with, DEMO_CITIES};
    let added = seed_demo_with(&db, 300, 7, TODAY).await.unwrap();
    assert_eq!(added, 300);
    // Deterministic: the same seed again adds nothing new.
    assert_eq!(seed_demo_with(&db, 300, 7, TODAY).await.unwrap(), 0);
    let other = Db::in_memory().await.unwrap();
    seed_demo_with(&other, 300, 7, TODAY).await.unwrap();
    let all = |db: Db| async move {
        let mut out = Vec::new();
        let s = search(GroupFilter::Any, None, false);
        let first = db.search_donors(&s, 1, TODAY).await.unwrap();
        for p in 1..=first.total_pages {
            out.extend(
                db.search_donors(&s, p, TODAY)
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .map(|d| {
                        (
                            d.user_id,
                            d.display_name,
                            d.blood_group,
                            d.city,
                            d.last_donation,
                        )
                    }),
            );
        }
        out.sort_by_key(|r| r.0);
        out
    };
    let a = all(db.clone()).await;
    assert_eq!(a, all(other).await, "same seed, same donors");
    assert!(
        a.len() > 200 && a.len() < 300,
        "about 85% available: {}",
        a.len()
    );
    let groups: std::collections::HashSet<_> = a.iter().map(|r| r.2).collect();
    assert!(groups.len() >= 6, "{groups:?}");
    assert!(a.iter().all(|r| DEMO_CITIES.contains(&r.3.as_str())));
    let not_yet = a
        .iter()
        .filter(|r| !Eligibility::on(TODAY, r.4).is_eligible())
        .count();
    assert!(not_yet > 30, "some recently donated: {not_yet}");
    // Demo accounts cannot sign in.
    let accounts = accounts(&db).await;
    assert!(accounts
        .authenticate("demo-0@example.org", "")
        .await
        .unwrap()
        .is_none());
    assert!(accounts
        .authenticate("demo-0@example.org", "!demo-account-cannot-sign-in")
        .await
        .unwrap()
        .is_none());
}
