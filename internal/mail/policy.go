package mail

import (
	"math/rand/v2"
	"strings"
	"time"
)

// verdict is what a failed attempt means for the message and the sender.
type verdict int

const (
	// blocked: the server or our setup is at fault, not the message. No
	// attempt is spent: the message goes back to the queue, and the sender
	// stops sending until a probe gets through.
	blocked verdict = iota
	// retry: the message's own temporary failure, retried with backoff.
	retry
	// fail: the message fails for good.
	fail
	// failSuppress: the recipient was rejected for good: the message
	// fails and the address goes on the suppression list.
	failSuppress
)

func (v verdict) String() string {
	return [...]string{"blocked", "retry", "fail", "fail and suppress"}[v]
}

// ourFault are phrases of a 5xx reply to RCPT that blame the HELO, the
// sender, the client or relaying, not the recipient: Postfix delays those
// checks to RCPT (smtpd_delay_reject = yes).
var ourFault = []string{
	"helo command rejected",
	"sender address rejected",
	"client host rejected",
	"relay access denied",
}

// judge is the policy for a failed step of the conversation: st, the
// server's reply code (0: no reply at all) and its text.
//
//   - No reply (the connection failed, a timeout, a refused certificate),
//     421 (the server is closing), and any failure up to and including
//     MAIL FROM say nothing about the message: blocked.
//   - RCPT: a 5xx naming the HELO, sender, client or relaying is ours:
//     blocked; another 5xx rejects the recipient: failSuppress; a 4xx
//     (greylisting, a full mailbox) is the message's: retry.
//   - DATA: 4xx retry, 5xx fail.
func judge(st stage, code int, text string) verdict {
	if code == 0 || code == 421 || st <= stageMail {
		return blocked
	}
	temporary := code >= 400 && code < 500
	switch st {
	case stageRcpt:
		if temporary {
			return retry
		}
		lower := strings.ToLower(text)
		for _, p := range ourFault {
			if strings.Contains(lower, p) {
				return blocked
			}
		}
		return failSuppress
	default:
		if temporary {
			return retry
		}
		return fail
	}
}

// sameRejections is how many different recipients in a row must get the
// very same 5xx reply to RCPT before it counts as the server refusing us,
// not them.
const sameRejections = 3

// rejections watches 5xx replies to RCPT for the same reply given to
// different recipients in a row (a reply that names no recipient: a
// blanket refusal). The zero value is ready; it is used by one worker.
type rejections struct {
	reply string
	rcpts map[string]bool
}

// add records the outcome of one RCPT (reply empty: accepted) and reports
// whether the same rejection has now reached sameRejections different
// recipients in a row.
func (r *rejections) add(rcpt, reply string) bool {
	if reply == "" || reply != r.reply {
		r.reply, r.rcpts = reply, nil
	}
	if reply == "" {
		return false
	}
	if r.rcpts == nil {
		r.rcpts = make(map[string]bool, sameRejections)
	}
	r.rcpts[strings.ToLower(rcpt)] = true
	return len(r.rcpts) >= sameRejections
}

// expired reports whether a message created at created has waited longer
// than maxAge at now: it is failed, whatever its attempts.
func expired(created, now time.Time, maxAge time.Duration) bool {
	return now.Sub(created) > maxAge
}

// retryDelay is the wait before the attempt after attempt number n (1 for
// the first): lo·2^(n-1), capped at hi, then jittered down by up to half
// (never below lo), so rows that failed together do not retry together.
func retryDelay(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	floor := max(d/2, lo)
	if d <= floor {
		return d
	}
	return floor + rand.N(d-floor+1)
}

// Probing a blocked server: the first probe soon, then doubling up to
// probeMax. Probes are spaced from the start of one to the start of the
// next (see probeLoop), and probeMax leaves a second of the 5 s the
// operator is promised for the probe itself and the first claim and send
// after it, so the first email goes out within 5 s of the server's return
// even on a busy machine.
const (
	probeMin = 250 * time.Millisecond
	probeMax = 4 * time.Second
)

// probeDelay is the wait before probe number n (1 for the first) of a
// blocked server.
func probeDelay(n int) time.Duration {
	d := probeMin
	for i := 1; i < n && d < probeMax; i++ {
		d *= 2
	}
	return min(d, probeMax)
}
