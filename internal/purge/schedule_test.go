package purge_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"signup/internal/hosted"
	"signup/internal/purge"
	"signup/internal/store"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestScheduleNextAndLast(t *testing.T) {
	t.Parallel()
	paris := mustLoad(t, "Europe/Paris")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name, expr string
		loc        *time.Location
		at         string
		last, next string // UTC
	}{
		// 03:00 in Paris is 02:00Z in winter, 01:00Z in summer.
		{"winter", "0 3 * * *", paris, "2026-03-27T12:00:00Z", "2026-03-27T02:00:00Z", "2026-03-28T02:00:00Z"},
		{"eve of spring forward", "0 3 * * *", paris, "2026-03-28T02:00:00Z", "2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z"},
		{"summer", "0 3 * * *", paris, "2026-03-29T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"},
		{"eve of fall back", "0 3 * * *", paris, "2026-10-24T01:00:00Z", "2026-10-24T01:00:00Z", "2026-10-25T02:00:00Z"},
		{"fall back", "0 3 * * *", paris, "2026-10-25T01:30:00Z", "2026-10-24T01:00:00Z", "2026-10-25T02:00:00Z"},
		{"utc", "0 3 * * *", time.UTC, "2026-03-28T12:00:00Z", "2026-03-28T03:00:00Z", "2026-03-29T03:00:00Z"},
		{"every 10m", "@every 10m", paris, "2026-03-29T12:03:07Z", "2026-03-29T12:00:00Z", "2026-03-29T12:10:00Z"},
		{"every 10m on a tick", "@every 10m", time.UTC, "2026-03-29T12:10:00Z", "2026-03-29T12:10:00Z", "2026-03-29T12:20:00Z"},
		{"daily", "@daily", paris, "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"},
		{"weekly", "@weekly", time.UTC, "2026-03-25T12:00:00Z", "2026-03-22T00:00:00Z", "2026-03-29T00:00:00Z"},
		{"yearly", "@yearly", time.UTC, "2026-03-25T12:00:00Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"cron tz wins", "CRON_TZ=UTC 0 3 * * *", paris, "2026-03-28T12:00:00Z", "2026-03-28T03:00:00Z", "2026-03-29T03:00:00Z"},
	}
	for _, tc := range cases {
		s, err := purge.ParseSchedule(tc.expr, tc.loc)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		at := utc(tc.at)
		if got := s.Last(at); !got.Equal(utc(tc.last)) {
			t.Errorf("%s: Last(%s) = %s, want %s", tc.name, tc.at, got.UTC().Format(time.RFC3339), tc.last)
		}
		if got := s.Next(at); !got.Equal(utc(tc.next)) {
			t.Errorf("%s: Next(%s) = %s, want %s", tc.name, tc.at, got.UTC().Format(time.RFC3339), tc.next)
		}
	}
}

func TestNextRunInTheScheduleZone(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	p, b := setup(t, purge.Config{Schedule: "0 3 * * *", Location: paris})
	b.clock.AdvanceTo(time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC))
	next := p.NextRun()
	if want := time.Date(2026, 3, 29, 3, 0, 0, 0, paris); !next.Equal(want) || next.Location() != paris {
		t.Fatalf("NextRun %v, want %v in Europe/Paris", next, want)
	}
	if _, offset := next.Zone(); offset != 2*3600 {
		t.Fatalf("NextRun offset %d, want summer time", offset)
	}
}

// start starts p and stops it when the test ends.
func start(t *testing.T, p *purge.Purger) {
	t.Helper()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

// A tick missed while no instance ran is caught up at start.
func TestMissedRunCaughtUpAtStart(t *testing.T) {
	p, b := setup(t, purge.Config{})
	b.ranBefore(t)
	b.addAccounts(t, 3, 10)
	start(t, p)
	b.clock.WaitWaiters(t, 1)

	runs := b.runs(t)
	if len(runs) != 1 || !runs[0].Scheduled.Equal(time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)) ||
		runs[0].Counts.Unconfirmed != 3 || runs[0].Error != "" {
		t.Fatalf("runs %+v, want one for today's 03:00 tick", runs)
	}
	if got, want := runs[0].Kind(), "caught up: the 03:00 run was missed"; got != want {
		t.Errorf("the catch-up run is described as %q, want %q", got, want)
	}
}

