-- The donor search's index, widened so that a search by city and one blood group reads its
-- page already in order (newest profile first, then user id) and stops after the page, and
-- counts its matches from the index alone (the eligibility filter reads last_donation).
-- The same statement runs on SQLite and PostgreSQL.
DROP INDEX IF EXISTS donors_search;

CREATE INDEX donors_search ON donors (city_key, blood_group, available, updated_at DESC, user_id, last_donation);
