package hosted

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// patience bounds every wait in the tests; reaching it means a test
// failed. Generous, for a loaded machine: a wait whose condition holds
// returns at once.
const patience = 30 * time.Second

var errBoom = errors.New("boom")

// bundle is a host under test with what it talks to.
type bundle struct {
	host *Host
	j    *journal
	logs *logSink
}

// setup returns a host configured by cfg, logging into a sink.
func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	logs := &logSink{changed: make(chan struct{})}
	cfg.Logger = slog.New(logs)
	return &bundle{host: New(cfg), j: newJournal(), logs: logs}
}

// add adds a fake service, changed by mods, and returns it.
func (b *bundle) add(name string, opts Options, mods ...func(*fake)) *fake {
	f := &fake{name: name, j: b.j}
	for _, m := range mods {
		m(f)
	}
	b.host.Add(name, f, opts)
	return f
}

// run runs the host in a goroutine and returns Run's result. Cleanup stops
// the host and waits for Run, so no test leaves it running.
func (b *bundle) run(t *testing.T, ctx context.Context) <-chan error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- b.host.Run(ctx) }()
	t.Cleanup(func() {
		b.host.Stop()
		waitClosed(t, b.host.Stopped(), "host stopped")
	})
	return errc
}

// state returns the state of the named service.
func (b *bundle) state(t *testing.T, name string) State {
	t.Helper()
	for _, s := range b.host.States() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %q", name)
	return State{}
}

// wait returns the error from errc, failing the test if none comes in time.
func wait(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(patience):
		t.Fatal("Run did not return")
		return nil
	}
}

// waitClosed fails the test if ch is not closed in time.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(patience):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// journal records calls in order and signals every addition.
type journal struct {
	mu      sync.Mutex
	entries []string
	changed chan struct{} // closed and replaced on every addition
}

func newJournal() *journal { return &journal{changed: make(chan struct{})} }

func (j *journal) add(entry string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, entry)
	close(j.changed)
	j.changed = make(chan struct{})
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// wait waits until entry has been recorded.
func (j *journal) wait(t *testing.T, entry string) {
	t.Helper()
	deadline := time.After(patience)
	for {
		j.mu.Lock()
		found, changed := slices.Contains(j.entries, entry), j.changed
		j.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %q; journal: %q", entry, j.all())
		}
	}
}

// fake is a Service that records its calls and can fail, hang or panic.
type fake struct {
	name                  string
	j                     *journal
	startErr, stopErr     error
	startPanic, stopPanic any
	// startGate and stopGate, when set, make Start and Stop wait until they
	// are closed, ignoring their context like a badly written service.
	startGate, stopGate chan struct{}
}

func (f *fake) Start(context.Context) error {
	f.j.add("start " + f.name)
	if f.startGate != nil {
		<-f.startGate
		f.j.add("start returned " + f.name)
	}
	if f.startPanic != nil {
		panic(f.startPanic)
	}
	return f.startErr
}

func (f *fake) Stop(context.Context) error {
	f.j.add("stop " + f.name)
	if f.stopGate != nil {
		<-f.stopGate
		f.j.add("stop returned " + f.name)
	}
	if f.stopPanic != nil {
		panic(f.stopPanic)
	}
	return f.stopErr
}

// logRecord is one logged event.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]slog.Value
}

// logSink is a slog.Handler that keeps records and signals every addition.
type logSink struct {
	mu      sync.Mutex
	records []logRecord
	changed chan struct{}
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]slog.Value{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value
		return true
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, rec)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }

func (s *logSink) WithGroup(string) slog.Handler { return s }

// find returns the records with message msg about service.
func (s *logSink) find(msg, service string) []logRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []logRecord
	for _, r := range s.records {
		if r.msg == msg && r.attrs["service"].String() == service {
			found = append(found, r)
		}
	}
	return found
}

// wait waits until n records with message msg about service were logged.
func (s *logSink) wait(t *testing.T, msg, service string, n int) []logRecord {
	t.Helper()
	deadline := time.After(patience)
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if found := s.find(msg, service); len(found) >= n {
			return found
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %d %q logs about %q", n, msg, service)
		}
	}
}
