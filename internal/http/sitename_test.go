package http_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	apphttp "signup/internal/http"
)

// Every page names the product SITE_NAME in its title and header, the
// cached blank forms included.
func TestPagesNameTheSite(t *testing.T) {
	site, err := apphttp.NewSite(apphttp.SiteConfig{SiteName: "Acme & Widgets"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(site)
	defer srv.Close()
	for _, path := range []string{"/signup", "/login", "/confirm/resend", "/no-such-page"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		page := string(body)
		if !strings.Contains(page, `<a class="brand" href="/">Acme &amp; Widgets</a>`) || !strings.Contains(page, "· Acme &amp; Widgets</title>") {
			t.Errorf("%s does not name the site in its header and title:\n%s", path, page)
		}
	}
}
