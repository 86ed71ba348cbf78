-- Accounts, confirmation tokens, sessions, the email outbox and purge runs.
-- Times are passed in by the application (its clock), never taken from now(),
-- so tests can move time.

CREATE TABLE accounts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text        NOT NULL CHECK (length(email) <= 254),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL,
    confirmed_at  timestamptz,
    -- last sign-in (or confirmation); NULL until confirmed
    last_seen_at  timestamptz,
    -- when the dormancy warning was queued; cleared by a sign-in
    warned_at     timestamptz
);

-- One account per address, whatever its case.
CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));
-- Purge candidates: unconfirmed accounts by age.
CREATE INDEX accounts_unconfirmed_idx ON accounts (created_at) WHERE confirmed_at IS NULL;
-- Purge candidates: confirmed accounts by last activity, not yet warned.
CREATE INDEX accounts_dormant_idx ON accounts (last_seen_at) WHERE confirmed_at IS NOT NULL AND warned_at IS NULL;
-- Purge candidates: warned accounts by warning time.
CREATE INDEX accounts_warned_idx ON accounts (warned_at) WHERE warned_at IS NOT NULL;

CREATE TABLE tokens (
    -- SHA-256 of the token; the token itself is never stored
    hash       bytea       PRIMARY KEY CHECK (length(hash) = 32),
    account_id bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    purpose    text        NOT NULL CHECK (purpose IN ('confirm')),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

CREATE INDEX tokens_account_idx ON tokens (account_id);
CREATE INDEX tokens_expires_idx ON tokens (expires_at);

CREATE TABLE sessions (
    -- SHA-256 of the cookie's token
    hash                bytea       PRIMARY KEY CHECK (length(hash) = 32),
    account_id          bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at          timestamptz NOT NULL,
    last_used_at        timestamptz NOT NULL,
    -- the earlier of the idle and the absolute expiry, moved on use
    expires_at          timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_account_idx ON sessions (account_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- The durable side of the email queue: intent only, never a secret.
CREATE TABLE outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind            text        NOT NULL CHECK (kind IN ('confirm', 'signup_attempt', 'inactive_warning')),
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    -- while status = 'sending': the claim expires at this time, then the row is due again
    lease_until     timestamptz,
    -- who holds the lease (instance id), for the status page
    leased_by       text,
    sent_at         timestamptz,
    last_error      text
);

CREATE INDEX outbox_account_idx ON outbox (account_id);
-- Due rows for the sweep.
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE status = 'pending';
-- Expired leases for the sweep.
CREATE INDEX outbox_sending_idx ON outbox (lease_until) WHERE status = 'sending';
-- Old sent rows for the purge.
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE status = 'sent';
-- Failures for the status page.
CREATE INDEX outbox_failed_idx ON outbox (id) WHERE status = 'failed';

CREATE TABLE purge_runs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance    text        NOT NULL,
    -- the schedule tick this run serves (NULL for a manual run)
    scheduled   timestamptz,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    dry_run     boolean     NOT NULL DEFAULT false,
    forced      boolean     NOT NULL DEFAULT false,
    -- rows deleted (or, dry, that would be) per category
    counts      jsonb       NOT NULL DEFAULT '{}',
    error       text
);

CREATE INDEX purge_runs_started_idx ON purge_runs (started_at DESC);
CREATE INDEX purge_runs_scheduled_idx ON purge_runs (scheduled DESC) WHERE scheduled IS NOT NULL;