// On a fresh database the latest tick came before the first start: it is
// not a missed run, and the first run is the next tick's, on time.
func TestFirstStartCatchesNothingUp(t *testing.T) {
	p, b := setup(t, purge.Config{})
	b.addAccounts(t, 3, 10)
	start(t, p)
	b.clock.WaitWaiters(t, 1)
	if runs := b.runs(t); len(runs) != 0 {
		t.Fatalf("runs %+v at the first start, want none", runs)
	}

	b.clock.AdvanceTo(p.NextRun())
	b.clock.WaitWaiters(t, 1)
	runs := b.runs(t)
	if len(runs) != 1 || !runs[0].Scheduled.Equal(time.Date(2030, 1, 3, 3, 0, 0, 0, time.UTC)) || runs[0].Counts.Unconfirmed != 3 {
		t.Fatalf("runs %+v, want one for tomorrow's 03:00 tick", runs)
	}
	if got := runs[0].Kind(); got != "scheduled" {
		t.Errorf("the run on its tick is described as %q, want scheduled", got)
	}
}

// A tick already served is not run again at start.
func TestServedTickNotRerunAtStart(t *testing.T) {
	p, b := setup(t, purge.Config{})
	b.ranBefore(t)
	tick := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	served := purge.Report{Instance: "other", Scheduled: tick, StartedAt: tick}
	id, err := b.db.Purges().StartRun(t.Context(), served)
	if err != nil {
		t.Fatal(err)
	}
	served.ID, served.FinishedAt = id, tick.Add(time.Second)
	if err := b.db.Purges().FinishRun(t.Context(), served); err != nil {
		t.Fatal(err)
	}
	b.addAccounts(t, 3, 10)
	start(t, p)
	b.clock.WaitWaiters(t, 1)
	if runs := b.runs(t); len(runs) != 1 || b.count(t, `SELECT count(*) FROM accounts`) != 13 {
		t.Fatalf("runs %+v: the served tick ran again", runs)
	}

	// The next tick runs.
	b.clock.AdvanceTo(p.NextRun())
	b.clock.WaitWaiters(t, 1)
	if runs := b.runs(t); len(runs) != 2 || runs[1].Counts.Unconfirmed != 3 {
		t.Fatalf("runs %+v, want the next tick's run", runs)
	}
}

