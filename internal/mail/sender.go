package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"signup/internal/account"
	"signup/internal/store"
	"signup/web"
)

// settleTimeout bounds the database write that records an attempt's
// outcome. It is not cut short by Stop: a message that went out is marked
// sent even when Stop is interrupting, or it would be sent twice.
const settleTimeout = 5 * time.Second

// maxErrorText caps the last_error kept in the outbox.
const maxErrorText = 1000

// Sender is the mail sender hosted service: workers take outbox ids from
// the queue, claim the row, mint the confirmation token, render, send over
// a kept-open SMTP connection and record the outcome; a sweep feeds the
// queue with due rows the queue does not carry. See the package
// documentation for the guarantees.
type Sender struct {
	cfg       Config
	log       *slog.Logger
	from      *mail.Address
	tmpl      *renderer
	tlsConfig *tls.Config
	siteURL   string
	loginURL  string
	// linkPrefix is, for each kind with a link, the link without the
	// token's value: the page's URL and "?token=".
	linkPrefix map[account.MailKind]string
	msgIDHost  string
	dials      atomic.Int64
	inflight   inflight

	mu  sync.Mutex
	run *run // nil while stopped
}

// run is one Start…Stop cycle.
type run struct {
	cancelSweep context.CancelFunc
	cancelWork  context.CancelFunc // interrupts sends in progress
	sweepDone   chan struct{}
	workersDone chan struct{}
	drain       chan struct{} // closed by Stop: take what is queued, then exit
	kick        chan struct{} // asks for a sweep now (a backlog is draining)
	backlog     atomic.Bool   // the last sweep found more due rows than it took
	cancelLock  context.CancelFunc
	lockDone    chan struct{} // closed once the instance lock is given up
	lockLost    atomic.Bool   // the instance lock is being taken again

	wake *waker // kicks a sweep when a retry is due
}

// New checks cfg, fills its defaults and parses the email templates. The
// sender does nothing until Start.
func New(cfg Config) (*Sender, error) {
	cfg = cfg.withDefaults()
	from, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	tmpl, err := newRenderer(web.Emails)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	tlsConfig := &tls.Config{}
	if cfg.TLSConfig != nil {
		tlsConfig = cfg.TLSConfig.Clone()
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = cfg.SMTP.Host
	}
	if tlsConfig.MinVersion == 0 {
		tlsConfig.MinVersion = tls.VersionTLS12
	}

	base := *cfg.BaseURL
	base.RawQuery, base.Fragment, base.User = "", "", nil
	home := base
	if home.Path == "" {
		home.Path = "/"
	}
	s := &Sender{
		cfg:        cfg,
		log:        cfg.Logger,
		from:       from,
		tmpl:       tmpl,
		tlsConfig:  tlsConfig,
		siteURL:    home.String(),
		loginURL:   base.JoinPath("login").String(),
		linkPrefix: make(map[account.MailKind]string),
		msgIDHost:  messageIDHost(base.Hostname()),
		inflight:   inflight{ids: make(map[int64]struct{})},
	}
	for _, k := range account.MailKinds() {
		if spec, _ := account.Spec(k); spec.LinkPath != "" {
			s.linkPrefix[k] = base.JoinPath(spec.LinkPath).String() + "?token="
		}
	}
	// Catch client options go-mail refuses now rather than at Start.
	if _, err := s.newConn(); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return s, nil
}

func (s *Sender) newConn() (*smtpConn, error) {
	return newSMTPConn(s.cfg.SMTP, s.tlsConfig, s.cfg.SendTimeout, &s.dials)
}

// Dials is the number of SMTP connections opened so far.
func (s *Sender) Dials() int64 { return s.dials.Load() }

// Start takes the instance lock (and fails when the database cannot be
// reached), then launches the workers and the sweep, which runs at once
// and then every SweepEvery. It returns once they run; ctx only bounds the
// start. A stopped Sender can be started again.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.run != nil {
		return errors.New("mail sender already running")
	}
	conns := make([]*smtpConn, s.cfg.Workers)
	for i := range conns {
		c, err := s.newConn()
		if err != nil {
			return fmt.Errorf("start mail sender: %w", err)
		}
		conns[i] = c
	}
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
	}
	r.wake = newWaker(func() {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	})
	go s.holdLock(held, r, lock)
	var workers sync.WaitGroup
	for _, c := range conns {
		workers.Go(func() { s.work(work, r, c) })
	}
	go func() {
		workers.Wait()
		close(r.workersDone)
	}()
	go s.sweepLoop(sweep, r)
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

// work is one worker: it takes ids from the queue until the work context
// ends or, once Stop asked to drain, the queue is empty. It takes what is
// queued in batches (see takeBatch), so that claiming, storing tokens and
// recording sends cost one statement per batch rather than per email.
func (s *Sender) work(ctx context.Context, r *run, c *smtpConn) {
	defer func() {
		if ctx.Err() != nil {
			c.drop()
		} else {
			c.close()
		}
	}()
	ch := s.cfg.Queue.C()
	batch := make([]int64, 0, s.cfg.Batch)
	for {
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
		if s.cfg.Observer != nil && !job.Queued.IsZero() {
			s.cfg.Observer.Dequeued(time.Since(job.Queued))
		}
		batch, ok = s.takeBatch(append(batch[:0], job.ID), ch)
		if retryIn, retry := s.deliver(ctx, c, batch); retry {
			r.wake.add(retryIn)
		}
		s.maybeKick(r)
		if !ok {
			return // the queue is closed and empty
		}
	}
}

// takeBatch adds to batch, without waiting, ids already queued: at most
// Batch in all, and no more than a fair share of the queue, so that a short
// queue is spread over the workers rather than sent one by one by the
// first. ok is false once the queue is closed.
func (s *Sender) takeBatch(batch []int64, ch <-chan Job) ([]int64, bool) {
	want := min(s.cfg.Batch, 1+s.cfg.Queue.Len()/s.cfg.Workers)
	for len(batch) < want {
		select {
		case job, ok := <-ch:
			if !ok {
				return batch, false
			}
			if s.cfg.Observer != nil && !job.Queued.IsZero() {
				s.cfg.Observer.Dequeued(time.Since(job.Queued))
			}
			batch = append(batch, job.ID)
		default:
			return batch, true
		}
	}
	return batch, true
}

// deliver claims the rows ids and makes one attempt at sending each. When
// an attempt is to be retried, it says in how long the first retry is due.
func (s *Sender) deliver(ctx context.Context, c *smtpConn, ids []int64) (retryIn time.Duration, retry bool) {
	// The same id can be queued twice (by the signup and by a sweep); our
	// claim cannot tell our lease from our own claim, so the copy is
	// skipped here and finds the row settled afterwards.
	ids = s.inflight.add(ids)
	if len(ids) == 0 {
		return 0, false
	}
	defer s.inflight.remove(ids)

	now := s.cfg.Now()
	leaseUntil := now.Add(s.cfg.Lease)
	ms, err := s.cfg.Outbox.ClaimBatch(ctx, ids, s.cfg.Instance, now, leaseUntil)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("mail: claim failed; the sweep will find the rows again", "outbox_ids", ids, "err", err)
		}
		return 0, false
	}
	if len(ms) < len(ids) {
		s.log.Debug("mail: rows not ours to send", "rows", len(ids)-len(ms))
	}
	tokens, tokenErr := s.mintTokens(ctx, ms, now)

	b := s.newSentRecorder(ctx, len(ms))
	defer b.close()
	for i, m := range ms {
		start := time.Now()
		if leaseUntil.Sub(s.cfg.Now()) < s.cfg.Lease-s.cfg.SendTimeout/2 {
			// Slow sends have used half a SendTimeout of the lease: record
			// what went out while the lease has time to spare (a send
			// started before this check ends within SendTimeout, so no sent
			// row waits past 1.5 SendTimeout, under Lease), and renew the
			// rest's leases.
			b.flush()
			leaseUntil = s.extend(ctx, ms[i:])
		}
		switch {
		case m.Attempts > s.cfg.MaxAttempts:
			// Claimed again and again without an outcome: its attempts died
			// with their process. Do not let one message take the service down
			// for ever.
			err = &permanentError{fmt.Errorf("gave up: %d attempts ended without an outcome", m.Attempts-1)}
		case tokenErr != nil && s.linkPrefix[m.Kind] != "":
			err = tokenErr
		default:
			err = s.attempt(ctx, c, m, tokens[m.ID], s.cfg.Now())
		}
		if err == nil {
			b.add(m, time.Since(start))
			continue
		}
		if in, ok := s.settle(ctx, m, err, time.Since(start)); ok && (!retry || in < retryIn) {
			retryIn, retry = in, true
		}
	}
	return retryIn, retry
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

// mintTokens mints the token of each email among ms that carries one
// (the account domain says which, and what the token grants), stores the
// hashes in one statement, and returns each row's token. An error means no
// token was stored, and no email with a link can be sent.
func (s *Sender) mintTokens(ctx context.Context, ms []store.OutboxMail, now time.Time) (map[int64]string, error) {
	var (
		plains map[int64]string
		tokens []account.Token
	)
	ttl := s.lifetimes()
	for _, m := range ms {
		if m.Attempts > s.cfg.MaxAttempts {
			continue
		}
		plain, tok, ok, err := account.MintMailToken(account.OutboxMail{
			Kind: m.Kind, AccountID: m.AccountID, Recipient: m.Email, PasswordHash: m.PasswordHash,
		}, now, ttl)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if plains == nil {
			plains = make(map[int64]string, len(ms))
		}
		plains[m.ID] = plain
		tokens = append(tokens, tok)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	if err := s.cfg.Outbox.CreateTokens(ctx, tokens, now); err != nil {
		return nil, err
	}
	return plains, nil
}

// lifetimes are the links' lifetimes: TokenTTL for confirmations and email
// changes, ResetTTL for resets.
func (s *Sender) lifetimes() account.TokenLifetimes {
	return account.TokenLifetimes{Confirm: s.cfg.TokenTTL, Reset: s.cfg.ResetTTL, EmailChange: s.cfg.TokenTTL}
}

// attempt renders and sends m, within SendTimeout. token is the token of
// an email with a link.
func (s *Sender) attempt(ctx context.Context, c *smtpConn, m store.OutboxMail, token string, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	data := emailData{SiteURL: s.siteURL, LoginURL: s.loginURL}
	var (
		content rendered
		err     error
	)
	switch spec, _ := account.Spec(m.Kind); {
	case s.linkPrefix[m.Kind] != "":
		data.ValidFor = humanDuration(s.lifetimes().Of(spec.Purpose))
		content, err = s.tmpl.renderToken(m.Kind, data, s.linkPrefix[m.Kind], url.QueryEscape(token))
	case m.Kind == account.MailInactiveWarning:
		warned := m.WarnedAt
		if warned.IsZero() {
			warned = now
		}
		data.DeleteAfter = humanDate(warned.Add(s.cfg.InactiveWarning))
		content, err = s.tmpl.render(m.Kind, data)
	default:
		content, err = s.tmpl.render(m.Kind, data)
	}
	if err != nil {
		return &permanentError{err}
	}
	msg, err := buildMessage(envelope{from: s.from, to: m.Email, date: now, messageID: newMessageID(s.msgIDHost)}, content)
	if err != nil {
		return &permanentError{err}
	}
	return c.send(ctx, msg)
}

// sentRecorder records, in the background, the rows of a batch the server
// accepted: while the worker sends the next message, the rows sent so far
// are marked sent in one statement. A process killed mid-batch therefore
// sends again only the message in DATA and those whose mark was still
// being committed, not the whole batch, and the marks cost no round trip
// of the worker's own.
type sentRecorder struct {
	s       *Sender
	ctx     context.Context
	in      chan sentRow
	pending sync.WaitGroup // rows added and not yet recorded
	done    chan struct{}  // closed when the loop has ended
}

type sentRow struct {
	m    store.OutboxMail
	took time.Duration
}

// newSentRecorder starts a recorder for a batch of at most n rows; close
// must be called to end it.
func (s *Sender) newSentRecorder(ctx context.Context, n int) *sentRecorder {
	r := &sentRecorder{s: s, ctx: ctx, in: make(chan sentRow, n), done: make(chan struct{})}
	go r.loop()
	return r
}

// add hands over a row the server accepted. It does not block: the batch
// holds at most the channel's capacity.
func (r *sentRecorder) add(m store.OutboxMail, took time.Duration) {
	r.pending.Add(1)
	r.in <- sentRow{m: m, took: took}
}

// flush waits until every row added so far is recorded.
func (r *sentRecorder) flush() { r.pending.Wait() }

// close records what is left and ends the recorder.
func (r *sentRecorder) close() {
	close(r.in)
	<-r.done
}

func (r *sentRecorder) loop() {
	defer close(r.done)
	var rows []sentRow
	for row := range r.in {
		rows = append(rows[:0], row)
	more:
		for {
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
		r.pending.Add(-len(rows))
	}
}

// record marks rows sent in one statement. Like settle, it is not cut
// short by Stop: a message that went out is marked sent, or it would be
// sent twice.
func (r *sentRecorder) record(rows []sentRow) {
	s := r.s
	dbCtx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), settleTimeout)
	defer cancel()
	ids := make([]int64, len(rows))
	for i, row := range rows {
		ids[i] = row.m.ID
	}
	settled, err := s.cfg.Outbox.MarkSentBatch(dbCtx, ids, s.cfg.Instance, s.cfg.Now())
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
		if s.cfg.Observer != nil {
			s.cfg.Observer.Attempted(m.Kind, OutcomeSent, row.took)
		}
		if s.cfg.OnResult != nil {
			s.cfg.OnResult(Result{ID: m.ID, Kind: m.Kind, Attempt: m.Attempts, Outcome: OutcomeSent})
		}
	}
}

