package devmail

import (
	"context"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// Message is a message the server accepted. Its slices and header map are
// shared between the copies handed out and must not be modified.
type Message struct {
	// ID is 1, 2, 3… in arrival order. IDs are not reused after Reset.
	ID int
	// Received is when the message was accepted.
	Received time.Time
	// From is the envelope sender (MAIL FROM).
	From string
	// To are the envelope recipients (RCPT TO).
	To []string
	// Subject is the decoded (RFC 2047) Subject header.
	Subject string
	// Header holds the parsed header fields, undecoded.
	Header mail.Header
	// Text is the first text/plain part, transfer-decoded and converted to
	// UTF-8, with CRLF line ends turned into LF.
	Text string
	// HTML is the first text/html part, decoded like Text.
	HTML string
	// Links are the http(s) URLs in Text and in the href attributes of HTML,
	// in order of appearance, without duplicates.
	Links []string
	// Raw is the whole message as received.
	Raw []byte
	// TLS reports whether the message came over TLS (STARTTLS or
	// ImplicitTLS).
	TLS bool
	// AuthUser is the username the client authenticated as; "" without AUTH.
	AuthUser string
	// ParseError describes why the MIME structure did not parse completely
	// ("" when it did); what did parse is still filled in.
	ParseError string
}

// store assigns the next ID, appends m, drops the oldest beyond MaxMessages
// and wakes the waiters.
func (s *Server) store(m Message) Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	m.ID = s.nextID
	m.Received = time.Now()
	s.messages = append(s.messages, m)
	if over := len(s.messages) - s.cfg.MaxMessages; over > 0 {
		// Zero the dropped entries so their Raw bytes can be collected; the
		// next append that outgrows the capacity copies only the live ones.
		clear(s.messages[:over])
		s.messages = s.messages[over:]
	}
	s.received.Add(1)
	s.broadcastLocked()
	return m
}

func (s *Server) countAttempt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts.Add(1)
	s.broadcastLocked()
}

// broadcastLocked wakes every waiter; the caller holds s.mu.
func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Messages returns the stored messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// MessagesTo returns the stored messages with addr among their envelope
// recipients, compared case-insensitively, in arrival order.
func (s *Server) MessagesTo(addr string) []Message {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	var out []Message
	for _, m := range s.Messages() {
		if slices.ContainsFunc(m.To, func(to string) bool { return strings.EqualFold(to, addr) }) {
			out = append(out, m)
		}
	}
	return out
}

// message returns the stored message with the given ID.
func (s *Server) message(id int) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := slices.BinarySearchFunc(s.messages, id, func(m Message, id int) int { return m.ID - id })
	if !ok {
		return Message{}, false
	}
	return s.messages[i], true
}

// Reset forgets all stored messages. Received and Attempts keep counting.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
	s.broadcastLocked()
}

// Received is the number of messages accepted since start, including those
// since dropped by MaxMessages or Reset.
func (s *Server) Received() int64 {
	return s.received.Load()
}

// Attempts is the number of DATA transfers received since start, including
// the ones answered with an error.
func (s *Server) Attempts() int64 {
	return s.attempts.Load()
}

// Wait blocks until cond, called with the stored messages, returns true,
// and returns those messages. cond is checked at once and again after every
// arrival or Reset. If ctx ends first, Wait returns the last messages seen
// and ctx's error; if the server stops first, ErrStopped.
func (s *Server) Wait(ctx context.Context, cond func([]Message) bool) ([]Message, error) {
	var msgs []Message
	err := s.waitUntil(ctx, func() bool {
		msgs = s.Messages()
		return cond(msgs)
	})
	return msgs, err
}

// WaitAttempts blocks until at least n DATA transfers have been received
// (Attempts() >= n), ctx ends, or the server stops. Useful to know that a
// message that will fail or is held by Latency has arrived.
func (s *Server) WaitAttempts(ctx context.Context, n int64) error {
	return s.waitUntil(ctx, func() bool { return s.Attempts() >= n })
}

// WaitReceived blocks until at least n messages have been accepted since
// start (Received() >= n), ctx ends, or the server stops. Unlike Wait it
// copies nothing per arrival, so waiting for thousands of messages costs
// nothing per message.
func (s *Server) WaitReceived(ctx context.Context, n int64) error {
	return s.waitUntil(ctx, func() bool { return s.Received() >= n })
}

// waitUntil re-checks check after every broadcast until it holds.
func (s *Server) waitUntil(ctx context.Context, check func() bool) error {
	for {
		// Take the channel before checking so a change in between still
		// wakes us.
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if check() {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			if check() {
				return nil
			}
			return ErrStopped
		}
	}
}
