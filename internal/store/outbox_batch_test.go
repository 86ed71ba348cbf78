package store_test

import (
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"signup/internal/account"
	"signup/internal/store/storetest"
)

func TestOutboxClaimBatch(t *testing.T) {
	db, ob, now := outboxSetup(t)
	ctx := t.Context()
	until := now.Add(time.Minute)
	storetest.LockInstance(t, db, "me")
	storetest.LockInstance(t, db, "other")

	a := queued(t, db, "a@example.test", now)
	b := queued(t, db, "b@example.test", now)
	notDue := queued(t, db, "later@example.test", now.Add(time.Hour))
	theirs := queued(t, db, "theirs@example.test", now)
	lease(t, db, theirs, "other", until)
	sent := queued(t, db, "sent@example.test", now)
	if _, err := db.Pool().Exec(ctx, `UPDATE outbox SET status = 'sent' WHERE id = $1`, sent); err != nil {
		t.Fatal(err)
	}

	// Only the claimable rows are claimed, in order of id, whatever the
	// order asked; the others are left as they were.
	ms, err := ob.ClaimBatch(ctx, []int64{sent, b, theirs, notDue, a, 1 << 40}, "me", now, until, false)
	if err != nil {
		t.Fatalf("claim batch: %v", err)
	}
	var got []int64
	for _, m := range ms {
		got = append(got, m.ID)
		if m.Attempts != 1 || m.AccountID == 0 || m.Email == "" || !m.CreatedAt.Equal(now) {
			t.Errorf("claimed %+v", m)
		}
	}
	if want := []int64{a, b}; !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want %v", got, want)
	}
	if ms[0].Email != "a@example.test" || ms[1].Email != "b@example.test" {
		t.Errorf("emails %q, %q", ms[0].Email, ms[1].Email)
	}
	for id, want := range map[int64]string{a: "sending", b: "sending", theirs: "sending", notDue: "pending", sent: "sent"} {
		r := readRow(t, db, id)
		if r.Status != want {
			t.Errorf("row %d status %q, want %q", id, r.Status, want)
		}
		if id == theirs && (*r.LeasedBy != "other" || r.Attempts != 0) {
			t.Errorf("another instance's row was touched: %+v", r)
		}
	}
	if ms, err := ob.ClaimBatch(ctx, nil, "me", now, until, false); ms != nil || err != nil {
		t.Errorf("claim of no rows = %v, %v", ms, err)
	}
}

func TestOutboxMarkSentBatchNeedsTheLease(t *testing.T) {
	db, ob, now := outboxSetup(t)
	ctx := t.Context()
	until := now.Add(time.Minute)
	mine1 := queued(t, db, "m1@example.test", now)
	mine2 := queued(t, db, "m2@example.test", now)
	lost := queued(t, db, "lost@example.test", now)
	if ms, err := ob.ClaimBatch(ctx, []int64{mine1, mine2, lost}, "me", now, until, false); err != nil || len(ms) != 3 {
		t.Fatalf("claim = %v, %v", ms, err)
	}
	// Another instance took one after our lease expired.
	lease(t, db, lost, "other", until.Add(time.Minute))

	settled, err := ob.MarkSent(ctx, []int64{mine2, lost, mine1}, "me", now.Add(time.Second))
	if err != nil {
		t.Fatalf("mark sent: %v", err)
	}
	if want := []int64{mine1, mine2}; !slices.Equal(settled, want) {
		t.Errorf("settled %v, want %v", settled, want)
	}
	for _, id := range []int64{mine1, mine2} {
		if r := readRow(t, db, id); r.Status != "sent" || r.SentAt == nil || !r.SentAt.Equal(now.Add(time.Second)) || r.LeaseUntil != nil {
			t.Errorf("row %d after mark sent: %+v", id, r)
		}
	}
	if r := readRow(t, db, lost); r.Status != "sending" || *r.LeasedBy != "other" {
		t.Errorf("the other instance's row: %+v", r)
	}
}

func TestOutboxExtendLease(t *testing.T) {
	db, ob, now := outboxSetup(t)
	ctx := t.Context()
	until := now.Add(time.Minute)
	mine := queued(t, db, "mine@example.test", now)
	lost := queued(t, db, "lost@example.test", now)
	if ms, err := ob.ClaimBatch(ctx, []int64{mine, lost}, "me", now, until, false); err != nil || len(ms) != 2 {
		t.Fatalf("claim = %v, %v", ms, err)
	}
	lease(t, db, lost, "other", until)

	later := until.Add(time.Minute)
	n, err := ob.ExtendLease(ctx, []int64{mine, lost}, "me", later)
	if err != nil || n != 1 {
		t.Fatalf("extend = %d, %v; want 1", n, err)
	}
	if r := readRow(t, db, mine); r.LeaseUntil == nil || !r.LeaseUntil.Equal(later) || r.Attempts != 1 {
		t.Errorf("extended row: %+v", r)
	}
	if r := readRow(t, db, lost); !r.LeaseUntil.Equal(until) || *r.LeasedBy != "other" {
		t.Errorf("the other instance's row: %+v", r)
	}
}

func TestCreateTokensAllOrNone(t *testing.T) {
	db, _, now := outboxSetup(t)
	ctx := t.Context()
	a, _ := db.Accounts().Signup(ctx, "a@example.test", "hash", now, storetest.NoLimit("a@example.test"), storetest.NoLimit("a@example.test"))
	b, _ := db.Accounts().Signup(ctx, "b@example.test", "hash", now, storetest.NoLimit("b@example.test"), storetest.NoLimit("b@example.test"))
	ha, hb := sha256.Sum256([]byte("token a")), sha256.Sum256([]byte("token b"))
	tok := func(id int64, h []byte) account.IssuedToken {
		return account.IssuedToken{AccountID: id, Purpose: account.PurposeConfirm, Hash: h, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	err := db.Accounts().CreateTokens(ctx, []account.IssuedToken{tok(a.AccountID, ha[:]), tok(b.AccountID, hb[:])})
	if err != nil {
		t.Fatalf("create tokens: %v", err)
	}
	var n int
	if err := db.Pool().QueryRow(ctx, `
		SELECT count(*) FROM tokens
		WHERE (hash, account_id) IN (($1::bytea, $2::bigint), ($3::bytea, $4::bigint))
		  AND purpose = 'confirm' AND created_at = $5 AND expires_at = $6 AND used_at IS NULL`,
		ha[:], a.AccountID, hb[:], b.AccountID, now, now.Add(time.Hour)).Scan(&n); err != nil || n != 2 {
		t.Fatalf("stored tokens = %d, %v; want 2", n, err)
	}

	// A batch with one bad row (an account that is gone) stores nothing.
	hc := sha256.Sum256([]byte("token c"))
	err = db.Accounts().CreateTokens(ctx, []account.IssuedToken{tok(a.AccountID, hc[:]), tok(1<<40, hb[:])})
	if err == nil {
		t.Fatal("a batch with a missing account was stored")
	}
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n); err != nil || n != 2 {
		t.Errorf("tokens after a failed batch = %d, %v; want 2", n, err)
	}
}
