-- The mail sender: suppressed addresses and the 'suppressed' outcome.

-- Addresses a server rejected for good (a 5xx reply to RCPT): no mail is
-- sent to them any more until an operator removes them.
CREATE TABLE mail_suppressions (
    -- lower-case address
    address    text        PRIMARY KEY,
    -- the server's reply that put it here
    reply      text        NOT NULL,
    created_at timestamptz NOT NULL
);

ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'suppressed'));
-- Suppressed rows for the status page, counted from their index as the
-- other statuses are.
CREATE INDEX outbox_suppressed_idx ON outbox (id) WHERE status = 'suppressed';

COMMENT ON COLUMN outbox.leased_by IS
    'while status = ''sending'': the sender instance holding the lease; the lease is dead once lease_until passes or no session holds that instance''s lock (pg_advisory_lock_shared(0x6d61696c, hashtext(leased_by))), and settling writes are conditional on it';
