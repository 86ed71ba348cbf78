package mail_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"signup/internal/devmail"
	appmail "signup/internal/mail"
	"signup/internal/store"
	"signup/internal/store/storetest"
)

// A row leased by an instance whose lock nobody holds (it died) is taken at
// the first sweep, however far its lease_until. A row leased by a live
// instance is left alone until its lease_until passes (alive but stuck).
func TestDeadInstanceRowsAreTakenAtOnce(t *testing.T) {
	var skew atomic.Int64 // the sender's clock runs this far ahead
	s, b := setup(t, devmail.Config{}, func(c *appmail.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	far := time.Now().Add(time.Hour)
	ghost := signup(t, b.db, "ghost@example.test")
	b.leaseTo(t, ghost, "ghost-1", far)
	storetest.LockInstance(t, b.db, "stuck-1")
	stuck := signup(t, b.db, "stuck@example.test")
	b.leaseTo(t, stuck, "stuck-1", far)
	start(t, s)

	b.results.wait(t, "the ghost's row sent", func(r []appmail.Result) bool { return count(r, ghost, appmail.OutcomeSent) == 1 })
	if r := b.row(t, ghost); r.Status != "sent" || r.Attempts != 2 {
		t.Errorf("ghost's row = %+v, want sent on attempt 2", r)
	}
	// The sweep that took the ghost's row saw this one too, and left it.
	if r := b.row(t, stuck); r.Status != "sending" || *r.LeasedBy != "stuck-1" || r.Attempts != 1 {
		t.Errorf("live instance's row = %+v, want untouched", r)
	}

	// Past its lease, a live but stuck instance's row is taken too.
	skew.Store(int64(2 * time.Hour))
	b.results.wait(t, "the stuck instance's row sent", func(r []appmail.Result) bool { return count(r, stuck, appmail.OutcomeSent) == 1 })
	if r := b.row(t, stuck); r.Status != "sent" || r.Attempts != 2 {
		t.Errorf("stuck instance's row = %+v, want sent on attempt 2", r)
	}
	if n := len(b.smtp.MessagesTo("stuck@example.test")); n != 1 {
		t.Errorf("%d messages for the stuck instance's row, want 1", n)
	}
}

// When another instance dies (its session ends), its rows are sent at the
// next sweep, long before their lease runs out.
func TestKilledInstanceRowsAreTakenAtOnce(t *testing.T) {
	s, b := setup(t, devmail.Config{}, nil)
	other := storetest.LockInstance(t, b.db, "other-1")
	theirs := signup(t, b.db, "theirs@example.test")
	b.leaseTo(t, theirs, "other-1", time.Now().Add(time.Hour))
	missed := signup(t, b.db, "missed@example.test")
	start(t, s)
	// The sweep that found the missed row left the live instance's.
	b.results.wait(t, "the missed row sent", func(r []appmail.Result) bool { return count(r, missed, appmail.OutcomeSent) == 1 })
	if r := b.row(t, theirs); r.Status != "sending" || *r.LeasedBy != "other-1" {
		t.Fatalf("live instance's row = %+v, want untouched", r)
	}

	killed := time.Now()
	if _, err := b.db.Pool().Exec(t.Context(), `SELECT pg_terminate_backend($1)`, other.PID()); err != nil {
		t.Fatal(err)
	}
	b.results.wait(t, "the killed instance's row sent", func(r []appmail.Result) bool { return count(r, theirs, appmail.OutcomeSent) == 1 })
	t.Logf("killed instance's row sent %v after its session ended (lease: %v)", time.Since(killed).Round(time.Millisecond), time.Hour)
	if r := b.row(t, theirs); r.Status != "sent" || r.Attempts != 2 {
		t.Errorf("killed instance's row = %+v, want sent on attempt 2", r)
	}
}

// When the lock's session is killed, the sender takes the lock again on a
// new connection and goes on sending; its leases are respected again.
func TestInstanceLockIsTakenAgain(t *testing.T) {
	s, b := setup(t, devmail.Config{}, nil)
	start(t, s)
	holders := b.lockHolders(t, b.cfg.Instance)
	if len(holders) != 1 {
		t.Fatalf("%d sessions hold the instance lock, want 1", len(holders))
	}
	var app string
	if err := b.db.Pool().QueryRow(t.Context(), `SELECT application_name FROM pg_stat_activity WHERE pid = $1`, holders[0]).Scan(&app); err != nil || app != "signup-mail "+b.cfg.Instance {
		t.Errorf("application_name of the lock's session = %q, %v", app, err)
	}

	if _, err := b.db.Pool().Exec(t.Context(), `SELECT pg_terminate_backend($1)`, holders[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the lock taken again by a new session", func() bool {
		h := b.lockHolders(t, b.cfg.Instance)
		return len(h) == 1 && h[0] != holders[0]
	})

	// Alive again: another instance cannot take a row this one holds.
	ours := signup(t, b.db, "ours@example.test")
	b.leaseTo(t, ours, b.cfg.Instance, time.Now().Add(time.Hour))
	now := time.Now()
	if ms, err := b.db.Outbox().ClaimBatch(t.Context(), []int64{ours}, "other-1", now, now.Add(time.Minute), false); len(ms) != 0 || err != nil {
		t.Errorf("another instance claimed our row = %v, %v", ms, err)
	}
	// And the sender works.
	sent := signup(t, b.db, "after@example.test")
	b.queue.TryEnqueue(appmail.NewJob(sent))
	b.results.wait(t, "sent after the lock came back", func(r []appmail.Result) bool { return count(r, sent, appmail.OutcomeSent) == 1 })
}

// A process that starts under the id of a dead one (a pid reused after a
// container restart) takes the rows it left at once, unless a live session
// shares the id.
func TestRowsOfAnEarlierProcessWithTheSameID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shared bool // another live session holds the instance lock
		want   string
	}{
		{"dead earlier process", false, "sent"},
		{"live process with the same id", true, "sending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := setup(t, devmail.Config{}, nil)
			if tc.shared {
				storetest.LockInstance(t, b.db, b.cfg.Instance)
			}
			id := signup(t, b.db, "earlier@example.test")
			b.leaseTo(t, id, b.cfg.Instance, time.Now().Add(time.Hour))
			start(t, s)
			if tc.shared {
				if r := b.row(t, id); r.Status != tc.want {
					t.Errorf("row = %+v, want %s", r, tc.want)
				}
				return
			}
			b.results.wait(t, "sent", func(r []appmail.Result) bool { return count(r, id, appmail.OutcomeSent) == 1 })
		})
	}
}

func TestStartFailsWithoutDatabase(t *testing.T) {
	down, err := store.New("postgres://postgres@127.0.0.1:1/none?sslmode=disable", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	s, _ := setup(t, devmail.Config{}, func(c *appmail.Config) { c.Outbox = down.Outbox() })
	err = s.Start(testContext(t))
	if err == nil || !strings.Contains(err.Error(), "instance lock") {
		t.Fatalf("start with the database down = %v, want an instance lock error", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("stop after a failed start: %v", err)
	}
}
