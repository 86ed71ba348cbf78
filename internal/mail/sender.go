package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"signup/internal/hosted"
)

// settleTimeout bounds the database write that records an attempt's
// outcome. It is not cut short by Stop: a message that went out is marked
// sent even when Stop is interrupting, or it would be sent twice.
const settleTimeout = 5 * time.Second

// maxErrorText caps the last_error kept in the outbox.
const maxErrorText = 1000

// Sender is the mail sender hosted service: workers (worker.go) take
// outbox ids from the queue, claim the rows, have the domain write the
// emails and deliver them over kept-open SMTP sessions (session.go); the
// policy (policy.go) judges each failure; a sweep (sweep.go) feeds the
// queue with due rows the queue does not carry; the recorder (recorder.go)
// marks sent rows; while the server refuses us the sender is blocked and
// probes it (blocked.go). See the package documentation for the
// guarantees.
type Sender struct {
	cfg        Config
	log        *slog.Logger
	from       *mail.Address
	returnPath string
	msgIDHost  string
	dialer     *dialer
	gate       *gate
	level      atomic.Value // the TLS level of the last session, for the log
	inflight   inflight
	// health reports to the host: Degraded while blocked (nil outside a
	// host, where reporting does nothing).
	health atomic.Pointer[hosted.Reporter]

	mu  sync.Mutex
	run *run // nil while stopped
}

// run is one Start…Stop cycle.
type run struct {
	cancelSweep context.CancelFunc
	cancelWork  context.CancelFunc // interrupts sends in progress
	sweepDone   chan struct{}
	workersDone chan struct{}
	probeDone   chan struct{}
	drain       chan struct{} // closed by Stop: take what is queued, then exit
	kick        chan struct{} // asks for a sweep now (a backlog is draining)
	backlog     atomic.Bool   // the last sweep found more due rows than it took
	cancelLock  context.CancelFunc
	lockDone    chan struct{} // closed once the instance lock is given up
	lockLost    atomic.Bool   // the instance lock is being taken again
	lockEpoch   atomic.Uint64 // counts losses of the instance lock
	rec         *recorder

	wake *waker // kicks a sweep when a retry is due
}

// New checks cfg and fills its defaults. The sender does nothing until
// Start.
func New(cfg Config) (*Sender, error) {
	cfg = cfg.withDefaults()
	from, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	verified := &tls.Config{}
	if cfg.TLSConfig != nil {
		verified = cfg.TLSConfig.Clone()
	}
	if verified.ServerName == "" {
		verified.ServerName = cfg.SMTP.Host
	}
	if verified.MinVersion == 0 {
		verified.MinVersion = tls.VersionTLS12
	}
	// Postfix's "may": encrypt against passive eavesdropping, whatever the
	// certificate (a self-signed "snakeoil" one, most often). Never used
	// with credentials: see dialer.dial.
	unverified := &tls.Config{ServerName: verified.ServerName, MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // opportunistic TLS, as documented
	returnPath := cfg.ReturnPath
	if returnPath == "" {
		returnPath = from.Address
	}
	s := &Sender{
		cfg:        cfg,
		log:        cfg.Logger,
		from:       from,
		returnPath: returnPath,
		msgIDHost:  messageIDHost(domainOf(from.Address)),
		dialer:     &dialer{srv: cfg.SMTP, helo: cfg.HELO, verified: verified, unverified: unverified, timeout: cfg.SendTimeout},
		gate:       newGate(),
		inflight:   inflight{ids: make(map[int64]struct{})},
	}
	s.level.Store("")
	return s, nil
}

// domainOf is the part of address after its last @.
func domainOf(address string) string {
	if i := strings.LastIndexByte(address, '@'); i >= 0 {
		return address[i+1:]
	}
	return ""
}

// noteLevel logs the TLS level a session got: at DEBUG for each, at INFO
// when it differs from the last one.
func (s *Sender) noteLevel(level string) {
	s.log.Debug("mail: smtp session", "smtp", s.cfg.SMTP.String(), "tls", level)
	if old := s.level.Swap(level); old != level {
		s.log.Info("mail: smtp connection security", "smtp", s.cfg.SMTP.String(), "tls", level)
	}
}

// report tells the observer and OnResult of a settled attempt.
func (s *Sender) report(res Result, took time.Duration) {
	if s.cfg.Observer != nil {
		s.cfg.Observer.Attempted(res.Kind, res.Outcome, took)
	}
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(res)
	}
}

