package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"signup/internal/account"
	"signup/internal/store"
)

// worker is what one sending goroutine keeps between messages.
type worker struct {
	// sess is the open SMTP session, nil until the next message dials.
	sess *session
	// last is the mark of the last message this worker sent; the end of
	// the next message's DATA waits for it (see recorder).
	last *mark
	// rejections spots one 5xx reply given to every recipient.
	rejections rejections
}

// work is one worker: it takes jobs from the queue until the work context
// ends or, once Stop asked to drain, the queue is empty, and waits while
// the sender is blocked. It takes what is queued in batches (see
// takeBatch), so that claiming and storing tokens cost one statement per
// batch rather than per email.
func (s *Sender) work(ctx context.Context, r *run) {
	w := &worker{}
	defer func() {
		if w.sess == nil {
			return
		}
		if ctx.Err() != nil {
			w.sess.close()
		} else {
			w.sess.quit()
		}
	}()
	ch := s.cfg.Queue.C()
	batch := make([]Job, 0, s.cfg.Batch)
	for {
		open, _ := s.gate.opened()
		select {
		case <-open:
		default:
			if w.sess != nil {
				w.sess.quit()
				w.sess = nil
			}
			select {
			case <-open:
			case <-ctx.Done():
				return
			case <-r.drain:
				// Stopping while blocked: Stop gives the queued rows back.
				return
			}
		}
		var (
			job Job
			ok  bool
		)
		select {
		case <-ctx.Done():
			return
		case job, ok = <-ch:
		case <-r.drain:
			select {
			case job, ok = <-ch:
			default:
				return
			}
		}
		if !ok || ctx.Err() != nil {
			return
		}
		s.dequeued(job)
		batch, ok = s.takeBatch(append(batch[:0], job), ch)
		if retryIn, retry := s.deliver(ctx, r, w, batch); retry {
			r.wake.add(retryIn)
		}
		s.maybeKick(r)
		if !ok {
			return // the queue is closed and empty
		}
	}
}

func (s *Sender) dequeued(job Job) {
	if s.cfg.Observer != nil && !job.Queued.IsZero() {
		s.cfg.Observer.Dequeued(time.Since(job.Queued))
	}
}

// takeBatch adds to batch, without waiting, jobs already queued: at most
// Batch in all, and no more than a fair share of the queue, so that a short
// queue is spread over the workers rather than sent one by one by the
// first. ok is false once the queue is closed.
func (s *Sender) takeBatch(batch []Job, ch <-chan Job) ([]Job, bool) {
	want := min(s.cfg.Batch, 1+s.cfg.Queue.Len()/s.cfg.Workers)
	for len(batch) < want {
		select {
		case job, ok := <-ch:
			if !ok {
				return batch, false
			}
			s.dequeued(job)
			batch = append(batch, job)
		default:
			return batch, true
		}
	}
	return batch, true
}

