package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/devmail"
	"signup/internal/store"
)

// defaultAdminURL is the server used when TEST_DATABASE_URL is not set,
// the same default as the tests.
const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// harness holds what every scenario shares: the PostgreSQL server it
// creates databases on, the web binary, and a scratch directory.
type harness struct {
	// admin is the URL of the maintenance database bench databases are
	// created from (TEST_DATABASE_URL).
	admin  string
	dir    string
	webBin string
	stderr io.Writer

	mu        sync.Mutex
	databases map[string]bool // created and not yet dropped
	// purgeTemplate is the filled purge data set, built once and copied
	// for each purge run.
	purgeTemplate string
	// run is the run under way (from 1); drains holds each run's drain
	// round, shared by the rows it measures.
	run    int
	drains map[int]*drainResult
}

func newHarness(ctx context.Context, getenv func(string) string, stderr io.Writer) (*harness, error) {
	admin := getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = defaultAdminURL
	}
	if _, err := url.Parse(admin); err != nil {
		return nil, fmt.Errorf("TEST_DATABASE_URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s (set TEST_DATABASE_URL): %w", redact(admin), err)
	}
	conn.Close(ctx)

	dir, err := os.MkdirTemp("", "signup-bench-")
	if err != nil {
		return nil, err
	}
	h := &harness{admin: admin, dir: dir, stderr: stderr, databases: map[string]bool{}, drains: map[int]*drainResult{}}
	h.progress("building web")
	if h.webBin, err = buildWeb(ctx, dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return h, nil
}

// close drops every database still there and removes the scratch
// directory. It runs after an interrupt too, so it does not use the run's
// context.
func (h *harness) close() {
	h.mu.Lock()
	names := make([]string, 0, len(h.databases))
	for name := range h.databases {
		names = append(names, name)
	}
	h.mu.Unlock()
	for _, name := range names {
		if err := h.dropDatabase(name); err != nil {
			h.progress("%v", err)
		}
	}
	os.RemoveAll(h.dir)
}

func (h *harness) progress(format string, args ...any) {
	fmt.Fprintf(h.stderr, "bench: "+format+"\n", args...)
}

// createDatabase creates an empty database, from template when it is not
// "", and returns its name. close drops it if nothing else does.
func (h *harness) createDatabase(ctx context.Context, template string) (string, error) {
	name := "bench_" + randomHex(6)
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	if err := h.adminExec(ctx, stmt); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	h.mu.Lock()
	h.databases[name] = true
	h.mu.Unlock()
	return name, nil
}

// dropDatabase removes a database made by createDatabase, disconnecting
// whoever still uses it.
func (h *harness) dropDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.adminExec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	h.mu.Lock()
	delete(h.databases, name)
	h.mu.Unlock()
	return nil
}

func (h *harness) adminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, h.admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// url is the URL of database name on the bench's server.
func (h *harness) url(name string) string {
	u, _ := url.Parse(h.admin) // parsed in newHarness
	u.Path = "/" + name
	return u.String()
}

// benchDB is a fresh migrated database, open.
type benchDB struct {
	*store.DB
	name, url string
	h         *harness
}

// newDatabase creates a database and migrates it with the product's
// migrations. Close drops it.
func (h *harness) newDatabase(ctx context.Context) (*benchDB, error) {
	name, err := h.createDatabase(ctx, "")
	if err != nil {
		return nil, err
	}
	db, err := h.open(ctx, name)
	if err == nil {
		if err = db.Migrate(ctx); err != nil {
			db.Close()
			err = fmt.Errorf("migrate: %w", err)
		}
	}
	if err != nil {
		return nil, errors.Join(err, h.dropDatabase(name))
	}
	return &benchDB{DB: db, name: name, url: h.url(name), h: h}, nil
}

func (h *harness) open(ctx context.Context, name string) (*store.DB, error) {
	db, err := store.Open(ctx, h.url(name), store.Options{})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return db, nil
}

// Close closes the pool and drops the database.
func (d *benchDB) Close() {
	d.DB.Close()
	if err := d.h.dropDatabase(d.name); err != nil {
		d.h.progress("%v", err)
	}
}

// startDevmail starts an in-process SMTP sink with faults. It keeps few
// messages: scenarios count them with Received.
func startDevmail(ctx context.Context, f devmail.Faults) (*devmail.Server, error) {
	srv := devmail.New(devmail.Config{MaxMessages: 100})
	if err := srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("start devmail: %w", err)
	}
	srv.SetFaults(f)
	return srv, nil
}

func stopDevmail(srv *devmail.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Stop(ctx)
}

// webEnv is the environment the web process gets: only what it needs, the
// ops listener off, no rate limit, JSON logs, the site on httpAddr, and
// extra ("KEY=value") on top.
func webEnv(databaseURL, smtpURL, httpAddr string, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"LOG_FORMAT=json",
		"OPS_ADDR=",
		"HTTP_ADDR=" + httpAddr,
		"RATE_LIMIT=off",
		"DATABASE_URL=" + databaseURL,
		"SMTP_URL=" + smtpURL,
	}, extra...)
}

// startWeb launches the web binary with extra environment on top of
// webEnv's and waits until it is ready.
func (h *harness) startWeb(ctx context.Context, databaseURL, smtpURL string, extra ...string) (*process, string, error) {
	p, err := launch(h.webBin, webEnv(databaseURL, smtpURL, "127.0.0.1:0", extra...))
	if err != nil {
		return nil, "", err
	}
	addr, err := p.waitListening(ctx, time.Minute)
	if err == nil {
		err = waitReady(ctx, "http://"+addr, 10*time.Millisecond, time.Minute)
	}
	if err != nil {
		p.kill()
		return nil, "", fmt.Errorf("%w\nweb log:\n%s", err, p.log())
	}
	return p, "http://" + addr, nil
}

// site is the product under test: the web process on a fresh database,
// sending to an in-process SMTP sink.
type site struct {
	db   *benchDB
	mail *devmail.Server
	web  *process
	url  string
}

// startSite starts a fresh site whose SMTP peer misbehaves as f says.
func (h *harness) startSite(ctx context.Context, f devmail.Faults) (s *site, err error) {
	s = &site{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.db, err = h.newDatabase(ctx); err != nil {
		return nil, err
	}
	if s.mail, err = startDevmail(ctx, f); err != nil {
		return nil, err
	}
	if s.web, s.url, err = h.startWeb(ctx, s.db.url, s.mail.SMTPURL()); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *site) close() {
	if s.web != nil {
		s.web.kill()
	}
	if s.mail != nil {
		stopDevmail(s.mail)
	}
	if s.db != nil {
		s.db.Close()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
