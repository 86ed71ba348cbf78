package http

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"signup/internal/account"
)

// FuzzDecodeForm feeds arbitrary bodies and content types through the form
// decoder and the account rules: nothing may panic, and whatever is
// accepted must be clean one-line UTF-8 that validation can judge.
func FuzzDecodeForm(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "email=a%40example.com&password=correct+horse")
	f.Add("application/x-www-form-urlencoded", "email=a%40example.com%0D%0ABcc%3A+x%40y.com&password=x")
	f.Add("application/x-www-form-urlencoded", "email=%ff%fe&password=%00")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "email=&email=&password")
	f.Add("application/x-www-form-urlencoded", "%zz=1&email=%")
	f.Add("multipart/form-data; boundary=x", "--x--")
	f.Add("text/plain", "email=a@b.c")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := httptest.NewRequest("POST", "/signup", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 16<<10)
		vals, fe := decodeForm(r, "email", "password")
		if fe != nil {
			if fe.Status < 400 || fe.Status > 499 {
				t.Fatalf("status %d", fe.Status)
			}
			if fe.Fields == nil && (fe.Title == "" || fe.Message == "") {
				t.Fatal("a refused form without a message")
			}
		}
		for k, v := range vals {
			if !utf8.ValidString(v) || hasControl(v) || v == "" {
				t.Fatalf("accepted %s=%q", k, v)
			}
		}
		if fe != nil {
			return
		}
		email, err := account.NormalizeEmail(vals["email"])
		if err == nil {
			if hasControl(email) || strings.ContainsAny(email, "\r\n") {
				t.Fatalf("normalized email %q has control characters", email)
			}
		}
		_ = account.ValidatePassword(vals["password"], email)
	})
}
