// Package pagetest holds what tests of server-rendered pages share: posting
// a form as a browser would, with fetch metadata, and reading a page's
// parts.
package pagetest

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// PostForm posts form to target as a browser would from origin, with
// Sec-Fetch-Site set to fetchSite, and returns the answer without
// following a redirect. The body is closed.
func PostForm(t testing.TB, target, origin, fetchSite string, form url.Values) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	req.Header.Set("Sec-Fetch-Site", fetchSite)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// Get fetches target and returns the answer with its body read.
func Get(t testing.TB, target string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Do(t, http.DefaultClient, req)
}

// Do sends req with client and returns the answer with its body read.
func Do(t testing.TB, client *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// Section returns the HTML of page's <section> with this id, and fails
// the test when there is none.
func Section(t testing.TB, page, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<section id="` + regexp.QuoteMeta(id) + `".*?</section>`).FindString(page)
	if m == "" {
		t.Fatalf("page has no section %q:\n%s", id, page)
	}
	return m
}

// MustContain reports, naming what, each of wants that body lacks.
func MustContain(t testing.TB, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, body)
		}
	}
}
