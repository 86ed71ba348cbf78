-- The account lifecycle: sign-up that cannot be hijacked, password reset,
-- email change, account deletion, and limits on the mail a visitor can
-- make us send to an address.

-- Tokens of three purposes. A confirmation carries the password hash of
-- the signup that asked for it (NULL for one asked for by a resend: the
-- person chooses a password when confirming); an email change carries the
-- new address. A newer reset or email-change token supersedes the older
-- live ones.
ALTER TABLE tokens DROP CONSTRAINT tokens_purpose_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_purpose_check CHECK (purpose IN ('confirm', 'reset', 'email_change'));
ALTER TABLE tokens ADD COLUMN password_hash text;
ALTER TABLE tokens ADD COLUMN email text CHECK (length(email) <= 254);
ALTER TABLE tokens ADD COLUMN superseded_at timestamptz;
-- Live tokens of an account by purpose, to supersede them.
CREATE INDEX tokens_account_purpose_idx ON tokens (account_id, purpose) WHERE used_at IS NULL AND superseded_at IS NULL;

-- The outbox row of a confirmation asked for by a signup carries that
-- signup's password hash, for the token minted when it is sent; recipient,
-- when set, is where the mail goes instead of the account's address (the
-- new address of an email change, the old one for its notice, the address
-- of a deleted account). A deleted account's mail goes with it (ON DELETE
-- CASCADE), but its goodbye is queued with no account, only a recipient,
-- so it outlives the account.
ALTER TABLE outbox ADD COLUMN password_hash text;
ALTER TABLE outbox ADD COLUMN recipient text CHECK (length(recipient) <= 254);
ALTER TABLE outbox ALTER COLUMN account_id DROP NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_addressed CHECK (account_id IS NOT NULL OR recipient IS NOT NULL);
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN (
    'confirm', 'signup_attempt', 'inactive_warning',
    'reset', 'email_change', 'email_change_notice', 'password_changed', 'account_deleted'));

-- Sessions remember the browser they were opened in, for the account page.
ALTER TABLE sessions ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
ALTER TABLE sessions ADD CONSTRAINT sessions_id_key UNIQUE (id);
ALTER TABLE sessions ADD COLUMN user_agent text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512);

-- Mail a visitor can make us send, per normalized address (lower case):
-- when each kind was last sent and how many went out in the current day.
-- One row per address, updated in place by every request that could send,
-- so instances share the limits and every such request does the same work.
-- Only day_start is indexed, and it moves at most once a day, so the
-- updates are HOT (room left on each page for them): a row asked about
-- again and again does not pile up index entries and grow slower to find.
CREATE TABLE mail_quota (
    address    text        PRIMARY KEY CHECK (length(address) <= 254),
    -- start of the current day's window; every request after it has passed
    -- starts a new one, so a row whose window started two days ago has
    -- limited nothing for a day
    day_start  timestamptz NOT NULL,
    day_count  integer     NOT NULL,
    -- kind -> time it was last sent
    last_sent  jsonb       NOT NULL DEFAULT '{}',
    -- whether the latest request was allowed to send
    allowed    boolean     NOT NULL,
    updated_at timestamptz NOT NULL
) WITH (fillfactor = 50);

-- Stale rows for the purge.
CREATE INDEX mail_quota_day_idx ON mail_quota (day_start);
