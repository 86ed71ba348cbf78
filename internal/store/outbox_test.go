package store_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/account"
	"signup/internal/store"
	"signup/internal/store/storetest"
	"signup/internal/waitfor"
)

// outboxSetup returns a fresh store, its outbox and a fixed clock reading.
func outboxSetup(t *testing.T) (*store.DB, *store.Outbox, time.Time) {
	t.Helper()
	t.Parallel()
	db := storetest.New(t)
	return db, db.Outbox(), time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
}

// queued signs up email at now and returns the confirmation's outbox id.
func queued(t *testing.T, db *store.DB, email string, now time.Time) int64 {
	t.Helper()
	res, err := db.Accounts().Signup(t.Context(), email, "hash", now, storetest.NoLimit(email), storetest.NoLimit(email))
	if err != nil {
		t.Fatalf("signup %s: %v", email, err)
	}
	return res.OutboxID
}

type outboxRow struct {
	Status     string
	Attempts   int
	Next       time.Time
	LeaseUntil *time.Time
	LeasedBy   *string
	SentAt     *time.Time
	LastError  *string
}

func readRow(t *testing.T, db *store.DB, id int64) outboxRow {
	t.Helper()
	var r outboxRow
	err := db.Pool().QueryRow(t.Context(), `
		SELECT status, attempts, next_attempt_at, lease_until, leased_by, sent_at, last_error
		FROM outbox WHERE id = $1`, id).
		Scan(&r.Status, &r.Attempts, &r.Next, &r.LeaseUntil, &r.LeasedBy, &r.SentAt, &r.LastError)
	if err != nil {
		t.Fatalf("read outbox row %d: %v", id, err)
	}
	return r
}

// lease sets row id to status 'sending', leased by instance until until.
func lease(t *testing.T, db *store.DB, id int64, instance string, until time.Time) {
	t.Helper()
	if _, err := db.Pool().Exec(t.Context(), `UPDATE outbox SET status = 'sending', leased_by = $2, lease_until = $3 WHERE id = $1`,
		id, instance, until); err != nil {
		t.Fatal(err)
	}
}

