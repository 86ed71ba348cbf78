package mail

import (
	"context"
	"sync"
	"time"

	"signup/internal/store"
)

// maxRecord is the most rows one statement marks sent.
const maxRecord = 1000

// recordAfter is the longest a sent row waits for its mark when no worker
// needs it yet: the last rows of a burst, or of a worker with nothing
// more to send.
const recordAfter = 2 * time.Millisecond

// recordLinger is how long a worker that needs its mark lets the
// statement wait for the other workers' rows, so that one statement serves
// them all.
const recordLinger = 200 * time.Microsecond

// recorder marks sent rows for every worker of the sender, group-committed:
// one statement carries every row handed over since the one before. A
// worker waits for its last row's mark only before the final dot of its
// next message (the end of DATA, which makes the server take it), so a
// process killed at any moment leaves at most one message per worker
// delivered but not marked.
//
// The statement runs when it is needed, not as soon as a row comes: when a
// worker is about to wait for its mark, when every worker has a row
// waiting (none could go further), or recordAfter after the first row.
// Workers that send at the same pace thus share one statement a round,
// rather than one each.
type recorder struct {
	s       *Sender
	workers int
	// stop ends the retries of a mark that fails (a hard stop); the first
	// try is never cut short.
	stop context.Context
	// wake is signalled (without blocking) when a row comes or a worker
	// needs the rows recorded.
	wake chan struct{}
	done chan struct{}

	mu      sync.Mutex
	pending []sentRow
	// neededAt is when a worker first asked for the pending rows to be
	// recorded; zero if none has.
	neededAt time.Time
	closed   bool
}

// sentRow is a row the server accepted; its mark is closed once the row
// is recorded (or failed to be).
type sentRow struct {
	m    store.OutboxMail
	took time.Duration
	at   time.Time // when it was handed over
	mark *mark
}

// mark is what a worker waits for before its next message's final dot.
type mark struct {
	rec *recorder
	// recorded is closed once the row's mark is committed (or failed to
	// be).
	recorded chan struct{}
}

// need asks for the row to be recorded now: the worker is about to wait.
func (k *mark) need() {
	r := k.rec
	r.mu.Lock()
	if r.neededAt.IsZero() {
		r.neededAt = time.Now()
	}
	r.mu.Unlock()
	r.signal()
}

func newRecorder(s *Sender, stop context.Context, workers int) *recorder {
	r := &recorder{s: s, workers: workers, stop: stop, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go r.loop()
	return r
}

// add hands over a row the server accepted and returns its mark.
func (r *recorder) add(m store.OutboxMail, took time.Duration) *mark {
	k := &mark{rec: r, recorded: make(chan struct{})}
	r.mu.Lock()
	r.pending = append(r.pending, sentRow{m: m, took: took, at: time.Now(), mark: k})
	r.mu.Unlock()
	r.signal()
	return k
}

func (r *recorder) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// close records what is left and ends the recorder; nothing may be added
// after.
func (r *recorder) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.signal()
	<-r.done
}

func (r *recorder) loop() {
	defer close(r.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	var rows []sentRow
	for {
		r.mu.Lock()
		n, closed := len(r.pending), r.closed
		var deadline time.Time
		if n > 0 {
			deadline = r.pending[0].at.Add(recordAfter)
			if need := r.neededAt.Add(recordLinger); !r.neededAt.IsZero() && need.Before(deadline) {
				deadline = need
			}
		}
		due := n > 0 && (closed || n >= r.workers || !time.Now().Before(deadline))
		if due {
			rows, r.pending = r.pending, rows[:0]
			if len(rows) > maxRecord {
				rows, r.pending = rows[:maxRecord], append(r.pending, rows[maxRecord:]...)
			}
			r.neededAt = time.Time{}
		}
		r.mu.Unlock()
		switch {
		case due:
			r.record(rows)
			for _, row := range rows {
				close(row.mark.recorded)
			}
			clear(rows)
			continue
		case closed:
			return
		case n > 0:
			t.Reset(time.Until(deadline))
		}
		select {
		case <-r.wake:
		case <-t.C:
		}
	}
}

// record marks rows sent in one statement. Like every outcome, it is not
// cut short by Stop: a message that went out is marked sent, or it would be
// sent twice. When the database does not answer, it tries again (the
// workers wait for it before their next DATA) for as long as the rows'
// lease lasts, or until a hard stop.
func (r *recorder) record(rows []sentRow) {
	s := r.s
	ids := make([]int64, len(rows))
	for i, row := range rows {
		ids[i] = row.m.ID
	}
	var (
		settled []int64
		err     error
	)
	give := time.Now().Add(s.cfg.Lease)
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		settled, err = s.cfg.Outbox.MarkSent(ctx, ids, s.cfg.Instance, s.cfg.Now())
		cancel()
		if err == nil || time.Now().After(give) || r.stop.Err() != nil {
			break
		}
		wait := retryDelay(try, 100*time.Millisecond, 2*time.Second)
		s.log.Warn("mail: record sent rows; trying again", "rows", len(ids), "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.stop.Done():
			t.Stop()
		}
	}
	// A swept copy handed over for a row just sent is dropped: the row is
	// settled.
	s.inflight.remove(ids)
	ours := make(map[int64]bool, len(settled))
	for _, id := range settled {
		ours[id] = true
	}
	for _, row := range rows {
		m := row.m
		log := s.log.With("outbox_id", m.ID, "kind", string(m.Kind), "account_id", m.AccountID,
			"attempt", m.Attempts, "duration", row.took)
		log.Info("mail sent")
		switch {
		case err != nil:
			log.Error("mail: record outcome", "outcome", OutcomeSent, "err", err)
		case !ours[m.ID]:
			log.Warn("mail: lease lost before the outcome was recorded; another instance may send it too", "outcome", OutcomeSent)
		}
		s.report(Result{ID: m.ID, Kind: m.Kind, Attempt: m.Attempts, Outcome: OutcomeSent}, row.took)
	}
}
