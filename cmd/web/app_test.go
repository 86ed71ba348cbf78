package main

import (
	"context"
	"testing"
	"time"

	"signup/internal/devmail"
	"signup/internal/purge"
	"signup/internal/store"
	"signup/internal/store/storetest"
)

// running is the wired application as web serve builds it, running in the
// test, and what the test reaches it by.
type running struct {
	app  *app
	db   *store.DB // a connection of the test's own to the app's database
	smtp *devmail.Server
	site string // the site's base URL
	ops  string // the ops listener's base URL
	logs *syncBuffer
}

// startApp runs the application through build, the wiring web serve uses,
// on a fresh database with a devmail peer, the site and the ops listener on
// free ports and rate limits off; extra settings go on top. It is stopped
// when the test ends, and its log is shown if the test failed. prepare, if
// not nil, runs on the database before the app starts.
func startApp(t *testing.T, extra map[string]string, prepare func(*store.DB)) *running {
	t.Helper()
	smtp := devmail.New(devmail.Config{})
	if err := smtp.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtp.Stop(context.Background()) })
	dbURL := storetest.URL(t)
	db, err := store.Open(t.Context(), dbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if prepare != nil {
		prepare(db)
	}
	e := map[string]string{
		"DATABASE_URL": dbURL,
		"SMTP_URL":     smtp.SMTPURL(),
		"HTTP_ADDR":    "127.0.0.1:0",
		"OPS_ADDR":     "127.0.0.1:0",
		"RATE_LIMIT":   "off",
	}
	for k, v := range extra {
		e[k] = v
	}
	logs := &syncBuffer{}
	a := buildFromEnv(t, e, logs)
	done := make(chan error, 1)
	go func() { done <- a.host.Run(context.Background()) }()
	t.Cleanup(func() {
		a.host.Stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	select {
	case <-a.host.Started():
	case err := <-done:
		done <- err
		t.Fatalf("app stopped at start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("app did not start within a minute")
	}
	r := &running{app: a, db: db, smtp: smtp, site: "http://" + a.site.Addr(), logs: logs}
	if a.ops != nil {
		r.ops = "http://" + a.ops.Addr()
	}
	return r
}

// ranBefore records a purge run a week ago, so the database has a history
// from before the latest tick of the schedule: the app's purger then
// catches that tick up at start (on a fresh database the tick came before
// the first start, and is not a missed run).
func ranBefore(t *testing.T) func(*store.DB) {
	return func(db *store.DB) {
		t.Helper()
		at := time.Now().Add(-7 * 24 * time.Hour)
		rep := purge.Report{Instance: "earlier", StartedAt: at}
		id, err := db.Purges().StartRun(t.Context(), rep)
		if err != nil {
			t.Fatal(err)
		}
		rep.ID, rep.FinishedAt = id, at.Add(time.Second)
		if err := db.Purges().FinishRun(t.Context(), rep); err != nil {
			t.Fatal(err)
		}
	}
}