// deliver takes the rows of jobs (claiming those the sweep did not take
// already), has the domain write them, and makes one attempt at sending
// each. When an attempt is to be retried, it says in how long the first
// retry is due.
func (s *Sender) deliver(ctx context.Context, r *run, w *worker, jobs []Job) (retryIn time.Duration, retry bool) {
	// The same id can be queued twice (by the signup and by a sweep): the
	// copy is skipped here, and finds the row settled afterwards.
	jobs = s.inflight.add(jobs)
	if len(jobs) == 0 {
		return 0, false
	}
	// A row handed to the recorder stays in flight until its mark is
	// committed (the recorder takes it out): until then the claim would
	// still find it leased to us.
	handed := make(map[int64]bool)
	defer func() {
		ids := make([]int64, 0, len(jobs))
		for _, j := range jobs {
			if !handed[j.ID] {
				ids = append(ids, j.ID)
			}
		}
		for _, sw := range s.inflight.remove(ids) {
			// Its lease runs out otherwise, and the sweep takes it then.
			s.cfg.Queue.TryEnqueue(Job{ID: sw.m.ID, Queued: time.Now(), swept: sw})
		}
	}()

	now := s.cfg.Now()
	leaseUntil := now.Add(s.cfg.Lease)
	var (
		ms          []store.OutboxMail
		claim, mine []int64
	)
	epoch := r.lockEpoch.Load()
	for _, j := range jobs {
		switch {
		case j.swept == nil:
			claim = append(claim, j.ID)
		case j.swept.lockEpoch != epoch, j.swept.leaseUntil.Before(now.Add(s.cfg.SendTimeout)):
			// Taken before the instance lock was lost, or waited in the
			// queue for most of its lease: another instance may have taken
			// it meanwhile. Claimed again, it is ours only if it still is.
			mine = append(mine, j.ID)
		default:
			ms = append(ms, j.swept.m)
			if j.swept.leaseUntil.Before(leaseUntil) {
				leaseUntil = j.swept.leaseUntil
			}
		}
	}
	for _, c := range []struct {
		ids []int64
		own bool
	}{{claim, false}, {mine, true}} {
		if len(c.ids) == 0 {
			continue
		}
		got, err := s.cfg.Outbox.ClaimBatch(ctx, c.ids, s.cfg.Instance, now, now.Add(s.cfg.Lease), c.own)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("mail: claim failed; the sweep will find the rows again", "outbox_ids", c.ids, "err", err)
			}
			continue
		}
		ms = append(ms, got...)
		if len(got) == len(c.ids) {
			continue
		}
		// A row the sweep leased for us while its id was here as a plain
		// job: the swept copy was handed over.
		claimed := make(map[int64]bool, len(got))
		for _, m := range got {
			claimed[m.ID] = true
		}
		for _, id := range c.ids {
			if sw := s.inflight.take(id); sw != nil && !claimed[id] {
				ms = append(ms, sw.m)
				if sw.leaseUntil.Before(leaseUntil) {
					leaseUntil = sw.leaseUntil
				}
			}
		}
	}
	if len(ms) == 0 {
		return 0, false
	}

	letters := make([]account.Letter, 0, len(ms))
	for _, m := range ms {
		if !m.Suppressed && !expired(m.CreatedAt, now, s.cfg.MaxAge) {
			letters = append(letters, account.Letter{
				OutboxID: m.ID, Kind: m.Kind, AccountID: m.AccountID, To: m.Email,
				WarnedAt: m.WarnedAt, PasswordHash: m.PasswordHash,
			})
		}
	}
	composed, err := s.cfg.Composer.Compose(ctx, letters)
	if err != nil {
		// The tokens could not be stored: the database's trouble, not the
		// messages'. The rows are still ours: they go back to the queue
		// after a pause, as the database may be restarting.
		if ctx.Err() == nil {
			s.log.Warn("mail: compose failed; trying again shortly", "rows", len(ms), "err", err)
		}
		s.retryLater(ctx, ms, leaseUntil, epoch)
		return 0, false
	}
	emails := make(map[int64]account.Composed, len(composed))
	for _, c := range composed {
		emails[c.Letter.OutboxID] = c
	}

	for i, m := range ms {
		if open, _ := s.gate.opened(); !isClosed(open) {
			// Another worker found the server refusing us.
			s.requeue(ctx, ms[i:], "")
			return retryIn, retry
		}
		if leaseUntil.Sub(s.cfg.Now()) < s.cfg.Lease-s.cfg.SendTimeout/2 {
			// Slow sends have used half a SendTimeout of the lease: renew
			// the rest's leases (sent rows are recorded as they go).
			leaseUntil = s.extend(ctx, ms[i:])
		}
		start := time.Now()
		var v verdict
		c, written := emails[m.ID]
		switch {
		case expired(m.CreatedAt, now, s.cfg.MaxAge):
			err, v = fmt.Errorf("undelivered after %v; last error: %s", s.cfg.MaxAge, m.LastError), fail
		case m.Suppressed:
			s.suppressed(ctx, m)
			continue
		case !written:
			err, v = errors.New("compose: no email written"), fail
		case c.Err != nil:
			err, v = c.Err, fail
		default:
			err = s.attempt(ctx, w, m, c.Email, s.nextRecipient(ms[i+1:], emails, now))
			if err == nil {
				w.rejections.add(m.Email, "")
				handed[m.ID] = true
				w.last = r.rec.add(m, time.Since(start))
				continue
			}
			v = s.judge(w, m, err)
		}
		took := time.Since(start)
		switch {
		case ctx.Err() != nil && v != fail:
			// Stop cut it short; Stop gives the row back.
			s.log.Info("mail interrupted by shutdown", "outbox_id", m.ID, "err", err)
			s.report(Result{ID: m.ID, Kind: m.Kind, Attempt: m.Attempts, Outcome: OutcomeInterrupted, Err: err}, took)
			return retryIn, retry
		case v == blocked:
			var re *replyError
			if !errors.As(err, &re) {
				re = failedAt(stageConnect, err)
			}
			s.requeue(ctx, ms[i:], re.Error())
			s.block(re, m.Email)
			s.report(Result{ID: m.ID, Kind: m.Kind, Attempt: m.Attempts, Outcome: OutcomeBlocked, Err: err}, took)
			return retryIn, retry
		}
		if in, ok := s.settle(ctx, m, v, err, took); ok && (!retry || in < retryIn) {
			retryIn, retry = in, true
		}
	}
	return retryIn, retry
}

