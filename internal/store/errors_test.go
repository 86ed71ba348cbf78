package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"signup/internal/store"
	"signup/internal/store/storetest"
)

// TestConnectionLostMidQueryIsUnavailable: when the connection to the
// database breaks during a transaction with no word from the server (a
// crash, a network cut), the error is ErrUnavailable — the site answers
// 503, try again — not an unknown failure.
func TestConnectionLostMidQueryIsUnavailable(t *testing.T) {
	t.Parallel()
	_, proxied, proxy := storetest.URLBehindProxy(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, proxied, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)

	for _, tc := range []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"signup", func(ctx context.Context) error {
			_, err := db.Accounts().Signup(ctx, "cut@example.com", "hash", at0, storetest.NoLimit("cut@example.com"), storetest.NoLimit("cut@example.com"))
			return err
		}},
		{"ping", db.Ping},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := db.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			proxy.SetLatency(200 * time.Millisecond)
			defer proxy.SetLatency(0)
			errc := make(chan error, 1)
			go func() { errc <- tc.op(ctx) }()
			// The pool's connection is open (the ping); cut it 50 ms into
			// the 200 ms the latency holds the request on the wire.
			timer := time.NewTimer(50 * time.Millisecond)
			<-timer.C
			proxy.Cut()
			err := <-errc
			if !errors.Is(err, store.ErrUnavailable) {
				t.Fatalf("connection cut mid-query: %v; want store.ErrUnavailable", err)
			}
		})
	}
}