// Two instances on one database serve each tick once.
func TestTwoInstancesRunOncePerTick(t *testing.T) {
	first, b := setup(t, purge.Config{Instance: "one", BatchSize: 2})
	other, err := store.Open(context.Background(), b.url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	second := newPurger(t, b, other, purge.Config{Instance: "two", BatchSize: 2})

	b.ranBefore(t)
	b.addAccounts(t, 5, 20)
	start(t, first)
	start(t, second)
	b.clock.WaitWaiters(t, 2)
	for day := 1; day <= 3; day++ {
		b.addAccounts(t, day, 0)
		b.clock.AdvanceTo(first.NextRun())
		b.clock.WaitWaiters(t, 2)
	}

	runs := b.runs(t)
	if len(runs) != 4 {
		t.Fatalf("%d runs for 4 ticks: %+v", len(runs), runs)
	}
	var deleted int64
	for i, r := range runs {
		if r.Error != "" || (i > 0 && !r.Scheduled.After(runs[i-1].Scheduled)) {
			t.Fatalf("runs %+v: want one successful run per tick", runs)
		}
		deleted += r.Counts.Unconfirmed
	}
	if deleted != 5+1+2+3 || b.count(t, `SELECT count(*) FROM accounts`) != 20 {
		t.Fatalf("deleted %d, want 11", deleted)
	}
}

// Stopping the host stops a run between batches; the run is recorded as
// interrupted and a restart's catch-up finishes it.
func TestStopMidRunThenRestartFinishes(t *testing.T) {
	reached := make(chan struct{})
	var batches atomic.Int32
	p, b := setup(t, purge.Config{BatchSize: 10, AfterBatch: func(ctx context.Context, _ purge.Category) {
		if batches.Add(1) == 1 {
			close(reached)
			<-ctx.Done() // hold the run until the host stops
		}
	}})
	b.ranBefore(t)
	b.addAccounts(t, 25, 75)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-reached
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	runs := b.runs(t)
	if len(runs) != 1 || !strings.HasPrefix(runs[0].Error, "interrupted") || runs[0].Counts.Unconfirmed != 10 {
		t.Fatalf("runs %+v, want one interrupted after a batch", runs)
	}
	if n := b.count(t, `SELECT count(*) FROM accounts`); n != 90 {
		t.Fatalf("%d accounts, want 90", n)
	}

	start(t, p) // the same tick is caught up, as it was not served
	b.clock.WaitWaiters(t, 1)
	runs = b.runs(t)
	if len(runs) != 2 || runs[1].Error != "" || runs[1].Counts.Unconfirmed != 15 || !runs[1].Scheduled.Equal(runs[0].Scheduled) {
		t.Fatalf("runs %+v, want the tick served by a second run", runs)
	}
}

// A run that fails does not stop the schedule: the next tick retries.
func TestFailedRunDoesNotStopTheSchedule(t *testing.T) {
	p, b := setup(t, purge.Config{})
	b.ranBefore(t)
	b.addAccounts(t, 150, 10) // trips the safety limit
	start(t, p)
	b.clock.WaitWaiters(t, 1)
	select {
	case err := <-p.Failed():
		t.Fatalf("service failed: %v", err)
	default:
	}
	b.exec(t, `UPDATE accounts SET created_at = $1`, t0) // someone fixed the data
	b.clock.AdvanceTo(p.NextRun())
	b.clock.WaitWaiters(t, 1)
	runs := b.runs(t)
	if len(runs) != 2 || !strings.Contains(runs[0].Error, "safety limit") || runs[1].Error != "" {
		t.Fatalf("runs %+v, want a failed run then a good one", runs)
	}
}

// Two failed runs in a row make the purger Unhealthy in its host; a run
// that succeeds makes it Healthy again.
func TestTwoFailedRunsMakeThePurgerUnhealthy(t *testing.T) {
	p, b := setup(t, purge.Config{})
	b.ranBefore(t)            // so the tick missed since is caught up at start
	b.addAccounts(t, 150, 10) // trips the safety limit
	h := hosted.New(hosted.Config{})
	h.Add("purge", p, hosted.Options{})
	done := make(chan error, 1)
	go func() { done <- h.Run(context.Background()) }()
	t.Cleanup(func() {
		h.Stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	health := func() (hosted.Health, string) {
		s := h.States()[0]
		return s.Health, s.HealthReason
	}
	b.clock.WaitWaiters(t, 1) // the catch-up run failed
	if got, why := health(); got != hosted.Healthy {
		t.Fatalf("after one failed run: %v %q, want still healthy", got, why)
	}
	b.clock.AdvanceTo(p.NextRun())
	b.clock.WaitWaiters(t, 1)
	if got, why := health(); got != hosted.Unhealthy || why != "the last 2 purge runs failed" {
		t.Fatalf("after two failed runs: %v %q", got, why)
	}
	b.exec(t, `UPDATE accounts SET created_at = $1`, t0) // someone fixed the data
	b.clock.AdvanceTo(p.NextRun())
	b.clock.WaitWaiters(t, 1)
	if got, why := health(); got != hosted.Healthy {
		t.Fatalf("after a good run: %v %q", got, why)
	}
	if runs := b.runs(t); len(runs) != 3 || runs[2].Error != "" {
		t.Fatalf("runs %+v, want two failed then a good one", runs)
	}
}
