package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"signup/internal/store"
	"signup/internal/store/storetest"
)

// purgeFixture fills a fresh database with something of every category to
// purge, relative to the real clock, and returns its URL and store.
func purgeFixture(t *testing.T) (string, *store.DB) {
	t.Helper()
	url := storetest.URL(t)
	db, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	now := time.Now()
	days := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	for _, sql := range []struct {
		q    string
		args []any
	}{
		// 3 unconfirmed for 10 days, with a sent confirmation and its token
		{`INSERT INTO accounts (email, password_hash, created_at)
			SELECT 'u' || i || '@example.test', 'x', $1 FROM generate_series(1, 3) i`, []any{days(10)}},
		{`INSERT INTO outbox (account_id, kind, status, created_at, next_attempt_at, sent_at)
			SELECT id, 'confirm', 'sent', created_at, created_at, created_at FROM accounts`, nil},
		{`INSERT INTO tokens (hash, account_id, purpose, created_at, expires_at)
			SELECT sha256(id::text::bytea), id, 'confirm', created_at, created_at + interval '1 day' FROM accounts`, nil},
		// 10 active accounts, one with an expired session and an old sent mail
		{`INSERT INTO accounts (email, password_hash, created_at, confirmed_at, last_seen_at)
			SELECT 'a' || i || '@example.test', 'x', $1, $1, $2 FROM generate_series(1, 10) i`, []any{days(60), days(1)}},
		{`INSERT INTO sessions (hash, account_id, created_at, last_used_at, expires_at, absolute_expires_at)
			SELECT sha256(('s' || id)::bytea), id, $1, $1, $1, $1 FROM accounts WHERE email = 'a1@example.test'`, []any{days(2)}},
		{`INSERT INTO outbox (account_id, kind, status, created_at, next_attempt_at, sent_at)
			SELECT id, 'confirm', 'sent', $1, $1, $1 FROM accounts WHERE email = 'a1@example.test'`, []any{days(59)}},
		// 2 dormant for 360 days: to warn
		{`INSERT INTO accounts (email, password_hash, created_at, confirmed_at, last_seen_at)
			SELECT 'd' || i || '@example.test', 'x', $1, $1, $1 FROM generate_series(1, 2) i`, []any{days(360)}},
	} {
		if _, err := db.Pool().Exec(t.Context(), sql.q, sql.args...); err != nil {
			t.Fatalf("%s: %v", sql.q, err)
		}
	}
	return url, db
}

// counts reads the numbers of `web purge`'s table, in order.
func counts(t *testing.T, out string) []string {
	t.Helper()
	var nums []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("bad line %q in\n%s", line, out)
		}
		nums = append(nums, f[0]+"="+f[1])
	}
	return nums
}

func snapshot(t *testing.T, db *store.DB) string {
	t.Helper()
	var s string
	err := db.Pool().QueryRow(t.Context(), `
		SELECT format('%s %s %s %s %s', (SELECT count(*) FROM accounts),
			(SELECT count(*) FROM accounts WHERE warned_at IS NOT NULL), (SELECT count(*) FROM sessions),
			(SELECT count(*) FROM tokens), (SELECT count(*) FROM outbox))`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPurgeCommandDryRunThenReal(t *testing.T) {
	t.Parallel()
	url, db := purgeFixture(t)
	getenv := env(map[string]string{"DATABASE_URL": url, "LOG_FORMAT": "json"})
	before := snapshot(t, db)

	var dry, stderr bytes.Buffer
	if err := purgeCmd(t.Context(), []string{"--dry-run"}, getenv, &dry, &stderr); err != nil {
		t.Fatalf("dry run: %v\n%s", err, stderr.String())
	}
	if after := snapshot(t, db); after != before {
		t.Fatalf("the dry run changed %s into %s", before, after)
	}
	if !strings.Contains(dry.String(), "dry run, nothing changed") || !strings.Contains(dry.String(), "would delete") {
		t.Fatalf("dry run printed:\n%s", dry.String())
	}

	var real bytes.Buffer
	if err := purgeCmd(t.Context(), nil, getenv, &real, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	want := []string{"unconfirmed=3", "dormant=0", "warned=2", "sessions=1", "tokens=0", "outbox=1"}
	if got := counts(t, real.String()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("real run printed %v, want %v:\n%s", got, want, real.String())
	}
	if got := counts(t, dry.String()); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("dry run printed %v, the real run did %v", got, want)
	}
	if after := snapshot(t, db); after != "12 2 0 0 2" {
		t.Fatalf("after the run: %s, want 12 accounts, 2 warned, no session or token, 2 warnings queued", after)
	}
}

func TestPurgeCommandSafetyLimitAndForce(t *testing.T) {
	t.Parallel()
	url, db := purgeFixture(t)
	getenv := env(map[string]string{"DATABASE_URL": url, "LOG_FORMAT": "json", "PURGE_MAX_SHARE": "0.1"})
	// 150 more unconfirmed accounts: 153 of 165 would go, and 2 be warned.
	if _, err := db.Pool().Exec(t.Context(), `INSERT INTO accounts (email, password_hash, created_at)
		SELECT 'x' || i || '@example.test', 'x', $1 FROM generate_series(1, 150) i`, time.Now().Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, db)
	var out, stderr bytes.Buffer
	err := purgeCmd(t.Context(), nil, getenv, &out, &stderr)
	if err == nil || !strings.Contains(err.Error(), "safety limit") || !strings.Contains(err.Error(), "155 of 165") {
		t.Fatalf("err %v, want the safety limit", err)
	}
	var ce *configError
	if errors.As(err, &ce) || exitCode(err, &stderr) != 1 {
		t.Fatalf("exit code %d, want 1", exitCode(err, &stderr))
	}
	if after := snapshot(t, db); after != before {
		t.Fatalf("the stopped run changed %s into %s", before, after)
	}
	out.Reset()
	if err := purgeCmd(t.Context(), []string{"--force", "--max", "100"}, getenv, &out, &stderr); err != nil {
		t.Fatalf("forced with --max: %v", err)
	}
	if got := counts(t, out.String()); got[0] != "unconfirmed=100" || got[2] != "warned=0" {
		t.Fatalf("forced run with --max 100 printed:\n%s", out.String())
	}
	out.Reset()
	if err := purgeCmd(t.Context(), []string{"--force"}, getenv, &out, &stderr); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if !strings.Contains(out.String(), "unconfirmed") || counts(t, out.String())[0] != "unconfirmed=53" {
		t.Fatalf("forced run printed:\n%s", out.String())
	}
}

func TestPurgeCommandUsage(t *testing.T) {
	t.Parallel()
	var out, stderr bytes.Buffer
	err := purgeCmd(context.Background(), []string{"extra"}, env(map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1:1/x"}), &out, &stderr)
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("err %v, want a usage error", err)
	}
	err = purgeCmd(context.Background(), nil, env(nil), &out, &stderr)
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "DATABASE_URL is required") {
		t.Fatalf("err %v, want DATABASE_URL is required", err)
	}
}
