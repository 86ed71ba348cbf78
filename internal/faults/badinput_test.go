package faults_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/devmail"
	"signup/internal/e2e"
	"signup/internal/store/storetest"
)

// badRequest is one kind of malformed request and the answer it must get.
type badRequest struct {
	name string
	want int
	// build makes the request for base (a fresh one per send: bodies are
	// read once).
	build func(base string) *http.Request
}

// post builds a same-origin form POST with the given content type and
// body; body may be any reader (one without a length is sent chunked).
func post(base, path, contentType string, body io.Reader) *http.Request {
	req, err := http.NewRequest("POST", base+path, body)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return req
}

func get(base, path string) *http.Request {
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		panic(err)
	}
	return req
}

const formType = "application/x-www-form-urlencoded"

// badRequests is the malformed load: each kind is well-formed but for one
// fault, so that it would change the database if that fault got through.
func badRequests() []badRequest {
	good := signupForm("bad-input-never@example.com").Encode()
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	huge := strings.Repeat("a", 1<<20)
	return []badRequest{
		{"json body", 415, func(b string) *http.Request {
			return post(b, "/signup", "application/json", strings.NewReader(`{"email":"a@example.com","password":"`+password+`"}`))
		}},
		{"text/plain body", 415, func(b string) *http.Request { return post(b, "/signup", "text/plain", strings.NewReader(good)) }},
		{"multipart body", 415, func(b string) *http.Request {
			return post(b, "/signup", "multipart/form-data; boundary=x",
				strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@example.com\r\n--x--\r\n"))
		}},
		{"no content type", 415, func(b string) *http.Request { return post(b, "/signup", "", strings.NewReader(good)) }},
		{"garbled content type", 415, func(b string) *http.Request {
			return post(b, "/signup", "application/x-www-form-urlencoded; ===", strings.NewReader(good))
		}},
		{"1 MiB body with a length", 413, func(b string) *http.Request {
			return post(b, "/signup", formType, strings.NewReader(good+"&pad="+huge))
		}},
		{"1 MiB body chunked", 413, func(b string) *http.Request {
			return post(b, "/signup", formType, io.MultiReader(strings.NewReader(good+"&pad="), strings.NewReader(huge)))
		}},
		{"CRLF in the address", 400, func(b string) *http.Request {
			return post(b, "/signup", formType, strings.NewReader(form("email", "crlf@example.com\r\nBcc: victim@example.com", "password", password)))
		}},
		{"NUL in the address", 400, func(b string) *http.Request {
			return post(b, "/signup", formType, strings.NewReader(form("email", "nul\x00@example.com", "password", password)))
		}},
		{"NUL in the password", 400, func(b string) *http.Request {
			return post(b, "/signup", formType, strings.NewReader(form("email", "nulpw@example.com", "password", password+"\x00")))
		}},
		{"invalid UTF-8", 400, func(b string) *http.Request {
			return post(b, "/signup", formType, strings.NewReader(form("email", "utf\xff\xfe@example.com", "password", password)))
		}},
		{"invalid UTF-8 password", 400, func(b string) *http.Request {
			return post(b, "/signup", formType, strings.NewReader(form("email", "utfpw@example.com", "password", password+"\xc3\x28")))
		}},
		{"broken percent-encoding", 400, func(b string) *http.Request {
			return post(b, "/signup", formType, strings.NewReader("email=pct%zz@example.com&password=a+long+and+unusual+passphrase%"))
		}},
		{"address sent twice", 400, func(b string) *http.Request {
			return post(b, "/signup", formType, strings.NewReader(form("email", "twice1@example.com", "email", "twice2@example.com", "password", password)))
		}},
		{"cross-origin signup", 403, func(b string) *http.Request {
			req := post(b, "/signup", formType, strings.NewReader(form("email", "csrf@example.com", "password", password)))
			req.Header.Set("Origin", "https://evil.example")
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			return req
		}},
		{"cross-origin signup, Origin only", 403, func(b string) *http.Request {
			req := post(b, "/signup", formType, strings.NewReader(form("email", "csrf2@example.com", "password", password)))
			req.Header.Set("Origin", "http://127.0.0.1:1")
			req.Header.Del("Sec-Fetch-Site")
			return req
		}},
		{"cross-origin resend", 403, func(b string) *http.Request {
			req := post(b, "/confirm/resend", formType, strings.NewReader(form("email", "csrf@example.com")))
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			return req
		}},
		{"cross-origin login", 403, func(b string) *http.Request {
			req := post(b, "/login", formType, strings.NewReader(form("email", "csrf@example.com", "password", password)))
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			return req
		}},
		{"CRLF in a resend", 400, func(b string) *http.Request {
			return post(b, "/confirm/resend", formType, strings.NewReader(form("email", "r@example.com\r\n")))
		}},
		{"NUL in a login", 400, func(b string) *http.Request {
			return post(b, "/login", formType, strings.NewReader(form("email", "l\x00@example.com", "password", password)))
		}},
		{"garbage token", 400, func(b string) *http.Request { return get(b, "/confirm?token=garbage") }},
		{"token of binary junk", 400, func(b string) *http.Request {
			return get(b, "/confirm?token="+url.QueryEscape("\x00\xff\r\n<script>"))
		}},
		{"well-formed unknown token", 400, func(b string) *http.Request {
			return get(b, "/confirm?token="+strings.Repeat("A", 43))
		}},
		{"8 KiB token", 400, func(b string) *http.Request { return get(b, "/confirm?token="+strings.Repeat("x", 8<<10)) }},
		{"garbage session cookie", 200, func(b string) *http.Request {
			req := get(b, "/")
			req.Header.Set("Cookie", "session=%%%%\"; session="+strings.Repeat("z", 4<<10)+"; session=")
			return req
		}},
		{"logout with a garbage session", 303, func(b string) *http.Request {
			req := post(b, "/logout", formType, strings.NewReader(""))
			req.AddCookie(&http.Cookie{Name: "session", Value: "not-a-session"})
			return req
		}},
		{"PUT signup", 405, func(b string) *http.Request {
			req := post(b, "/signup", formType, strings.NewReader(good))
			req.Method = "PUT"
			return req
		}},
		{"40 KiB of headers", 431, func(b string) *http.Request {
			req := post(b, "/signup", formType, strings.NewReader(good))
			req.Header.Set("X-Junk", strings.Repeat("j", 40<<10))
			return req
		}},
	}
}

// TestBadInputAtVolume sends thousands of malformed requests from several
// clients: each gets its 4xx (never a 5xx, never a hang), the database is
// unchanged table by table, nothing is logged as an error, and afterwards
// the server is healthy and a normal signup gets its confirmation.
func TestBadInputAtVolume(t *testing.T) {
	t.Parallel()
	const (
		rounds  = 200
		clients = 8
	)
	mail := startMail(t, devmail.Faults{})
	dbURL := storetest.URL(t)
	p := e2e.Start(t, fastBinary, webEnv(dbURL, mail))
	base := p.URL()
	e2e.WaitReady(t, base, 30*time.Second)
	db := openDB(t, dbURL)
	// One real account with its confirmation, so that tables are not all
	// empty and a change to existing rows would show.
	c := e2e.NewClient()
	c.Signup(t, base, "existing@example.com")
	waitConfirmations(t, mail, []string{"existing@example.com"}, 2*time.Minute)
	waitOutboxSettled(t, db, 2*time.Minute)
	before := tableCounts(t, db)

	kinds := badRequests()
	type key struct {
		kind   string
		status int
	}
	var (
		mu      sync.Mutex
		got     = map[key]int{}
		errs    = map[string]error{}
		slowest time.Duration
	)
	jobs := make(chan badRequest)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			hc := &http.Client{
				Timeout:       10 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			for k := range jobs {
				start := time.Now()
				res, err := hc.Do(k.build(base))
				status := 0
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					status = res.StatusCode
				}
				took := time.Since(start)
				mu.Lock()
				got[key{k.name, status}]++
				if err != nil {
					errs[k.name] = err
				}
				slowest = max(slowest, took)
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	for range rounds {
		for _, k := range kinds {
			jobs <- k
		}
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)

	after := tableCounts(t, db)
	t.Logf("%d malformed requests (%d kinds) from %d clients in %v, slowest %v; rows per table before %v, after %v",
		rounds*len(kinds), len(kinds), clients, took.Round(time.Millisecond), slowest.Round(time.Millisecond), before, after)
	for _, k := range kinds {
		if n := got[key{k.name, k.want}]; n != rounds {
			var other []string
			for kk, n := range got {
				if kk.kind == k.name && kk.status != k.want {
					other = append(other, fmt.Sprintf("%d×%d", n, kk.status))
				}
			}
			t.Errorf("%s: %d of %d answered %d; others: %v (last error: %v)", k.name, n, rounds, k.want, other, errs[k.name])
		}
	}
	if !maps.Equal(before, after) {
		t.Errorf("the database changed: rows per table before %v, after %v", before, after)
	}
	if n := strings.Count(p.Log(), `"level":"ERROR"`); n > 0 {
		t.Errorf("%d errors logged by malformed requests", n)
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("%s after the load: %v", path, err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("%s after the load: %d", path, res.StatusCode)
		}
	}
	c.Signup(t, base, "after-the-load@example.com")
	if d := waitConfirmations(t, mail, []string{"after-the-load@example.com"}, 2*time.Minute); len(d.missing) > 0 {
		t.Error("a normal signup after the load got no confirmation")
	}
}
