package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// password is what every bench signup uses: long and not a common one, so
// it passes the rules and costs one argon2id hash.
const password = "a long and unusual passphrase"

// signupTargeter posts the signup form as a same-origin browser would, with
// a new address each time. It is safe for vegeta's concurrent workers.
func signupTargeter(base string) vegeta.Targeter {
	tag := randomHex(4)
	var n atomic.Int64
	header := http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Sec-Fetch-Site": {"same-origin"},
	}
	return func(t *vegeta.Target) error {
		email := fmt.Sprintf("bench-%s-%d@example.com", tag, n.Add(1))
		t.Method = http.MethodPost
		t.URL = base + "/signup"
		t.Body = []byte(url.Values{"email": {email}, "password": {password}}.Encode())
		t.Header = header
		return nil
	}
}

// getTargeter gets one URL over and over.
func getTargeter(u string) vegeta.Targeter {
	return vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: u})
}

func newAttacker(opts ...func(*vegeta.Attacker)) *vegeta.Attacker {
	return vegeta.NewAttacker(append([]func(*vegeta.Attacker){
		// A redirect is the answer being measured (303 after a signup),
		// not something to follow.
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.Timeout(time.Minute),
		vegeta.KeepAlive(true),
		// Bodies are read and dropped, not kept per result.
		vegeta.MaxBody(0),
	}, opts...)...)
}

// atRate sends tr's requests at a constant arrival rate for d, whatever the
// answers' latency: a slow answer does not delay the next request (vegeta
// adds workers as needed), so latency cannot hide behind coordinated
// omission.
func atRate(ctx context.Context, tr vegeta.Targeter, perSecond int, d time.Duration) *vegeta.Metrics {
	return attack(ctx, newAttacker(), tr, vegeta.Rate{Freq: perSecond, Per: time.Second}, d)
}

// atSaturation keeps exactly workers requests in flight for d, each worker
// sending its next request as soon as its answer came: the most the server
// can answer with that much concurrency.
func atSaturation(ctx context.Context, tr vegeta.Targeter, workers int, d time.Duration) *vegeta.Metrics {
	a := newAttacker(vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)))
	return attack(ctx, a, tr, vegeta.Rate{Freq: 0}, d)
}

func attack(ctx context.Context, a *vegeta.Attacker, tr vegeta.Targeter, p vegeta.Pacer, d time.Duration) *vegeta.Metrics {
	stop := context.AfterFunc(ctx, func() { a.Stop() })
	defer stop()
	var m vegeta.Metrics
	for res := range a.Attack(tr, p, d, "") {
		m.Add(res)
	}
	m.Close()
	return &m
}

// perSecond is how many answers had status code per second, from the first
// request sent to the last answer received.
func perSecond(m *vegeta.Metrics, code int) float64 {
	return float64(m.StatusCodes[fmt.Sprint(code)]) / (m.Duration + m.Wait).Seconds()
}

// expect fails unless (nearly) every answer had status code: a run whose
// answers were errors measured something else. Up to 1% of other answers
// are tolerated, not hidden: they are in the progress log.
func expect(m *vegeta.Metrics, code int, progress func(string, ...any)) error {
	want := fmt.Sprint(code)
	if m.Requests == 0 {
		return fmt.Errorf("no request was sent")
	}
	other := int(m.Requests) - m.StatusCodes[want]
	if other == 0 {
		return nil
	}
	codes := make([]string, 0, len(m.StatusCodes))
	for c, n := range m.StatusCodes {
		codes = append(codes, fmt.Sprintf("%s×%d", c, n))
	}
	sort.Strings(codes)
	errs := m.Errors
	if len(errs) > 3 {
		errs = errs[:3]
	}
	msg := fmt.Sprintf("%d of %d answers were not %s (%s; errors: %s)",
		other, m.Requests, want, strings.Join(codes, " "), strings.Join(errs, "; "))
	if float64(other) > 0.01*float64(m.Requests) {
		return fmt.Errorf("%s", msg)
	}
	progress("  warning: %s", msg)
	return nil
}