// Start takes the instance lock (and fails when the database cannot be
// reached), then launches the workers, the prober and the sweep, which
// runs at once and then every SweepEvery. It returns once they run; ctx only bounds the
// start. A stopped Sender can be started again.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return errors.New("mail sender already running")
	}
	s.health.Store(hosted.ReporterFrom(ctx))
	lock, err := s.lockInstance(ctx)
	if err != nil {
		return fmt.Errorf("start mail sender: %w", err)
	}
	base := context.WithoutCancel(ctx)
	work, cancelWork := context.WithCancel(base)
	sweep, cancelSweep := context.WithCancel(work)
	// The lock outlives the work: Stop gives it up last.
	held, cancelLock := context.WithCancel(base)
	r := &run{
		cancelSweep: cancelSweep,
		cancelWork:  cancelWork,
		sweepDone:   make(chan struct{}),
		workersDone: make(chan struct{}),
		drain:       make(chan struct{}),
		kick:        make(chan struct{}, 1),
		cancelLock:  cancelLock,
		lockDone:    make(chan struct{}),
		probeDone:   make(chan struct{}),
		rec:         newRecorder(s, work, s.cfg.Workers),
	}
	r.wake = newWaker(r.kickSweep)
	go s.holdLock(held, r, lock)
	var workers sync.WaitGroup
	for range s.cfg.Workers {
		workers.Go(func() { s.work(work, r) })
	}
	go func() {
		workers.Wait()
		r.rec.close()
		close(r.workersDone)
	}()
	go s.sweepLoop(sweep, r)
	go s.probeLoop(sweep, r)
	s.run = r
	s.log.Info("mail sender started", "smtp", s.cfg.SMTP.String(), "workers", s.cfg.Workers, "instance", s.cfg.Instance)
	return nil
}

// Stop stops the sweep, lets the workers send what is already queued,
// gives back the rows this instance still holds, so they are pending again
// for the next start or another instance, and then gives up the instance
// lock. ctx is the shutdown budget: a little before its deadline, sends
// still in progress are interrupted so the leases can be given back in
// time. Stop is safe before Start and twice.
func (s *Sender) Stop(ctx context.Context) error {
	s.mu.Lock()
	r := s.run
	s.run = nil
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	defer r.cancelWork()
	defer r.cancelLock() // early returns: the lock goes in the background
	q := s.cfg.Queue
	s.log.Info("mail sender stopping", "queued", q.Len())

	r.cancelSweep()
	r.wake.stop()
	select {
	case <-r.sweepDone:
		<-r.probeDone
	case <-ctx.Done():
		r.cancelWork()
		return fmt.Errorf("stop mail sender: sweep: %w", ctx.Err())
	}
	close(r.drain)

	// Keep a fifth of what is left (at most a second) to give leases back.
	hard := ctx
	if deadline, ok := ctx.Deadline(); ok {
		reserve := min(time.Until(deadline)/5, time.Second)
		var cancel context.CancelFunc
		hard, cancel = context.WithDeadline(ctx, deadline.Add(-reserve))
		defer cancel()
	}
	select {
	case <-r.workersDone:
	case <-hard.Done():
		s.log.Warn("mail sender: shutdown budget running out; interrupting sends", "queued", q.Len())
		r.cancelWork()
		select {
		case <-r.workersDone:
		case <-ctx.Done():
			return fmt.Errorf("stop mail sender: workers still busy: %w", ctx.Err())
		}
	}
	r.cancelWork()

	n, err := s.cfg.Outbox.Release(ctx, s.cfg.Instance, nil, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("stop mail sender: give back leases: %w", err)
	}
	r.cancelLock()
	select {
	case <-r.lockDone:
	case <-ctx.Done():
		return fmt.Errorf("stop mail sender: give up the instance lock: %w", ctx.Err())
	}
	s.log.Info("mail sender stopped", "released", n, "left_in_queue", q.Len())
	return nil
}

// errorText is err as kept in the outbox's last_error.
func errorText(err error) string {
	t := strings.ToValidUTF8(err.Error(), "?")
	if len(t) > maxErrorText {
		// Cut on a rune boundary: PostgreSQL refuses invalid UTF-8.
		t = strings.ToValidUTF8(t[:maxErrorText], "") + "…"
	}
	return t
}

// inflight is the set of ids this process's workers are sending, and the
// swept rows whose id was in flight as a plain job when they came.
type inflight struct {
	mu      sync.Mutex
	ids     map[int64]struct{}
	handoff map[int64]*sweptRow
}

// add marks the jobs' ids as in flight and returns the jobs that were not
// already, in jobs' storage. A swept copy of an id in flight is kept for
// its holder (see take): the holder's claim will not find the row free.
func (f *inflight) add(jobs []Job) []Job {
	f.mu.Lock()
	defer f.mu.Unlock()
	fresh := jobs[:0]
	for _, j := range jobs {
		if _, busy := f.ids[j.ID]; busy {
			if j.swept != nil {
				if f.handoff == nil {
					f.handoff = make(map[int64]*sweptRow)
				}
				f.handoff[j.ID] = j.swept
			}
			continue
		}
		f.ids[j.ID] = struct{}{}
		fresh = append(fresh, j)
	}
	return fresh
}

// take returns the swept row handed over for id, if any.
func (f *inflight) take(id int64) *sweptRow {
	f.mu.Lock()
	defer f.mu.Unlock()
	sw := f.handoff[id]
	delete(f.handoff, id)
	return sw
}

// remove takes ids out of flight and returns the swept rows handed over
// for them meanwhile, which nobody has sent: the caller queues them again.
func (f *inflight) remove(ids []int64) []*sweptRow {
	f.mu.Lock()
	defer f.mu.Unlock()
	var left []*sweptRow
	for _, id := range ids {
		delete(f.ids, id)
		if sw := f.handoff[id]; sw != nil {
			left = append(left, sw)
			delete(f.handoff, id)
		}
	}
	return left
}
