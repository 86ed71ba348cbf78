package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/hosted"
)

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// buildFromEnv wires the application as `web serve` does from the
// environment e, logging as JSON to w (nil: nowhere).
func buildFromEnv(t *testing.T, e map[string]string, w io.Writer) *app {
	t.Helper()
	cfg, _, err := loadConfig(newFlagSet(), nil, env(e), needs{smtp: true}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h := slog.DiscardHandler
	if w != nil {
		h = slog.NewJSONHandler(w, nil)
	}
	a, err := build(cfg, slog.New(h))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestBackgroundFailureStopsTheApp: a background service that fails stops
// the whole wired application, which exits non-zero and logs why.
func TestBackgroundFailureStopsTheApp(t *testing.T) {
	e := baseEnv(t)
	e["HTTP_ADDR"] = "127.0.0.1:0"
	e["OPS_ADDR"] = ""
	var logs syncBuffer
	a := buildFromEnv(t, e, &logs)
	fail := make(chan struct{})
	a.host.Add("crasher", hosted.Background(func(ctx context.Context) error {
		select {
		case <-fail:
			return errors.New("disk on fire")
		case <-ctx.Done():
			return nil
		}
	}), hosted.Options{})
	go func() {
		<-a.host.Started()
		close(fail)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.host.Run(ctx)
	var out bytes.Buffer
	if code := exitCode(err, &out); code != 1 {
		t.Fatalf("exit code %d, want 1 (err %v)", code, err)
	}
	if !strings.Contains(out.String(), "crasher") || !strings.Contains(out.String(), "disk on fire") {
		t.Errorf("exit message does not say why: %q", out.String())
	}
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("the failure was not logged:\n%s", logs.String())
	}
	if ctx.Err() != nil {
		t.Error("the host did not stop on the failure")
	}
}

// MAIL_ON_FAILURE and PURGE_ON_FAILURE reach the host: the README promised
// restarts "if so configured" while nothing configured them.
func TestFailurePoliciesAreWired(t *testing.T) {
	e := baseEnv(t)
	e["OPS_ADDR"] = ""
	e["MAIL_ON_FAILURE"] = "restart"
	e["PURGE_ON_FAILURE"] = "ignore"
	a := buildFromEnv(t, e, nil)
	defer a.db.Close()
	got := map[string]hosted.Policy{}
	for _, s := range a.host.States() {
		got[s.Name] = s.Policy
	}
	if got["mail"] != hosted.Restart || got["purge"] != hosted.Ignore || got["http"] != hosted.StopHost {
		t.Fatalf("policies %v, want mail restart, purge ignore, http stop-host", got)
	}
}
