// Package storetest gives each test its own migrated PostgreSQL database.
//
// The first call in a test binary builds a template database from the
// migrations (once per migration set, shared by every package's tests and
// guarded by an advisory lock); each test then gets a copy made with CREATE
// DATABASE … TEMPLATE, which takes milliseconds, and the copy is dropped when
// the test ends. Tests that use it can run in parallel.
package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/account"
	"signup/internal/netfault"
	"signup/internal/store"
	"signup/migrations"
)

// DefaultURL is the server tests use when TEST_DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// AdminURL is the URL of the maintenance database tests create theirs from.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var template = sync.OnceValues(buildTemplate)

// URL creates a fresh migrated database for t and returns its URL. The
// database is dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	tmpl, err := template()
	if err != nil {
		t.Fatalf("storetest: template database: %v", err)
	}
	name := "signup_test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("storetest: connect to %s: %v", redact(AdminURL()), err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() { Drop(t, name) })
	return WithDatabase(AdminURL(), name)
}

// New returns an open store on a fresh migrated database, closed and dropped
// when t ends.
func New(t testing.TB) *store.DB {
	t.Helper()
	u := URL(t)
	db, err := store.Open(context.Background(), u, store.Options{})
	if err != nil {
		t.Fatalf("storetest: open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// Drop removes a database, disconnecting whoever still uses it.
func Drop(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Errorf("storetest: drop %s: connect: %v", name, err)
		return
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
		t.Errorf("storetest: drop %s: %v", name, err)
	}
}

// WithDatabase returns base with its database name replaced.
func WithDatabase(base, name string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(fmt.Sprintf("storetest: TEST_DATABASE_URL: %v", err))
	}
	u.Path = "/" + name
	return u.String()
}

// buildTemplate creates signup_tmpl_<hash of the migrations> once per
// migration set. An advisory lock on the admin database serialises test
// binaries that start together.
func buildTemplate() (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "signup_tmpl_" + sum
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return "", fmt.Errorf("connect to %s (set TEST_DATABASE_URL): %w", redact(AdminURL()), err)
	}
	defer admin.Close(context.Background())
	const lockKey = 0x5167_6e75 // "signup" test template
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", lockKey) //nolint:errcheck // the session ends right after

	var ready bool
	err = admin.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&ready)
	if err == nil && ready {
		return name, nil
	}
	// Absent, or left half-built by a killed run: build it anew.
	if _, err := admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name)); err != nil {
		return "", fmt.Errorf("drop stale template: %w", err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	db, err := store.Open(ctx, WithDatabase(AdminURL(), name), store.Options{})
	if err != nil {
		return "", fmt.Errorf("open template: %w", err)
	}
	err = db.Migrate(ctx)
	db.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s IS_TEMPLATE true", name)); err != nil {
		return "", fmt.Errorf("mark template: %w", err)
	}
	return name, nil
}

func migrationsHash() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// URLBehindProxy gives the test its own database, like URL, and a
// fault-injecting proxy in front of it, closed when the test ends. It
// returns the database's own URL and the URL that goes through the proxy.
func URLBehindProxy(t testing.TB) (direct, proxied string, proxy *netfault.Proxy) {
	t.Helper()
	direct = URL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatalf("storetest: parse database url: %v", err)
	}
	proxy, err = netfault.Listen(u.Host)
	if err != nil {
		t.Fatalf("storetest: proxy: %v", err)
	}
	t.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	return direct, u.String(), proxy
}

// LockInstance takes the mail sender's instance lock for instance on db,
// as a live sender of that name holds it, until the test ends.
func LockInstance(t testing.TB, db *store.DB, instance string) *store.InstanceLock {
	t.Helper()
	l, err := db.Outbox().LockInstance(t.Context(), instance)
	if err != nil {
		t.Fatalf("storetest: lock instance %s: %v", instance, err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return l
}

// NoLimit is a turn of the mail limits of email that is always allowed:
// no cooldown and a daily cap no test reaches, for tests of something else.
func NoLimit(email string) account.MailTurn {
	return account.MailTurn{Address: account.LimitKey(email), Kind: "test", DailyCap: 1 << 30}
}
