package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"signup/internal/account"
	"signup/internal/devmail"
)

// smtpLatency is how long the slow SMTP peer takes per message.
const smtpLatency = 500 * time.Millisecond

func slowSMTPLatency(sz sizes) *scenario {
	return &scenario{
		name:     "signup p99 with SMTP at 500 ms/message",
		unit:     "ms",
		baseUnit: "ms",
		goal:     &goal{text: "ratio ≤ 0.05", limit: 0.05},
		note: fmt.Sprintf("%d signups/s for %v at a constant arrival rate, with devmail holding each message %v before answering DATA. "+
			"Async: the web process (outbox + channel + sender). Baseline: an in-process net/http server in the bench that runs the same "+
			"account.Service signup on its own fresh database, stores a confirmation token, then sends the email with go-mail "+
			"(a new connection per request) to the same devmail before answering 303. p99 of each; p50s are in the per-run figures.",
			sz.slowSMTPRate, sz.slowSMTPFor, smtpLatency),
		measure: func(ctx context.Context, h *harness) (measurement, error) {
			s, err := h.startSite(ctx, devmail.Faults{Latency: smtpLatency})
			if err != nil {
				return measurement{}, err
			}
			defer s.close()
			tr := signupTargeter(s.url)
			atRate(ctx, tr, sz.slowSMTPRate, time.Second) // warm up
			async := atRate(ctx, tr, sz.slowSMTPRate, sz.slowSMTPFor)
			if err := expect(async, http.StatusSeeOther, h.progress); err != nil {
				return measurement{}, fmt.Errorf("async: %w", err)
			}
			body, err := firstMessage(ctx, s.mail)
			if err != nil {
				return measurement{}, err
			}
			// The web's sender would keep the peer busy with the backlog.
			s.web.kill()

			db, err := h.newDatabase(ctx)
			if err != nil {
				return measurement{}, err
			}
			defer db.Close()
			baseURL, stop, err := serveSyncSignup(db, s.mail, body)
			if err != nil {
				return measurement{}, err
			}
			defer stop()
			tr = signupTargeter(baseURL)
			atRate(ctx, tr, sz.slowSMTPRate, time.Second) // warm up
			sync := atRate(ctx, tr, sz.slowSMTPRate, sz.slowSMTPFor)
			if err := expect(sync, http.StatusSeeOther, h.progress); err != nil {
				return measurement{}, fmt.Errorf("sync baseline: %w", err)
			}
			return measurement{
				value:    ms(async.Latencies.P99),
				baseline: ms(sync.Latencies.P99),
				detail: fmt.Sprintf("p50 %s ms async, %s ms sync",
					fmtNum(ms(async.Latencies.P50)), fmtNum(ms(sync.Latencies.P50))),
			}, nil
		},
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// serveSyncSignup serves POST /signup the naive way: sign up, then send the
// confirmation and only then answer. It returns the server's base URL and
// a stop function.
func serveSyncSignup(db *benchDB, peer *devmail.Server, body sample) (string, func(), error) {
	svc := account.NewService(account.Config{
		Repo:   db.Accounts(),
		Hasher: account.NewHasher(account.DefaultParams(), 0),
	})
	outbox := db.Accounts()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /signup", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		email := r.PostForm.Get("email")
		res, err := svc.Signup(r.Context(), email, r.PostForm.Get("password"))
		var in *account.InputError
		switch {
		case errors.As(err, &in):
			http.Error(w, "invalid input", http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := sendConfirmation(r.Context(), outbox, peer, body, res.AccountID, email); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, "/signup/sent", http.StatusSeeOther)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// tokenStore is where the sync baseline stores its tokens, as the
// sender does (db.Accounts()).
type tokenStore = account.TokenStore

// sendConfirmation mints and stores a token as the sender does, then
// dials the peer and sends the email.
func sendConfirmation(ctx context.Context, tokens tokenStore, peer *devmail.Server, body sample, accountID int64, to string) error {
	plain, hash, err := account.NewToken()
	if err != nil {
		return err
	}
	now := time.Now()
	if err := tokens.CreateTokens(ctx, []account.IssuedToken{{
		AccountID: accountID, Purpose: account.PurposeConfirm, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
	}}); err != nil {
		return err
	}
	msg, err := body.message(to, plain)
	if err != nil {
		return err
	}
	client, err := smtpClient(peer)
	if err != nil {
		return err
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}
