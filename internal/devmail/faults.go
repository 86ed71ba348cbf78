package devmail

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Faults are misbehaviours injected into the SMTP conversation. They may be
// changed at any time while the server runs; a message in progress keeps the
// outcome decided when its DATA arrived.
type Faults struct {
	// Latency is added before answering DATA for each message. Stop does not
	// wait it out.
	Latency time.Duration
	// TempFailRate is the share [0,1] of messages answered 451 4.3.0.
	TempFailRate float64
	// PermFailRate is the share [0,1] of messages answered 554 5.0.0. When
	// both rates are set, a message fails temporarily with TempFailRate,
	// else permanently with PermFailRate of the whole.
	PermFailRate float64
	// Refuse makes the server accept new connections and close them at once,
	// before the greeting, so clients see a connection error. Turning it on
	// also drops the connections already open.
	Refuse bool
	// Hang makes the server take each message's content and never answer
	// it: the client waits for the reply to DATA until it gives up, the
	// fault is lifted (the held messages are then answered as usual) or
	// the server stops (421). Attempts are counted as the content arrives.
	Hang bool
	// Greeting, when set, replaces the 220 greeting of new connections with
	// this reply (a 4xx or 5xx), after which the server closes them.
	Greeting *Reply
	// Mail, when set, answers every MAIL FROM with this reply.
	Mail *Reply
	// Rcpt answers RCPT TO with a reply chosen by recipient: the entry of
	// the address (lower case), else the entry "", else acceptance.
	Rcpt map[string]*Reply
}

// Reply is an SMTP reply injected at a stage of the conversation.
type Reply struct {
	Code     int    // 4xx or 5xx
	Enhanced [3]int // e.g. {5, 1, 1}
	Message  string
}

func (r *Reply) err() *smtp.SMTPError {
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: smtp.EnhancedCode(r.Enhanced), Message: r.Message}
}

// stageReply is the injected reply to MAIL FROM (rcpt empty) or to RCPT TO
// rcpt; nil accepts.
func (s *Server) stageReply(mail bool, rcpt string) *smtp.SMTPError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mail {
		if s.faults.Mail != nil {
			return s.faults.Mail.err()
		}
		return nil
	}
	if r, ok := s.faults.Rcpt[strings.ToLower(rcpt)]; ok && r != nil {
		return r.err()
	}
	if r, ok := s.faults.Rcpt[""]; ok && r != nil {
		return r.err()
	}
	return nil
}

// Injected replies. Failed messages are not stored.
var (
	errTempFail = &smtp.SMTPError{
		Code:         451,
		EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message:      "Temporary failure injected by devmail",
	}
	errPermFail = &smtp.SMTPError{
		Code:         554,
		EnhancedCode: smtp.EnhancedCode{5, 0, 0},
		Message:      "Permanent failure injected by devmail",
	}
	errShuttingDown = &smtp.SMTPError{
		Code:         421,
		EnhancedCode: smtp.EnhancedCode{4, 3, 2},
		Message:      "Service shutting down",
	}
)

// SetFaults replaces the injected faults. Rates are clamped to [0,1] and a
// negative latency counts as none.
func (s *Server) SetFaults(f Faults) {
	f.TempFailRate = clampRate(f.TempFailRate)
	f.PermFailRate = clampRate(f.PermFailRate)
	f.Latency = max(f.Latency, 0)

	s.mu.Lock()
	var drop []*trackedConn
	if f.Refuse && !s.faults.Refuse {
		drop = s.connsLocked()
	}
	if !f.Hang && s.unhang != nil {
		close(s.unhang)
		s.unhang = nil
	}
	s.faults = f
	s.mu.Unlock()

	for _, c := range drop {
		c.Close()
	}
}

// Faults returns the faults in effect.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// FailNext makes the next n messages fail with the SMTP reply code (4xx is
// temporary, 5xx permanent, e.g. 451 or 550), before any random failure
// rate is consulted, so a test can assert "4xx, then success" exactly. It
// replaces an earlier FailNext still pending; n <= 0 cancels it. It panics
// if code is not in 400..599.
func (s *Server) FailNext(n int, code int) {
	if code < 400 || code > 599 {
		panic(fmt.Sprintf("devmail: FailNext code must be a 4xx or 5xx SMTP reply code, got %d", code))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = max(n, 0)
	s.failCode = code
}

// hang returns a channel closed when the Hang fault is lifted, or nil when
// it is not in force.
func (s *Server) hang() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.faults.Hang {
		return nil
	}
	if s.unhang == nil {
		s.unhang = make(chan struct{})
	}
	return s.unhang
}

// outcome decides, when DATA arrives, how the message will be answered: the
// latency to add and the error to reply with (nil: accept).
func (s *Server) outcome() (time.Duration, *smtp.SMTPError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	if s.failNext > 0 {
		s.failNext--
		return f.Latency, failError(s.failCode)
	}
	if f.TempFailRate > 0 || f.PermFailRate > 0 {
		switch r := rand.Float64(); {
		case r < f.TempFailRate:
			return f.Latency, errTempFail
		case r < f.TempFailRate+f.PermFailRate:
			return f.Latency, errPermFail
		}
	}
	return f.Latency, nil
}

func failError(code int) *smtp.SMTPError {
	switch code {
	case errTempFail.Code:
		return errTempFail
	case errPermFail.Code:
		return errPermFail
	}
	return &smtp.SMTPError{
		Code:         code,
		EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0},
		Message:      "Failure injected by devmail",
	}
}

func clampRate(r float64) float64 {
	if math.IsNaN(r) || r < 0 {
		return 0
	}
	return min(r, 1)
}