// composeRetry is the pause before rows whose emails could not be written
// are queued again.
const composeRetry = time.Second

// retryLater queues rows ms, which this instance holds until leaseUntil,
// again after composeRetry; what the queue has no room for is given back
// to the outbox.
func (s *Sender) retryLater(ctx context.Context, ms []store.OutboxMail, leaseUntil time.Time, epoch uint64) {
	t := time.NewTimer(composeRetry)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return // Stop gives the rows back
	case <-t.C:
	}
	var back []store.OutboxMail
	for _, m := range ms {
		if !s.cfg.Queue.TryEnqueue(Job{ID: m.ID, Queued: time.Now(), swept: &sweptRow{m: m, leaseUntil: leaseUntil, lockEpoch: epoch}}) {
			back = append(back, m)
		}
	}
	s.requeue(ctx, back, "")
}

// isClosed reports whether ch is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// judge is the policy's verdict on a failed attempt at m, with the
// worker's memory of identical rejections.
func (s *Sender) judge(w *worker, m store.OutboxMail, err error) verdict {
	var pe *permanentError
	if errors.As(err, &pe) {
		return fail
	}
	var re *replyError
	if !errors.As(err, &re) {
		return blocked
	}
	v := judge(re.stage, re.code, re.text)
	if re.stage == stageRcpt && re.code >= 500 {
		if w.rejections.add(m.Email, re.reply()) {
			return blocked
		}
	} else {
		w.rejections.add(m.Email, "")
	}
	return v
}

// attempt builds m's message and sends it over the worker's session,
// dialling one when there is none. A reused session the server closed
// meanwhile (RSET or MAIL FROM find it gone) is replaced once,
// transparently: nothing of the message was sent.
func (s *Sender) attempt(ctx context.Context, w *worker, m store.OutboxMail, email account.Email, next string) error {
	msg, err := buildMessage(envelope{from: s.from, to: m.Email, date: s.cfg.Now(), messageID: messageID(m, s.msgIDHost)}, email)
	if err != nil {
		return &permanentError{err}
	}
	for try := 0; ; try++ {
		if w.sess == nil {
			sess, err := s.dialer.dial(ctx)
			if err != nil {
				return err
			}
			s.noteLevel(sess.level)
			w.sess = sess
		}
		reused := w.sess.used
		err := w.sess.send(ctx, s.returnPath, m.Email, msg, w.last, next)
		if w.sess.broken {
			w.sess.close()
			w.sess = nil
		}
		var re *replyError
		if err != nil && reused && try == 0 && ctx.Err() == nil && errors.As(err, &re) &&
			re.stage == stageMail && (re.code == 0 || re.code == 421) {
			if w.sess != nil {
				w.sess.close()
				w.sess = nil
			}
			continue
		}
		return err
	}
}

// nextRecipient is the recipient of rest[0] when it is the next message
// to be sent, as deliver's loop will find it: written, neither expired nor
// suppressed, to an address a message can be built for. Its envelope may
// then go ahead with the end of the message before it; "" otherwise.
func (s *Sender) nextRecipient(rest []store.OutboxMail, emails map[int64]account.Composed, now time.Time) string {
	if len(rest) == 0 {
		return ""
	}
	m := rest[0]
	if c, ok := emails[m.ID]; !ok || c.Err != nil || m.Suppressed || expired(m.CreatedAt, now, s.cfg.MaxAge) {
		return ""
	}
	if _, err := bareAddress(m.Email); err != nil {
		return ""
	}
	return m.Email
}

