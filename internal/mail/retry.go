package mail

import (
	"errors"
	"math/rand/v2"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// permanentError marks a failure that no retry can fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent reports whether err, from an attempt, will fail again however
// often it is retried: a 5xx reply to the message (MAIL, RCPT, DATA), a
// message go-mail cannot even address, or one we refused to build.
//
// Everything else is temporary: 4xx replies, network errors, timeouts,
// refused connections, and failures to open a session at all (including a
// 5xx greeting, failed AUTH or missing STARTTLS with starttls=required),
// which are the server's or the configuration's problem, not the message's:
// fixing them lets the queue recover.
func permanent(err error) bool {
	var pe *permanentError
	if errors.As(err, &pe) {
		return true
	}
	var de *dialError
	if errors.As(err, &de) {
		return false
	}
	var se *gomail.SendError
	if errors.As(err, &se) {
		switch se.Reason {
		case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
			return true
		}
		code := se.ErrorCode()
		return code >= 500 && code < 600
	}
	return false
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
