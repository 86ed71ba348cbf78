package devmail

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"signup/internal/pagetest"
)

// get fetches url without keep-alive (so no client goroutine outlives the
// test) and returns the status, content type and body.
func get(t *testing.T, method, url string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		// Report redirects instead of following them.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestInbox(t *testing.T) {
	srv := setup(t, Config{})
	base := srv.InboxURL()
	link := "http://localhost:8080/confirm?token=t0k&next=/"
	msg := newMsg(t, "alice@example.test", "Confirm <your> account",
		"Welcome!\nConfirm: "+link+"\nBye <script>",
		`<p style="color:red">Click <a href="`+strings.ReplaceAll(link, "&", "&amp;")+`">here</a> "now"</p><script>alert(1)</script>`)
	if err := send(t, srv, msg); err != nil {
		t.Fatal(err)
	}

	status, ctype, body := get(t, "GET", base+"/")
	if status != 200 || !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("list: %d %s", status, ctype)
	}
	pagetest.MustContain(t, "list", body,
		`<meta http-equiv="refresh" content="2">`,
		`<a href="/messages/1">Confirm &lt;your&gt; account</a>`,
		`alice@example.test`, `app@example.test`)

	_, _, body = get(t, "GET", base+"/?refresh=off")
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Error("list with refresh=off still refreshes")
	}

	status, _, body = get(t, "GET", base+"/messages/1")
	if status != 200 {
		t.Fatalf("message: %d", status)
	}
	escaped := "http://localhost:8080/confirm?token=t0k&amp;next=/"
	pagetest.MustContain(t, "message page", body,
		`<a class="msg-link" href="`+escaped+`">`,
		`Confirm: <a href="`+escaped+`">`+escaped+`</a>`,
		`Bye &lt;script&gt;`,
		`<iframe title="HTML part of the message" sandbox="allow-popups allow-top-navigation-by-user-activation" src="/messages/1/html">`,
		`<dt>Message-ID</dt>`, `<dt>Date</dt>`, `<dt>Subject</dt><dd>Confirm &lt;your&gt; account</dd>`,
		`href="/messages/1/raw"`)
	if strings.Contains(body, "http-equiv") || strings.Contains(body, "<script>") {
		t.Error("message page refreshes or contains a raw script tag")
	}

	// The HTML part is served on its own, sandboxed by its policy: no scripts.
	req, _ := http.NewRequest("GET", base+"/messages/1/html", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || strings.Contains(csp, "allow-scripts") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("HTML part CSP = %q", csp)
	}
	status, ctype, body = get(t, "GET", base+"/messages/1/html")
	if status != 200 || ctype != "text/html; charset=utf-8" || body != srv.Messages()[0].HTML {
		t.Errorf("html part: %d %s %q", status, ctype, body)
	}

	status, ctype, body = get(t, "GET", base+"/messages/1/raw")
	if status != 200 || ctype != "text/plain; charset=utf-8" || body != string(srv.Messages()[0].Raw) {
		t.Errorf("raw: %d %s, body equal %v", status, ctype, body == string(srv.Messages()[0].Raw))
	}

	status, ctype, body = get(t, "GET", base+"/api/messages")
	if status != 200 || ctype != "application/json" {
		t.Fatalf("api: %d %s", status, ctype)
	}
	var api []apiMessage
	if err := json.Unmarshal([]byte(body), &api); err != nil {
		t.Fatalf("api json: %v\n%s", err, body)
	}
	if len(api) != 1 || api[0].ID != 1 || api[0].Subject != "Confirm <your> account" || len(api[0].Links) != 1 || api[0].Links[0] != link ||
		api[0].From != "app@example.test" || api[0].To[0] != "alice@example.test" || !strings.Contains(api[0].HTML, "Click") || api[0].Received.IsZero() {
		t.Errorf("api: %+v", api)
	}
	status, _, body = get(t, "GET", base+"/api/messages/1")
	if status != 200 || !strings.Contains(body, `"id":1`) {
		t.Errorf("api message: %d %s", status, body)
	}

	for _, path := range []string{"/messages/2", "/messages/x", "/messages/2/raw", "/nope"} {
		status, _, body := get(t, "GET", base+path)
		if status != 404 || !strings.Contains(body, "Not found") {
			t.Errorf("%s: %d", path, status)
		}
	}
	if status, _, _ := get(t, "GET", base+"/api/messages/2"); status != 404 {
		t.Errorf("api unknown id: %d", status)
	}

	if status, _, _ := get(t, "POST", base+"/api/reset"); status != http.StatusNoContent || len(srv.Messages()) != 0 {
		t.Errorf("api reset: %d, %d messages left", status, len(srv.Messages()))
	}
	_, _, body = get(t, "GET", base+"/api/messages")
	if strings.TrimSpace(body) != "[]" {
		t.Errorf("empty api list = %q", body)
	}
	_, _, body = get(t, "GET", base+"/")
	pagetest.MustContain(t, "empty list", body, "No messages yet.", srv.SMTPURL())
}

func TestInboxResetForm(t *testing.T) {
	srv := New(Config{})
	srv.store(parseMessage(crlf("Subject: x", "", "y")))
	h := srv.Handler()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/reset", nil))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" || len(srv.Messages()) != 0 {
		t.Errorf("reset form: %d to %q, %d messages left", rec.Code, rec.Header().Get("Location"), len(srv.Messages()))
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/reset", nil))
	if rec.Code == http.StatusOK || rec.Code == http.StatusNoContent {
		t.Errorf("GET /api/reset answered %d", rec.Code)
	}
}
