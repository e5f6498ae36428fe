-- The portal's tables. Portable SQL: this one file runs unchanged on SQLite and PostgreSQL.
--   * ids are BIGINT chosen by the application (random, below 2^53), so no AUTOINCREMENT /
--     IDENTITY dialect is needed and ids in URLs cannot be enumerated;
--   * times are BIGINT Unix seconds (UTC); calendar dates are TEXT 'YYYY-MM-DD', which sort
--     and compare correctly as text;
--   * emails are stored lowercased by the application, so UNIQUE is case-insensitive;
--   * the `sessions` table belongs to the session layer and is not created here.

CREATE TABLE users (
    id            BIGINT  PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE donors (
    user_id       BIGINT  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    display_name  TEXT    NOT NULL,
    blood_group   TEXT    NOT NULL CHECK (blood_group IN ('A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-')),
    city          TEXT    NOT NULL,
    city_key      TEXT    NOT NULL,
    phone         TEXT    NOT NULL,
    last_donation TEXT    NULL,
    available     BOOLEAN NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE INDEX donors_search ON donors (city_key, blood_group, available);

CREATE TABLE blood_requests (
    id            BIGINT  PRIMARY KEY,
    owner_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blood_group   TEXT    NOT NULL CHECK (blood_group IN ('A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-')),
    city          TEXT    NOT NULL,
    city_key      TEXT    NOT NULL,
    hospital      TEXT    NOT NULL,
    units         BIGINT  NOT NULL CHECK (units BETWEEN 1 AND 20),
    urgency       TEXT    NOT NULL CHECK (urgency IN ('normal', 'urgent', 'critical')),
    status        TEXT    NOT NULL CHECK (status IN ('open', 'closed')),
    created_at    BIGINT  NOT NULL,
    closed_at     BIGINT  NULL
);

CREATE INDEX blood_requests_status ON blood_requests (status, created_at);
CREATE INDEX blood_requests_owner ON blood_requests (owner_id);