// lockHolders returns the server pids holding instance's lock in db.
func lockHolders(t *testing.T, db *store.DB, instance string) []uint32 {
	t.Helper()
	rows, err := db.Pool().Query(t.Context(), `
		SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND classid = 1835100524 AND objsubid = 2 AND granted
		  AND objid = hashtext($1)::oid
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY pid`, instance)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

func TestOutboxLease(t *testing.T) {
	db, ob, now := outboxSetup(t)
	ctx := t.Context()
	storetest.LockInstance(t, db, "me")
	storetest.LockInstance(t, db, "other")
	due := queued(t, db, "due@example.test", now.Add(-time.Minute))
	later := queued(t, db, "later@example.test", now.Add(time.Minute))
	dead := queued(t, db, "dead@example.test", now.Add(-time.Hour))
	live := queued(t, db, "live@example.test", now.Add(-time.Hour))
	// dead's holder stalled: its lease ran out. live's holder is alive
	// (it holds its instance lock) and still at it.
	lease(t, db, dead, "other", now.Add(-time.Second))
	lease(t, db, live, "other", now.Add(time.Second))

	ids, err := leaseIDs(ob, ctx, "me", now, now.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{dead, due}; !slices.Equal(ids, want) {
		t.Fatalf("leased %v, want %v (expired lease first, then due; not %d or %d)", ids, want, later, live)
	}
	for _, id := range ids {
		r := readRow(t, db, id)
		if r.Status != "sending" || r.LeasedBy == nil || *r.LeasedBy != "me" || r.LeaseUntil == nil || !r.LeaseUntil.Equal(now.Add(time.Minute)) {
			t.Errorf("row %d after lease: %+v", id, r)
		}
		if r.Attempts != 1 {
			t.Errorf("row %d: the lease is the claim and counts one attempt, got %d", id, r.Attempts)
		}
	}
	ids, err = leaseIDs(ob, ctx, "me", now, now.Add(time.Minute), 10)
	if err != nil || len(ids) != 0 {
		t.Fatalf("second lease = %v, %v; want nothing", ids, err)
	}
	ids, err = leaseIDs(ob, ctx, "me", now.Add(2*time.Minute), now.Add(3*time.Minute), 1)
	if err != nil || len(ids) != 1 {
		t.Fatalf("lease with limit 1 = %v, %v; want one row", ids, err)
	}
	if ids, err := leaseIDs(ob, ctx, "me", now, now, 0); err != nil || ids != nil {
		t.Fatalf("lease with limit 0 = %v, %v", ids, err)
	}
}

func TestOutboxLeaseConcurrentNeverOverlaps(t *testing.T) {
	db, ob, now := outboxSetup(t)
	const rows = 300
	for i := range rows {
		queued(t, db, fmt.Sprintf("u%d@example.test", i), now)
	}
	var (
		mu   sync.Mutex
		seen = map[int64]string{}
		wg   sync.WaitGroup
		errs = make(chan error, 4)
	)
	for w := range 4 {
		instance := fmt.Sprintf("i%d", w)
		storetest.LockInstance(t, db, instance)
		wg.Go(func() {
			for {
				ids, err := leaseIDs(ob, context.Background(), instance, now, now.Add(time.Minute), 7)
				if err != nil {
					errs <- err
					return
				}
				if len(ids) == 0 {
					return
				}
				mu.Lock()
				for _, id := range ids {
					if other, dup := seen[id]; dup {
						errs <- fmt.Errorf("row %d leased by %s and %s", id, other, instance)
					}
					seen[id] = instance
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != rows {
		t.Errorf("leased %d rows, want %d", len(seen), rows)
	}
}

func TestOutboxClaim(t *testing.T) {
	db, ob, now := outboxSetup(t)
	ctx := t.Context()
	until := now.Add(time.Minute)
	storetest.LockInstance(t, db, "me")
	storetest.LockInstance(t, db, "other")

	id := queued(t, db, "Claim@Example.test", now)
	m, ok, err := claim(ob, ctx, id, "me", now, until)
	if err != nil || !ok {
		t.Fatalf("claim a due pending row = %v, %v", ok, err)
	}
	if m.ID != id || m.Kind != account.MailConfirm || m.Email != "Claim@Example.test" || m.Attempts != 1 || !m.CreatedAt.Equal(now) || !m.WarnedAt.IsZero() {
		t.Errorf("claimed %+v", m)
	}
	if _, ok, _ := claim(ob, ctx, id, "other", now, until); ok {
		t.Error("another instance claimed a row under a live lease")
	}
	// A row we hold already came through the sweep, whose job sends it: a
	// plain copy of its id does not claim it again; after a loss of the
	// instance lock, a claim of our own rows does.
	if m, ok, err := claim(ob, ctx, id, "me", now, until); err != nil || ok {
		t.Errorf("claim of own lease = %+v, %v, %v", m, ok, err)
	}
	if ms, err := ob.ClaimBatch(ctx, []int64{id}, "me", now, until, true); err != nil || len(ms) != 1 || ms[0].Attempts != 2 {
		t.Errorf("claim of own lease, own = %+v, %v", ms, err)
	}
	if m, ok, err := claim(ob, ctx, id, "other", until.Add(time.Second), until.Add(time.Minute)); err != nil || !ok || m.Attempts != 3 {
		t.Errorf("claim of an expired lease = %+v, %v, %v", m, ok, err)
	}
	if ok, err := markSent(ob, ctx, id, "other", now); err != nil || !ok {
		t.Fatalf("mark sent = %v, %v", ok, err)
	}
	if _, ok, _ := claim(ob, ctx, id, "other", now.Add(time.Hour), now.Add(2*time.Hour)); ok {
		t.Error("claimed a sent row")
	}

	notDue := queued(t, db, "later@example.test", now.Add(time.Hour))
	if _, ok, _ := claim(ob, ctx, notDue, "me", now, until); ok {
		t.Error("claimed a row that is not due")
	}
	if _, ok, err := claim(ob, ctx, 1<<40, "me", now, until); ok || err != nil {
		t.Errorf("claim of a missing row = %v, %v", ok, err)
	}
}

func TestOutboxSettleNeedsTheLease(t *testing.T) {
	db, ob, now := outboxSetup(t)
	ctx := t.Context()
	until := now.Add(time.Minute)
	id := queued(t, db, "settle@example.test", now)
	if _, ok, err := claim(ob, ctx, id, "me", now, until); !ok || err != nil {
		t.Fatalf("claim = %v, %v", ok, err)
	}

	// A stale worker of another instance cannot touch it.
	if ok, err := markSent(ob, ctx, id, "stale", now); ok || err != nil {
		t.Errorf("stale MarkSent = %v, %v", ok, err)
	}
	if ok, err := ob.Retry(ctx, id, "stale", now, "x"); ok || err != nil {
		t.Errorf("stale Retry = %v, %v", ok, err)
	}
	if ok, err := ob.MarkFailed(ctx, id, "stale", "x"); ok || err != nil {
		t.Errorf("stale MarkFailed = %v, %v", ok, err)
	}
	if r := readRow(t, db, id); r.Status != "sending" || *r.LeasedBy != "me" {
		t.Fatalf("row after stale writes: %+v", r)
	}

	next := now.Add(10 * time.Second)
	if ok, err := ob.Retry(ctx, id, "me", next, "451 try later"); !ok || err != nil {
		t.Fatalf("Retry = %v, %v", ok, err)
	}
	r := readRow(t, db, id)
	if r.Status != "pending" || !r.Next.Equal(next) || r.LeaseUntil != nil || r.LeasedBy != nil || r.LastError == nil || *r.LastError != "451 try later" {
		t.Errorf("row after retry: %+v", r)
	}
	if ok, _ := markSent(ob, ctx, id, "me", now); ok {
		t.Error("marked a pending row sent")
	}

	if _, ok, err := claim(ob, ctx, id, "me", next, next.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("claim again = %v, %v", ok, err)
	}
	if ok, err := ob.MarkFailed(ctx, id, "me", "550 no such user"); !ok || err != nil {
		t.Fatalf("MarkFailed = %v, %v", ok, err)
	}
	r = readRow(t, db, id)
	if r.Status != "failed" || r.Attempts != 2 || r.LastError == nil || *r.LastError != "550 no such user" {
		t.Errorf("row after failure: %+v", r)
	}

	sent := queued(t, db, "sent@example.test", now)
	if _, ok, err := claim(ob, ctx, sent, "me", now, until); !ok || err != nil {
		t.Fatalf("claim = %v, %v", ok, err)
	}
	if ok, err := markSent(ob, ctx, sent, "me", next); !ok || err != nil {
		t.Fatalf("MarkSent = %v, %v", ok, err)
	}
	if r := readRow(t, db, sent); r.Status != "sent" || r.SentAt == nil || !r.SentAt.Equal(next) || r.LeaseUntil != nil {
		t.Errorf("row after sent: %+v", r)
	}
}

func TestOutboxRelease(t *testing.T) {
	db, ob, now := outboxSetup(t)
	ctx := t.Context()
	storetest.LockInstance(t, db, "me")
	storetest.LockInstance(t, db, "other")
	a := queued(t, db, "a@example.test", now)
	b := queued(t, db, "b@example.test", now)
	c := queued(t, db, "c@example.test", now)
	if ids, err := leaseIDs(ob, ctx, "me", now, now.Add(time.Minute), 2); err != nil || len(ids) != 2 {
		t.Fatalf("lease = %v, %v", ids, err)
	}
	if ids, err := leaseIDs(ob, ctx, "other", now, now.Add(time.Minute), 5); err != nil || !slices.Equal(ids, []int64{c}) {
		t.Fatalf("lease = %v, %v", ids, err)
	}

	later := now.Add(time.Second)
	if n, err := ob.Release(ctx, "me", []int64{a, c}, later); err != nil || n != 1 {
		t.Fatalf("release [a c] = %d, %v; want only a (c is not mine)", n, err)
	}
	if r := readRow(t, db, a); r.Status != "pending" || !r.Next.Equal(later) || r.LeasedBy != nil {
		t.Errorf("a after release: %+v", r)
	}
	if n, err := ob.Release(ctx, "me", nil, later); err != nil || n != 1 {
		t.Fatalf("release all = %d, %v; want b", n, err)
	}
	if r := readRow(t, db, b); r.Status != "pending" {
		t.Errorf("b after release: %+v", r)
	}
	if r := readRow(t, db, c); r.Status != "sending" || *r.LeasedBy != "other" {
		t.Errorf("c after someone else's release: %+v", r)
	}

	counts, err := ob.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (store.OutboxCounts{Pending: 2, Sending: 1}); counts != want {
		t.Errorf("counts = %+v, want %+v", counts, want)
	}
}

func TestOutboxConfirmToken(t *testing.T) {
	db, _, now := outboxSetup(t)
	ctx := t.Context()
	res, err := db.Accounts().Signup(ctx, "token@example.test", "hash", now, storetest.NoLimit("token@example.test"), storetest.NoLimit("token@example.test"))
	if err != nil {
		t.Fatal(err)
	}
	plain, hash, err := account.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Accounts().CreateTokens(ctx, []account.IssuedToken{{AccountID: res.AccountID, Purpose: account.PurposeConfirm, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	var stored []byte
	if err := db.Pool().QueryRow(ctx, `SELECT hash FROM tokens WHERE account_id = $1`, res.AccountID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored, hash) || string(stored) == plain {
		t.Errorf("stored %x, want the hash %x", stored, hash)
	}
	lookup, ok := account.HashToken(plain)
	if !ok {
		t.Fatal("HashToken refused a fresh token")
	}
	if a, err := db.Accounts().Confirm(ctx, lookup, "hash", now.Add(time.Minute)); err != nil || a.ID != res.AccountID {
		t.Errorf("Confirm = %+v, %v", a, err)
	}
}

// A lease whose holder's instance lock is not held is dead at once,
// however far its lease_until; a live holder's lease is respected until it
// expires. Locks are per database: one held elsewhere does not count.
func TestOutboxLeaseOfDeadHolder(t *testing.T) {
	db, ob, now := outboxSetup(t)
	ctx := t.Context()
	far := now.Add(time.Hour)
	mine := far.Add(time.Hour) // our own leases outlast the others'
	storetest.LockInstance(t, db, "me")
	storetest.LockInstance(t, db, "live")
	storetest.LockInstance(t, storetest.New(t), "elsewhere")
	live := storetest.LockInstance(t, db, "dies")

	ghost := queued(t, db, "ghost@example.test", now)
	lease(t, db, ghost, "ghost-1", far)
	elsewhere := queued(t, db, "elsewhere@example.test", now)
	lease(t, db, elsewhere, "elsewhere", far.Add(time.Second))
	alive := queued(t, db, "alive@example.test", now)
	lease(t, db, alive, "live", far)
	dies := queued(t, db, "dies@example.test", now)
	lease(t, db, dies, "dies", far)

	ids, err := leaseIDs(ob, ctx, "me", now, mine, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{ghost, elsewhere}; !slices.Equal(ids, want) {
		t.Fatalf("leased %v, want %v (not %d or %d, whose holders are alive)", ids, want, alive, dies)
	}
	if _, ok, err := claim(ob, ctx, dies, "me", now, mine); ok || err != nil {
		t.Fatalf("claim of a live holder's row = %v, %v", ok, err)
	}

	// The holder dies: its session ends, and its rows are free at once.
	if _, err := db.Pool().Exec(ctx, `SELECT pg_terminate_backend($1)`, live.PID()); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := live.Wait(waitCtx, time.Minute); err == nil || waitCtx.Err() != nil {
		t.Fatalf("wait on a terminated lock = %v (ctx %v), want the loss", err, waitCtx.Err())
	}
	// The server drops the lock as the backend exits, a moment after the
	// client hears of it.
	for len(lockHolders(t, db, "dies")) > 0 {
		if waitCtx.Err() != nil {
			t.Fatal("the terminated session still holds its lock")
		}
		runtime.Gosched()
	}
	m, ok, err := claim(ob, ctx, dies, "me", now, mine)
	if err != nil || !ok || m.Attempts != 1 {
		t.Fatalf("claim of a dead holder's row = %+v, %v, %v", m, ok, err)
	}
	// The live holder's row goes when its lease expires: the holder is
	// alive but stuck.
	if ids, err := leaseIDs(ob, ctx, "me", now, mine, 10); err != nil || len(ids) != 0 {
		t.Fatalf("lease = %v, %v; want nothing", ids, err)
	}
	if ids, err := leaseIDs(ob, ctx, "me", far.Add(time.Second), far.Add(time.Minute), 10); err != nil || !slices.Equal(ids, []int64{alive}) {
		t.Fatalf("lease after expiry = %v, %v; want %d", ids, err, alive)
	}
}

func TestInstanceLock(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	ctx := t.Context()

	first := storetest.LockInstance(t, db, "web-1")
	second := storetest.LockInstance(t, db, "web-1") // shared: never waits
	if first.Others() != 0 || second.Others() != 1 {
		t.Errorf("others = %d, %d; want 0, 1", first.Others(), second.Others())
	}
	if got, want := lockHolders(t, db, "web-1"), []uint32{min(first.PID(), second.PID()), max(first.PID(), second.PID())}; !slices.Equal(got, want) {
		t.Errorf("holders = %v, want %v", got, want)
	}
	var app string
	if err := db.Pool().QueryRow(ctx, `SELECT application_name FROM pg_stat_activity WHERE pid = $1`, first.PID()).Scan(&app); err != nil || app != "signup-mail web-1" {
		t.Errorf("application_name = %q, %v", app, err)
	}

	// Quiet: Wait pings now and then and keeps waiting until ctx ends; the
	// connection is still fine afterwards.
	// A ping gets as long as the check interval; a quarter second is
	// plenty for a loaded machine, and two of them fit before ctx ends.
	short, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
	defer cancel()
	if err := first.Wait(short, 250*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait until ctx ends = %v", err)
	}
	if err := first.Release(ctx); err != nil {
		t.Errorf("release: %v", err)
	}
	// When Wait's deadline cut a ping short, pgx closed the connection and
	// the server drops the lock as its backend exits, a moment later.
	waitfor.Until(t, time.Minute, func() error {
		if got := lockHolders(t, db, "web-1"); !slices.Equal(got, []uint32{second.PID()}) {
			return fmt.Errorf("holders after release = %v, want %d", got, second.PID())
		}
		return nil
	})
	if err := first.Release(ctx); err != nil {
		t.Errorf("second release: %v", err)
	}

	// Lost: the server ends the session; Wait says so at once.
	if _, err := db.Pool().Exec(ctx, `SELECT pg_terminate_backend($1)`, second.PID()); err != nil {
		t.Fatal(err)
	}
	if err := second.Wait(ctx, time.Minute); err == nil || ctx.Err() != nil {
		t.Errorf("wait on a terminated session = %v", err)
	}
	if err := second.Release(ctx); err != nil {
		t.Errorf("release of a lost lock: %v", err)
	}

	down, err := store.New("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=5", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if _, err := down.Outbox().LockInstance(ctx, "web-1"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("lock with the database down = %v, want ErrUnavailable", err)
	}
}

// claim takes one row as ClaimBatch does.
func claim(ob *store.Outbox, ctx context.Context, id int64, instance string, now, until time.Time) (store.OutboxMail, bool, error) {
	ms, err := ob.ClaimBatch(ctx, []int64{id}, instance, now, until, false)
	if err != nil || len(ms) == 0 {
		return store.OutboxMail{}, false, err
	}
	return ms[0], true, nil
}

// markSent marks one row sent; ok is false when the lease was not ours.
func markSent(ob *store.Outbox, ctx context.Context, id int64, instance string, now time.Time) (bool, error) {
	settled, err := ob.MarkSent(ctx, []int64{id}, instance, now)
	return len(settled) == 1, err
}

// leaseIDs leases as a periodic sweep does and returns the ids.
func leaseIDs(ob *store.Outbox, ctx context.Context, instance string, now, until time.Time, limit int) ([]int64, error) {
	ms, err := ob.Lease(ctx, instance, now, until, limit, true)
	if ms == nil {
		return nil, err
	}
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids, err
}

// Rows with no account are taken only for the kinds sent without one (a
// deleted account's goodbye, to its own recipient); the others, queued so
// that a request for an address without an account did the same work, are
// deleted unsent by Lease and ClaimBatch alike. Taken rows carry their
// recipient and a signup's password hash.
func TestOutboxRowsWithoutAccount(t *testing.T) {
	db, ob, now := outboxSetup(t)
	ctx := t.Context()
	storetest.LockInstance(t, db, "me")
	r := db.Accounts()
	confirm := queued(t, db, "owner@example.test", now.Add(-time.Minute))
	leaving := queued(t, db, "leaving@example.test", now.Add(-time.Minute))
	if _, err := db.Pool().Exec(ctx, `UPDATE outbox SET status = 'sent' WHERE id = $1`, leaving); err != nil {
		t.Fatal(err)
	}
	acct, err := r.AccountByEmail(ctx, "leaving@example.test")
	if err != nil {
		t.Fatal(err)
	}
	goodbye, err := r.DeleteAccount(ctx, acct.ID, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	nobody := func() int64 {
		t.Helper()
		id, _, err := r.QueueForAddress(ctx, account.MailReset, "nobody@example.test", false, now.Add(-time.Minute), storetest.NoLimit("nobody@example.test"))
		if err != nil || id == 0 {
			t.Fatalf("queue for an address without an account: %d, %v", id, err)
		}
		return id
	}
	exists := func(id int64) bool {
		var n int
		if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM outbox WHERE id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	viaClaim := nobody()
	ms, err := ob.ClaimBatch(ctx, []int64{confirm, goodbye, viaClaim}, "me", now, now.Add(time.Minute), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].ID != confirm || ms[1].ID != goodbye {
		t.Fatalf("claimed %+v, want the confirmation and the goodbye", ms)
	}
	if m := ms[0]; m.Email != "owner@example.test" || m.PasswordHash != "hash" || m.AccountID == 0 {
		t.Errorf("confirmation taken as %+v, want the account's address and the signup's hash", m)
	}
	if m := ms[1]; m.Email != "leaving@example.test" || m.AccountID != 0 || m.Kind != account.MailAccountDeleted {
		t.Errorf("goodbye taken as %+v, want its own recipient and no account", m)
	}
	if exists(viaClaim) {
		t.Error("ClaimBatch kept the row for an address without an account")
	}

	viaLease := nobody()
	ms, err = ob.Lease(ctx, "me", now, now.Add(time.Minute), 10, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 0 {
		t.Errorf("Lease took %+v, want nothing", ms)
	}
	if exists(viaLease) {
		t.Error("Lease kept the row for an address without an account")
	}
}
