-- Donor privacy: verified accounts, single-use tokens, reveals of contact data, mail throttle.
-- Portable SQL, as 0001: runs unchanged on SQLite and PostgreSQL.
--   * users.verified_at: when the address was proven by a link (NULL: not yet). Accounts made
--     before verification existed are kept as verified (their owners signed up under the old
--     rules); new ones start unverified and are erased after the retention period.
--   * donors.contact: 'phone' (a matching request's owner may reveal the number) or 'relay'
--     (the registry forwards a message by mail; the number is never shown).
--   * account_tokens: verification and password-reset links. Only a keyed hash (HMAC-SHA256 under
--     a purpose-bound sub-key of SECRET_KEY) of each token's secret is kept.
--   * reveals: who saw whose number (or relayed a message), when, for which request. The donor
--     sees every row naming them; rows go with either account.
--   * mail_sends: when mail went to an address (kept as a keyed hash), to throttle mail bombs.
ALTER TABLE users ADD COLUMN verified_at BIGINT NULL;
UPDATE users SET verified_at = created_at;

ALTER TABLE donors ADD COLUMN contact TEXT NOT NULL DEFAULT 'phone' CHECK (contact IN ('phone', 'relay'));

CREATE INDEX users_unverified ON users (verified_at, created_at);

CREATE TABLE account_tokens (
    id          BIGINT  PRIMARY KEY,
    user_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT    NOT NULL CHECK (purpose IN ('verify', 'reset')),
    secret_hash TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT  NULL
);

CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);

CREATE TABLE reveals (
    id           BIGINT  PRIMARY KEY,
    request_id   BIGINT  NOT NULL REFERENCES blood_requests (id) ON DELETE CASCADE,
    requester_id BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    donor_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('phone', 'relay')),
    created_at   BIGINT  NOT NULL
);

CREATE UNIQUE INDEX reveals_once ON reveals (request_id, donor_id, kind);
CREATE INDEX reveals_donor ON reveals (donor_id, created_at);
CREATE INDEX reveals_requester ON reveals (requester_id, created_at);

CREATE TABLE mail_sends (
    address_key TEXT    NOT NULL,
    sent_at     BIGINT  NOT NULL
);

CREATE INDEX mail_sends_address ON mail_sends (address_key, sent_at);