// extend renews the lease of the rows ms for another Lease, and returns
// when it now ends. A row whose lease could not be renewed is still sent:
// its outcome is recorded only if the lease is still ours then.
func (s *Sender) extend(ctx context.Context, ms []store.OutboxMail) time.Time {
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	until := s.cfg.Now().Add(s.cfg.Lease)
	n, err := s.cfg.Outbox.ExtendLease(ctx, ids, s.cfg.Instance, until)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("mail: extend leases", "rows", len(ids), "err", err)
	case err == nil && n < int64(len(ids)):
		s.log.Warn("mail: leases lost before sending; another instance may send them too", "rows", int64(len(ids))-n)
	}
	return until
}

// requeue gives rows ms back, pending and due now, with no attempt spent.
func (s *Sender) requeue(ctx context.Context, ms []store.OutboxMail, lastErr string) {
	dbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	ids := make([]int64, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	if _, err := s.cfg.Outbox.Requeue(dbCtx, ids, s.cfg.Instance, s.cfg.Now(), lastErr); err != nil {
		s.log.Error("mail: give rows back; they are sent once their lease ends", "rows", len(ids), "err", err)
	}
}

// suppressed settles m, whose recipient is on the suppression list,
// without sending it.
func (s *Sender) suppressed(ctx context.Context, m store.OutboxMail) {
	dbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	log := s.log.With("outbox_id", m.ID, "kind", string(m.Kind), "account_id", m.AccountID)
	ours, err := s.cfg.Outbox.MarkSuppressed(dbCtx, m.ID, s.cfg.Instance)
	s.logRecord(log, OutcomeSuppressed, ours, err)
	log.Info("mail not sent: the address is suppressed")
	s.report(Result{ID: m.ID, Kind: m.Kind, Attempt: m.Attempts, Outcome: OutcomeSuppressed}, 0)
}

// settle records the outcome v of a failed attempt on row m, and when the
// row is to be retried, says in how long; sent rows go through the
// recorder, blocked ones back to the queue.
func (s *Sender) settle(ctx context.Context, m store.OutboxMail, v verdict, err error, took time.Duration) (retryIn time.Duration, isRetry bool) {
	dbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	res := Result{ID: m.ID, Kind: m.Kind, Attempt: m.Attempts, Err: err}
	log := s.log.With("outbox_id", m.ID, "kind", string(m.Kind), "account_id", m.AccountID,
		"attempt", m.Attempts, "duration", took)
	var (
		ours  bool
		dbErr error
	)
	switch v {
	case failSuppress:
		res.Outcome = OutcomeFailed
		ours, dbErr = s.cfg.Outbox.FailAndSuppress(dbCtx, m.ID, s.cfg.Instance, m.Email, errorText(err), s.cfg.Now())
		log.Error("mail failed: recipient rejected; the address is suppressed", "err", err)
		if dbErr == nil && ours && s.cfg.Observer != nil {
			s.cfg.Observer.Suppressed()
		}
	case retry:
		res.Outcome = OutcomeRetry
		wait := retryDelay(m.Attempts, s.cfg.RetryMin, s.cfg.RetryMax)
		ours, dbErr = s.cfg.Outbox.Retry(dbCtx, m.ID, s.cfg.Instance, s.cfg.Now().Add(wait), errorText(err))
		retryIn, isRetry = wait, dbErr == nil && ours
		log.Warn("mail retry", "retry_in", wait, "err", err)
	default:
		res.Outcome = OutcomeFailed
		ours, dbErr = s.cfg.Outbox.MarkFailed(dbCtx, m.ID, s.cfg.Instance, errorText(err))
		log.Error("mail failed", "err", err)
	}
	s.logRecord(log, res.Outcome, ours, dbErr)
	s.report(res, took)
	return retryIn, isRetry
}

// logRecord says when recording an outcome went wrong.
func (s *Sender) logRecord(log *slog.Logger, outcome Outcome, ours bool, err error) {
	switch {
	case err != nil:
		log.Error("mail: record outcome", "outcome", outcome, "err", err)
	case !ours:
		log.Warn("mail: lease lost before the outcome was recorded; another instance may send it too", "outcome", outcome)
	}
}

// permanentError marks a failure of the message itself that no retry can
// fix: one we refused to build.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }
