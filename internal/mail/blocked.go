package mail

import (
	"context"
	"sync"
	"time"

	"signup/internal/hosted"
)

// gate is the sender's blocked state: closed while the server or our setup
// refuses every message (see judge), open otherwise. Workers wait at the
// gate; the prober opens it again.
type gate struct {
	mu    sync.Mutex
	shut  bool
	reply string
	since time.Time
	st    stage
	rcpt  string        // the recipient refused at RCPT, to probe with
	open  chan struct{} // closed while the gate is open
	epoch uint64        // counts closings
	wake  chan struct{} // tells the prober the gate closed
}

func newGate() *gate {
	g := &gate{open: make(chan struct{}), wake: make(chan struct{}, 1)}
	close(g.open)
	return g
}

// close blocks the sender for e (rcpt is the recipient when e came at
// RCPT). It reports whether the sender was open until now.
func (g *gate) close(e *replyError, rcpt string, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reply, g.st, g.rcpt = e.reply(), e.stage, rcpt
	if g.shut {
		return false
	}
	g.shut, g.since = true, now
	g.open = make(chan struct{})
	g.epoch++
	select {
	case g.wake <- struct{}{}:
	default:
	}
	return true
}

// reopen unblocks the sender; it reports whether it was blocked, and since
// when.
func (g *gate) reopen() (was bool, since time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.shut {
		return false, time.Time{}
	}
	g.shut = false
	close(g.open)
	return true, g.since
}

// state is the blocked state, the server's reply and since when.
func (g *gate) state() (shut bool, reply string, since time.Time, st stage, rcpt string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shut, g.reply, g.since, g.st, g.rcpt
}

// opened returns a channel closed once the gate is open, and the number of
// closings so far.
func (g *gate) opened() (<-chan struct{}, uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open, g.epoch
}

// Blocked says whether the sender is blocked: the SMTP server, or our
// setup (TLS, credentials, HELO name, sender address), refuses every
// message. reply is the server's answer (or what failed) and since when.
// While blocked no message is attempted; a probe every few seconds lifts
// it.
func (s *Sender) Blocked() (blocked bool, reply string, since time.Time) {
	b, r, t, _, _ := s.gate.state()
	return b, r, t
}

// block closes the gate for e and says so once per change.
func (s *Sender) block(e *replyError, rcpt string) {
	if !s.gate.close(e, rcpt, s.cfg.Now()) {
		return
	}
	s.log.Error("mail: sender blocked: the SMTP server refuses us, not the message; nothing is attempted until a probe gets through",
		"smtp", s.cfg.SMTP.String(), "stage", e.stage.String(), "reply", e.reply())
	// A fixed reason: the health probes are public, the server's reply
	// is for the log and the dashboard.
	s.health.Load().Report(hosted.Degraded, "the SMTP server refuses our mail")
	if s.cfg.Observer != nil {
		s.cfg.Observer.Blocked(true, e.reply())
	}
}

// probeLoop waits for the gate to close, then probes the server until it
// answers: a connect, EHLO (with STARTTLS and AUTH as configured), and,
// when the block came at MAIL FROM or RCPT, those too, then RSET and QUIT.
// Meanwhile it keeps the leases of the rows this instance holds alive.
func (s *Sender) probeLoop(ctx context.Context, r *run) {
	defer close(r.probeDone)
	for {
		if shut, _, _, _, _ := s.gate.state(); !shut {
			select {
			case <-ctx.Done():
				return
			case <-s.gate.wake:
			}
		}
		last := time.Now() // when the last probe started (or the block)
		for n := 1; ; n++ {
			if shut, _, _, _, _ := s.gate.state(); !shut {
				break
			}
			// From the start of one probe to the start of the next, so the
			// lease renewal and the probe's own time do not stretch it.
			t := time.NewTimer(max(0, probeDelay(n)-time.Since(last)))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			last = time.Now()
			until := s.cfg.Now().Add(s.cfg.Lease)
			if _, err := s.cfg.Outbox.ExtendLease(ctx, nil, s.cfg.Instance, until); err != nil && ctx.Err() == nil {
				s.log.Warn("mail: extend leases while blocked", "err", err)
			}
			if err := s.probe(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				_, _, _, _, rcpt := s.gate.state()
				e := failedAt(stageConnect, err)
				s.gate.close(e, rcpt, s.cfg.Now()) // keep the latest reply
				s.log.Debug("mail: probe refused", "stage", e.stage.String(), "reply", e.reply())
				continue
			}
			if was, since := s.gate.reopen(); was {
				s.log.Info("mail: sender unblocked: the SMTP server answers again", "smtp", s.cfg.SMTP.String(),
					"blocked_for", s.cfg.Now().Sub(since).Round(time.Millisecond))
				s.health.Load().Report(hosted.Healthy, "")
				if s.cfg.Observer != nil {
					s.cfg.Observer.Blocked(false, "")
				}
				r.kickSweep()
			}
			break
		}
	}
}

// probe runs one probe conversation; nil when the server would take mail.
func (s *Sender) probe(ctx context.Context) error {
	sess, err := s.dialer.dial(ctx)
	if err != nil {
		return err
	}
	defer sess.quit()
	s.noteLevel(sess.level)
	_, _, _, st, rcpt := s.gate.state()
	if st < stageMail {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	stop := sess.watch(ctx)
	defer stop()
	if err := sess.client.Mail("<" + s.returnPath + ">"); err != nil {
		return failedAt(stageMail, err)
	}
	if st >= stageRcpt && rcpt != "" {
		if err := sess.client.Rcpt("<" + rcpt + ">"); err != nil {
			e := failedAt(stageRcpt, err)
			if judge(e.stage, e.code, e.text) == blocked || e.reply() == s.blockedReply() {
				return e
			}
		}
	}
	sess.client.Reset() //nolint:errcheck // QUIT follows
	return nil
}

// blockedReply is the reply the sender is blocked on.
func (s *Sender) blockedReply() string {
	_, reply, _, _, _ := s.gate.state()
	return reply
}
