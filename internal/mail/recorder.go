package mail

import (
	"context"
	"time"

	"signup/internal/store"
)

// maxRecord is the most rows one statement marks sent.
const maxRecord = 1000

// recorder marks sent rows for every worker of the sender, group-committed:
// one statement at a time, carrying every row handed over while the one
// before ran. A worker waits for its last row's mark only before the final
// dot of its next message (the end of DATA, which makes the server take
// it), so a process killed at any moment leaves at most one message per
// worker delivered but not marked.
type recorder struct {
	s *Sender
	// stop ends the retries of a mark that fails (a hard stop); the first
	// try is never cut short.
	stop context.Context
	in   chan sentRow
	done chan struct{}
}

// sentRow is a row the server accepted; recorded is closed once its mark
// is committed (or failed to be).
type sentRow struct {
	m        store.OutboxMail
	took     time.Duration
	recorded chan struct{}
}

func newRecorder(s *Sender, stop context.Context, capacity int) *recorder {
	r := &recorder{s: s, stop: stop, in: make(chan sentRow, capacity), done: make(chan struct{})}
	go r.loop()
	return r
}

// add hands over a row the server accepted and returns a channel closed
// once it is recorded.
func (r *recorder) add(m store.OutboxMail, took time.Duration) <-chan struct{} {
	row := sentRow{m: m, took: took, recorded: make(chan struct{})}
	r.in <- row
	return row.recorded
}

// close records what is left and ends the recorder; nothing may be added
// after.
func (r *recorder) close() {
	close(r.in)
	<-r.done
}

func (r *recorder) loop() {
	defer close(r.done)
	rows := make([]sentRow, 0, 64)
	for row := range r.in {
		rows = append(rows[:0], row)
	more:
		for len(rows) < maxRecord {
			select {
			case row, ok := <-r.in:
				if !ok {
					break more
				}
				rows = append(rows, row)
			default:
				break more
			}
		}
		r.record(rows)
		for _, row := range rows {
			close(row.recorded)
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
