package purge_test

import (
	"context"
	"sync"
	"testing"

	"signup/internal/purge"
)

// TestPurgeRestsOnlyWhileOthersWork: alone on its database, the purge goes
// from batch to batch without a rest; while another client runs
// statements, it rests after its batches.
func TestPurgeRestsOnlyWhileOthersWork(t *testing.T) {
	p, b := setup(t, purge.Config{BatchSize: 2})
	old := t0.Add(-unconfirmedRetention - day)
	const n = 10
	for range n {
		b.addAccount(t, account{created: old})
	}
	rep, err := p.RunOnce(t.Context(), purge.Options{Force: true})
	if err != nil || rep.Counts.Unconfirmed != n {
		t.Fatalf("alone: %+v, %v; want %d deleted", rep.Counts, err, n)
	}
	if rep.Rested != 0 {
		t.Errorf("alone on the database, the purge rested %v, want never", rep.Rested)
	}

	for range n {
		b.addAccount(t, account{created: old})
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			b.db.Pool().Exec(ctx, `SELECT 1`) //nolint:errcheck // ends with ctx
		}
	})
	rep, err = p.RunOnce(t.Context(), purge.Options{Force: true})
	cancel()
	wg.Wait()
	if err != nil || rep.Counts.Unconfirmed != n {
		t.Fatalf("beside another client: %+v, %v; want %d deleted", rep.Counts, err, n)
	}
	if rep.Rested == 0 {
		t.Errorf("beside a client running statements, the purge never rested")
	}
}
