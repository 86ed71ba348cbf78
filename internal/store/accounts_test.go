package store_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/account"
	"signup/internal/store"
	"signup/internal/store/storetest"
)

var at0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	// A blank database (not from the template), migrated by several
	// "instances" at once.
	url := storetest.URL(t)
	ctx := context.Background()
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Pool().Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other, err := store.Open(ctx, url, store.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			defer other.Close()
			errs[i] = other.Migrate(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("again: %v", err)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("version %d, %v", v, err)
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = store.Open(ctx, "postgres://postgres@"+addr+"/x?sslmode=disable", store.Options{})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	_, err = store.Open(ctx, "postgres://user:hunter2@[bad", store.Options{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL error %v leaks or is nil", err)
	}
}

func TestSignupRepository(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	r := db.Accounts()
	ctx := context.Background()

	res, err := r.Signup(ctx, "Case@Example.com", "h1", at0, storetest.NoLimit("Case@Example.com"), storetest.NoLimit("Case@Example.com"))
	if err != nil || res.Existing || res.Kind != account.MailConfirm || res.AccountID == 0 || res.OutboxID == 0 {
		t.Fatalf("new signup: %+v, %v", res, err)
	}
	again, err := r.Signup(ctx, "case@example.COM", "h2", at0, storetest.NoLimit("case@example.COM"), storetest.NoLimit("case@example.COM"))
	if err != nil || !again.Existing || again.AccountID != res.AccountID || again.Kind != account.MailConfirm {
		t.Fatalf("unconfirmed again: %+v, %v", again, err)
	}
	a, err := r.AccountByEmail(ctx, "CASE@example.com")
	if err != nil || a.PasswordHash != "h1" || a.Confirmed() {
		t.Fatalf("the second signup changed the account: %+v, %v", a, err)
	}
	if _, err := r.AccountByEmail(ctx, "nobody@example.com"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}

	// Confirm through a token.
	hash := insertTestToken(t, db, res.AccountID, at0.Add(time.Hour))
	if _, err := r.Confirm(ctx, hash, "h", at0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Confirm(ctx, hash, "h", at0.Add(2*time.Minute)); !errors.Is(err, account.ErrAlreadyConfirmed) {
		t.Fatalf("reuse: %v", err)
	}
	third, err := r.Signup(ctx, "case@example.com", "h3", at0, storetest.NoLimit("case@example.com"), storetest.NoLimit("case@example.com"))
	if err != nil || third.Kind != account.MailSignupAttempt {
		t.Fatalf("confirmed again: %+v, %v", third, err)
	}

	// Resend only for unconfirmed accounts.
	if _, ok, err := r.QueueForAddress(ctx, account.MailConfirm, "case@example.com", true, at0, storetest.NoLimit("case@example.com")); ok || err != nil {
		t.Fatalf("resend for a confirmed account: %v %v", ok, err)
	}
	if _, ok, err := r.QueueForAddress(ctx, account.MailConfirm, "nobody@example.com", true, at0, storetest.NoLimit("nobody@example.com")); ok || err != nil {
		t.Fatalf("resend for nobody: %v %v", ok, err)
	}
	other, _ := r.Signup(ctx, "other@example.com", "h", at0, storetest.NoLimit("other@example.com"), storetest.NoLimit("other@example.com"))
	if id, ok, err := r.QueueForAddress(ctx, account.MailConfirm, "OTHER@example.com", true, at0, storetest.NoLimit("OTHER@example.com")); !ok || err != nil || id == other.OutboxID {
		t.Fatalf("resend: %d %v %v", id, ok, err)
	}
}

func TestUseTokenBoundaries(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	r := db.Accounts()
	ctx := context.Background()
	res, _ := r.Signup(ctx, "b@example.com", "h", at0, storetest.NoLimit("b@example.com"), storetest.NoLimit("b@example.com"))
	exp := at0.Add(24 * time.Hour)
	hash := insertTestToken(t, db, res.AccountID, exp)
	if _, err := r.Confirm(ctx, hash, "h", exp); !errors.Is(err, account.ErrTokenExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	if _, err := r.Confirm(ctx, hash, "h", exp.Add(-time.Nanosecond*1000)); err != nil {
		t.Fatalf("a moment before expiry: %v", err)
	}
	unknown := make([]byte, 32)
	if _, err := r.Confirm(ctx, unknown, "h", at0); !errors.Is(err, account.ErrTokenInvalid) {
		t.Fatalf("unknown: %v", err)
	}
}

func insertTestToken(t *testing.T, db *store.DB, accountID int64, expires time.Time) []byte {
	t.Helper()
	_, hash, err := account.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Pool().Exec(context.Background(), `
		INSERT INTO tokens (hash, account_id, purpose, created_at, expires_at) VALUES ($1, $2, 'confirm', $3, $4)`,
		hash, accountID, at0, expires)
	if err != nil {
		t.Fatal(err)
	}
	return hash
}

// Concurrent signups of one address: one creates the account, every other
// one finds it (in its statement or, when the account was committed while
// that ran, in the fallback transaction), and each queues one mail.
func TestSignupConcurrentSameAddress(t *testing.T) {
	t.Parallel()
	db := storetest.New(t)
	r := db.Accounts()
	const n = 16
	results := make(chan account.SignupResult, n)
	errs := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			email := "Race@Example.com"
			if i%2 == 1 {
				email = "race@example.com"
			}
			res, err := r.Signup(t.Context(), email, "h", at0, storetest.NoLimit(email), storetest.NoLimit(email))
			if err != nil {
				errs <- err
				return
			}
			results <- res
		})
	}
	close(start)
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		t.Fatalf("signup: %v", err)
	}
	created, outbox := 0, map[int64]bool{}
	var id int64
	for res := range results {
		if !res.Existing {
			created++
		}
		if id != 0 && res.AccountID != id {
			t.Errorf("account ids %d and %d for one address", id, res.AccountID)
		}
		id = res.AccountID
		if res.Kind != account.MailConfirm || res.OutboxID == 0 || outbox[res.OutboxID] {
			t.Errorf("result %+v", res)
		}
		outbox[res.OutboxID] = true
	}
	if created != 1 || len(outbox) != n {
		t.Errorf("%d signups created the account, %d outbox rows; want 1 and %d", created, len(outbox), n)
	}
	var accounts, rows int
	if err := db.Pool().QueryRow(t.Context(), `
		SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM outbox WHERE account_id = $1)`, id).Scan(&accounts, &rows); err != nil {
		t.Fatal(err)
	}
	if accounts != 1 || rows != n {
		t.Errorf("accounts %d, outbox rows %d; want 1 and %d", accounts, rows, n)
	}
}
