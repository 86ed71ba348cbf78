package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"signup/internal/e2e"
	"signup/internal/postfixtest"
	"signup/internal/store/storetest"
	"signup/internal/waitfor"
)

// mailDeadline bounds every wait for mail through Postfix: generous, as
// the machine may be busy and a condition that holds ends the wait at once.
const mailDeadline = 90 * time.Second

// postfixRig is the web binary talking to a private Postfix, with the
// test's own database to read the outbox from.
type postfixRig struct {
	mx    *postfixtest.Server
	dbURL string
	env   map[string]string
	web   *e2e.Process

	mu sync.Mutex // guards db's opening
	db *pgx.Conn  // the test's reading connection, opened on first use
}

// startWithPostfix runs bin against mx with env on top of the test's own
// database and SMTP_URL=mx's plain URL (env may override it).
func startWithPostfix(t *testing.T, bin string, mx *postfixtest.Server, env map[string]string) *postfixRig {
	t.Helper()
	r := &postfixRig{mx: mx, dbURL: storetest.URL(t), env: map[string]string{}}
	r.env["DATABASE_URL"] = r.dbURL
	r.env["SMTP_URL"] = mx.SMTPURL("")
	r.env["RATE_LIMIT"] = "off"
	for k, v := range env {
		r.env[k] = v
	}
	r.web = e2e.Start(t, bin, r.env)
	e2e.WaitReady(t, r.web.URL(), 30*time.Second)
	return r
}

// outboxRow is one outbox row and its account's address.
type outboxRow struct {
	ID        int64
	Email     string
	Kind      string
	Status    string
	Attempts  int
	LastError string
}

func (o outboxRow) String() string {
	s := fmt.Sprintf("#%d %s %s %s, %d attempts", o.ID, o.Kind, o.Email, o.Status, o.Attempts)
	if o.LastError != "" {
		s += ", last error: " + o.LastError
	}
	return s
}

// query is the test's connection to the rig's database, for one query at
// a time from the test's goroutine.
func (r *postfixRig) query(t *testing.T) *pgx.Conn {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.db == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, r.dbURL)
		if err != nil {
			t.Fatalf("connect to the test database: %v", err)
		}
		r.db = conn
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return r.db
}

// outbox reads every outbox row of the rig's database, oldest first.
func (r *postfixRig) outbox(t *testing.T) []outboxRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := r.query(t).Query(ctx, `
		SELECT o.id, a.email, o.kind, o.status, o.attempts, coalesce(o.last_error, '')
		FROM outbox o JOIN accounts a ON a.id = o.account_id ORDER BY o.id`)
	if err != nil {
		t.Fatalf("read the outbox: %v", err)
	}
	var out []outboxRow
	for rows.Next() {
		var o outboxRow
		if err := rows.Scan(&o.ID, &o.Email, &o.Kind, &o.Status, &o.Attempts, &o.LastError); err != nil {
			t.Fatalf("read the outbox: %v", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read the outbox: %v", err)
	}
	return out
}

// rowsFor is the outbox rows of one address.
func rowsFor(rows []outboxRow, email string) []outboxRow {
	var out []outboxRow
	for _, o := range rows {
		if o.Email == email {
			out = append(out, o)
		}
	}
	return out
}

// waitDelivered waits until every address in want has at least one
// message in the Postfix Maildir. While waiting, what is missing is said
// with the outbox rows of the missing addresses: their status and last
// error name the reason (an unverifiable certificate, a rejected HELO).
func (r *postfixRig) waitDelivered(t *testing.T, timeout time.Duration, want ...string) map[string]int {
	t.Helper()
	var per map[string]int
	var missing []string
	err := waitfor.Wait(timeout, func() error {
		var err error
		if per, err = r.mx.Delivered(); err != nil {
			return err
		}
		missing = missing[:0]
		for _, w := range want {
			if per[w] == 0 {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d addresses got no mail through Postfix", len(missing), len(want))
		}
		return nil
	})
	if err != nil {
		var why []string
		for _, o := range r.outbox(t) {
			for _, m := range missing {
				if o.Email == m && len(why) < 3 {
					why = append(why, o.String())
				}
			}
		}
		t.Fatalf("still waiting after %v: %v; their outbox rows: %s", timeout, err, strings.Join(why, "; "))
	}
	return per
}

// logMentions waits for a log record of p whose message or any attribute
// contains text.
func logMentions(t *testing.T, p *e2e.Process, timeout time.Duration, text string) map[string]any {
	t.Helper()
	return p.WaitLog(t, timeout, func(l map[string]any) bool {
		for _, v := range l {
			if s, ok := v.(string); ok && strings.Contains(s, text) {
				return true
			}
		}
		return false
	})
}

// metric reads one unlabelled metric from the ops listener's /metrics;
// ok is false when the metric is not exposed.
func metric(t *testing.T, opsURL, name string) (value float64, ok bool) {
	t.Helper()
	res, err := http.Get(opsURL + "/metrics")
	if err != nil {
		t.Fatalf("get /metrics: %v", err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v, true
		}
	}
	return 0, false
}

// postPage posts form to base+path as a same-origin browser form and
// returns the status and the page.
func postPage(t *testing.T, base, path string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := e2e.NewClient().HTTP.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("post %s: %v", path, err)
	}
	return res.StatusCode, string(body)
}