// settle records the outcome of a failed attempt on row m, and when the
// row is to be retried, says in how long; sent rows go through
// sentRecorder.
func (s *Sender) settle(ctx context.Context, m store.OutboxMail, err error, took time.Duration) (retryIn time.Duration, retry bool) {
	dbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	res := Result{ID: m.ID, Kind: m.Kind, Attempt: m.Attempts, Err: err}
	log := s.log.With("outbox_id", m.ID, "kind", string(m.Kind), "account_id", m.AccountID,
		"attempt", m.Attempts, "duration", took)
	var (
		ours  bool
		dbErr error
	)
	switch {
	case ctx.Err() != nil && !permanent(err):
		// Stop cut it short; Stop gives the row back.
		res.Outcome, ours = OutcomeInterrupted, true
		log.Info("mail interrupted by shutdown", "err", err)
	case permanent(err) || m.Attempts >= s.cfg.MaxAttempts:
		res.Outcome = OutcomeFailed
		ours, dbErr = s.cfg.Outbox.MarkFailed(dbCtx, m.ID, s.cfg.Instance, errorText(err))
		log.Error("mail failed", "permanent", permanent(err), "err", err)
	default:
		res.Outcome = OutcomeRetry
		wait := retryDelay(m.Attempts, s.cfg.RetryMin, s.cfg.RetryMax)
		ours, dbErr = s.cfg.Outbox.Retry(dbCtx, m.ID, s.cfg.Instance, s.cfg.Now().Add(wait), errorText(err))
		retryIn, retry = wait, dbErr == nil && ours
		level := slog.LevelWarn
		var de *dialError
		if errors.As(err, &de) {
			// The server or SMTP_URL is the problem, not this message.
			level = slog.LevelError
			log = log.With("smtp", s.cfg.SMTP.String())
		}
		log.Log(ctx, level, "mail retry", "retry_in", wait, "err", err)
	}
	switch {
	case dbErr != nil:
		log.Error("mail: record outcome", "outcome", res.Outcome, "err", dbErr)
	case !ours:
		log.Warn("mail: lease lost before the outcome was recorded; another instance may send it too", "outcome", res.Outcome)
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.Attempted(m.Kind, res.Outcome, took)
	}
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(res)
	}
	return retryIn, retry
}

// sweepLoop sweeps at once, then every SweepEvery, and when a draining
// backlog asks for more.
func (s *Sender) sweepLoop(ctx context.Context, r *run) {
	defer close(r.sweepDone)
	t := time.NewTicker(s.cfg.SweepEvery)
	defer t.Stop()
	for {
		s.sweep(ctx, r)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

// sweep leases as many due rows as the queue has room for (at most
// SweepBatch) and queues them.
func (s *Sender) sweep(ctx context.Context, r *run) {
	if r.lockLost.Load() {
		// Rows leased now would look abandoned to the other instances at
		// once; let them have the due rows until the lock is back.
		return
	}
	q := s.cfg.Queue
	room := min(q.Cap()-q.Len(), s.cfg.SweepBatch)
	if room <= 0 {
		r.backlog.Store(true)
		return
	}
	now := s.cfg.Now()
	ids, err := s.cfg.Outbox.Lease(ctx, s.cfg.Instance, now, now.Add(s.cfg.Lease), room)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("mail: sweep failed", "err", err)
		}
		return
	}
	r.backlog.Store(len(ids) == room)
	var back []int64
	for _, id := range ids {
		if !q.TryEnqueue(NewJob(id)) {
			back = append(back, id)
		}
	}
	if len(back) > 0 {
		// The signup handlers filled the queue meanwhile.
		if _, err := s.cfg.Outbox.Release(ctx, s.cfg.Instance, back, now); err != nil && ctx.Err() == nil {
			s.log.Warn("mail: give back swept rows", "rows", len(back), "err", err)
		}
	}
	if len(ids) > 0 {
		s.log.Debug("mail: swept outbox", "leased", len(ids), "queued", len(ids)-len(back))
	}
}

// maybeKick asks for a sweep when a backlog is waiting and the queue is
// down to half a batch.
func (s *Sender) maybeKick(r *run) {
	if r.backlog.Load() && s.cfg.Queue.Len() <= s.cfg.SweepBatch/2 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
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

// inflight is the set of ids this process's workers are sending.
type inflight struct {
	mu  sync.Mutex
	ids map[int64]struct{}
}

// add marks ids as in flight and returns those that were not already,
// in ids' storage.
func (f *inflight) add(ids []int64) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	fresh := ids[:0]
	for _, id := range ids {
		if _, busy := f.ids[id]; busy {
			continue
		}
		f.ids[id] = struct{}{}
		fresh = append(fresh, id)
	}
	return fresh
}

func (f *inflight) remove(ids []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		delete(f.ids, id)
	}
}
