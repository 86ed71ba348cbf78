package purge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"signup/internal/hosted"
	"signup/internal/purge"
)

// addAccounts inserts n unconfirmed accounts signed up long before the
// retention (candidates) and m recent confirmed ones.
func (b *bundle) addAccounts(t *testing.T, candidates, others int) {
	t.Helper()
	b.exec(t, `INSERT INTO accounts (email, password_hash, created_at)
		SELECT 'c' || i || '-' || $2 || '@example.test', 'x', $1 FROM generate_series(1, $3::int) i`,
		t0.Add(-unconfirmedRetention-day), fmt.Sprint(emails.Add(1)), candidates)
	b.exec(t, `INSERT INTO accounts (email, password_hash, created_at, confirmed_at, last_seen_at)
		SELECT 'o' || i || '-' || $2 || '@example.test', 'x', $1, $1, $1 FROM generate_series(1, $3::int) i`,
		t0.Add(-time.Hour), fmt.Sprint(emails.Add(1)), others)
}

func TestSafetyLimit(t *testing.T) {
	p, b := setup(t, purge.Config{})
	b.addAccounts(t, 151, 149) // a bit over half
	live := b.addAccount(t, confirmed(t0))
	expired := b.addSession(t, live, t0.Add(-day), t0.Add(-day))
	before := b.snapshot(t)

	rep, err := p.RunOnce(t.Context(), purge.Options{})
	var lim *purge.LimitError
	if !errors.As(err, &lim) || !errors.Is(err, purge.ErrSafetyLimit) {
		t.Fatalf("err %v, want the safety limit", err)
	}
	if lim.Affected != 151 || lim.Total != 301 {
		t.Fatalf("limit error %+v, want 151 of 301", lim)
	}
	if after := b.snapshot(t); after != before || !b.exists(t, "sessions", "hash", expired) {
		t.Fatalf("the aborted run changed %s into %s", before, after)
	}
	runs := b.runs(t)
	if len(runs) != 1 || !strings.Contains(runs[0].Error, "safety limit") || runs[0].ID != rep.ID || runs[0].FinishedAt.IsZero() {
		t.Fatalf("recorded %+v, want the aborted run with its error", runs)
	}

	got := runOnce(t, p, purge.Options{Force: true})
	if got.Unconfirmed != 151 || got.Sessions != 1 {
		t.Fatalf("forced run %+v, want 151 accounts and the session", got)
	}
	if runs := b.runs(t); len(runs) != 2 || !runs[1].Forced || runs[1].Error != "" {
		t.Fatalf("forced run recorded as %+v", runs[1])
	}
}

// The limit only trips past SafetyFloor deletions, whatever the share.
func TestSafetyFloor(t *testing.T) {
	for _, tc := range []struct {
		candidates int
		trips      bool
	}{
		{purge.SafetyFloor, false},
		{purge.SafetyFloor + 1, true},
	} {
		t.Run("", func(t *testing.T) {
			p, b := setup(t, purge.Config{MaxShare: 0.1})
			b.addAccounts(t, tc.candidates, 10)
			_, err := p.RunOnce(t.Context(), purge.Options{})
			if tripped := errors.Is(err, purge.ErrSafetyLimit); tripped != tc.trips {
				t.Fatalf("%d of %d: err %v, want tripped %v", tc.candidates, tc.candidates+10, err, tc.trips)
			}
		})
	}
}

func TestDryRunMatchesRealRun(t *testing.T) {
	p, b := setup(t, purge.Config{BatchSize: 3})
	b.addAccounts(t, 7, 20)
	// Dormant, warnable, and the unconfirmed account's token (cascaded).
	a := confirmed(t0.Add(-inactiveRetention - day))
	a.warned = t0.Add(-inactiveWarning - time.Hour)
	b.addAccount(t, a)
	for range 4 {
		b.addAccount(t, confirmed(t0.Add(-inactiveRetention+day)))
	}
	old := b.addAccount(t, account{created: t0.Add(-unconfirmedRetention - day)})
	b.addToken(t, old, t0.Add(-unconfirmedRetention), time.Time{})
	b.addSession(t, b.addAccount(t, confirmed(t0)), t0.Add(-time.Hour), t0.Add(-time.Hour))
	before := b.snapshot(t)

	dry, err := p.RunOnce(t.Context(), purge.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after := b.snapshot(t); after != before {
		t.Fatalf("the dry run changed %s into %s", before, after)
	}
	want := purge.Counts{Unconfirmed: 8, Dormant: 1, Warned: 4, Sessions: 1}
	if dry.Counts != want {
		t.Fatalf("dry run %+v, want %+v", dry.Counts, want)
	}
	if got := runOnce(t, p, purge.Options{}); got != dry.Counts {
		t.Fatalf("real run %+v, dry run said %+v", got, dry.Counts)
	}
	runs := b.runs(t)
	if len(runs) != 2 || !runs[0].DryRun || runs[1].DryRun || runs[0].Counts != want {
		t.Fatalf("runs recorded as %+v", runs)
	}
}

// A dry run the safety limit would stop shows what a forced run would do.
func TestDryRunPastTheLimit(t *testing.T) {
	p, b := setup(t, purge.Config{})
	b.addAccounts(t, 120, 10)
	before := b.snapshot(t)
	rep, err := p.RunOnce(t.Context(), purge.Options{DryRun: true})
	if !errors.Is(err, purge.ErrSafetyLimit) || rep.Counts.Unconfirmed != 120 {
		t.Fatalf("dry run: %+v, %v; want 120 and the limit", rep.Counts, err)
	}
	if after := b.snapshot(t); after != before {
		t.Fatalf("the dry run changed %s into %s", before, after)
	}
}

func TestBusyWhileAnotherRuns(t *testing.T) {
	p, b := setup(t, purge.Config{})
	s, ok, err := b.db.Purges().Lock(t.Context(), purge.LockOptions{})
	if !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if _, err := p.RunOnce(t.Context(), purge.Options{}); !errors.Is(err, purge.ErrBusy) {
		t.Fatalf("err %v, want ErrBusy", err)
	}
	s.Release(t.Context())
	runOnce(t, p, purge.Options{})
}

// A run stopped between batches keeps what it did, consistent, records that
// it was interrupted, and the next run does the rest.
func TestInterruptedRunIsFinishedByTheNext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var batches atomic.Int32
	p, b := setup(t, purge.Config{BatchSize: 10, AfterBatch: func(context.Context, purge.Category) {
		if batches.Add(1) == 1 {
			cancel()
		}
	}})
	b.addAccounts(t, 25, 75)
	b.exec(t, `INSERT INTO tokens (hash, account_id, purpose, created_at, expires_at)
		SELECT sha256(id::text::bytea), id, 'confirm', created_at, created_at + interval '1 day' FROM accounts`)

	rep, err := p.RunOnce(ctx, purge.Options{})
	if !errors.Is(err, purge.ErrInterrupted) || rep.Counts != (purge.Counts{Unconfirmed: 10}) {
		t.Fatalf("stopped run: %+v, %v; want 10 deleted and interrupted", rep.Counts, err)
	}
	if n := b.count(t, `SELECT count(*) FROM accounts`); n != 90 {
		t.Fatalf("%d accounts after one batch, want 90", n)
	}
	// Consistent: every account left has its token, no token is orphaned.
	if n := b.count(t, `SELECT count(*) FROM accounts a WHERE NOT EXISTS (SELECT 1 FROM tokens t WHERE t.account_id = a.id)`); n != 0 {
		t.Fatalf("%d accounts lost their token", n)
	}
	runs := b.runs(t)
	if len(runs) != 1 || !strings.HasPrefix(runs[0].Error, "interrupted") || runs[0].Counts.Unconfirmed != 10 {
		t.Fatalf("recorded %+v, want the interrupted run", runs)
	}

	if got := runOnce(t, p, purge.Options{}); got.Unconfirmed != 15 {
		t.Fatalf("next run deleted %d, want the 15 left", got.Unconfirmed)
	}
}

// A panic is the one failure that escalates; the run is still recorded and
// the lock freed.
func TestPanicEscalatesToTheHost(t *testing.T) {
	var panicked atomic.Bool
	p, b := setup(t, purge.Config{AfterBatch: func(context.Context, purge.Category) {
		if !panicked.Swap(true) {
			panic("bug")
		}
	}})
	b.ranBefore(t)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.Failed():
		var pe *hosted.PanicError
		if !errors.As(err, &pe) {
			t.Fatalf("failure %v, want a panic", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no failure reported")
	}
	if err := p.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	runs := b.runs(t)
	if len(runs) != 1 || !strings.Contains(runs[0].Error, "panic") {
		t.Fatalf("recorded %+v, want the run and its panic", runs)
	}
	runOnce(t, p, purge.Options{}) // the lock was freed
}

func TestConfigValidation(t *testing.T) {
	_, b := setup(t, purge.Config{})
	for _, tc := range []struct {
		name string
		cfg  purge.Config
		want string
	}{
		{"no store", purge.Config{}, "Store is required"},
		{"schedule", purge.Config{Store: b.db.Purges(), Schedule: "every night"}, "parse schedule"},
		{"never due", purge.Config{Store: b.db.Purges(), Schedule: "0 0 30 2 *"}, "never due"},
		{"warning", purge.Config{Store: b.db.Purges(), InactiveWarning: 9000 * time.Hour}, "InactiveWarning"},
		{"share", purge.Config{Store: b.db.Purges(), MaxShare: 1.5}, "MaxShare"},
		{"negative", purge.Config{Store: b.db.Purges(), UnconfirmedRetention: -time.Hour}, "negative UnconfirmedRetention"},
	} {
		if _, err := purge.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}
