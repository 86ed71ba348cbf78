package account

import (
	"strings"
	"testing"
	"time"

	"signup/web"
)

// renderToken's content, cached with a placeholder, is exactly what the
// templates make of the real link, for every token and when the other data
// change.
func TestRenderTokenIsTheTemplatesOutput(t *testing.T) {
	r, err := newRenderer(web.Emails, "Signup")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "https://signup.example.test/app/confirm?token="
	datas := []emailData{
		{SiteURL: "https://signup.example.test/app/", LoginURL: "https://signup.example.test/app/login", ValidFor: "24 hours"},
		{SiteURL: "https://other.example.test/", LoginURL: "https://other.example.test/login", ValidFor: "2 days"},
	}
	for _, data := range append(datas, datas[0]) {
		for range 20 {
			token, _, err := NewToken()
			if err != nil {
				t.Fatal(err)
			}
			for _, tok := range []string{token, "a%2Bb", "<&>"} {
				got, err := r.renderToken(MailConfirm, data, prefix, tok)
				if err != nil {
					t.Fatal(err)
				}
				want := data
				want.Link = prefix + tok
				direct, err := r.render(MailConfirm, want)
				if err != nil {
					t.Fatal(err)
				}
				if got != direct {
					t.Fatalf("token %q, data %+v:\ncached:\n%+v\ntemplates:\n%+v", tok, data, got, direct)
				}
			}
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24 hours", 48 * time.Hour: "2 days", 168 * time.Hour: "7 days", time.Hour: "1 hour",
		90 * time.Minute: "90 minutes", time.Minute: "1 minute", 1500 * time.Millisecond: "1.5s",
	} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// Every email names the product in its subject, text and HTML, and none
// says "confirm the address", which SpamAssassin's YOUR_DELIVERY_ADDRESS
// rule scores as a shipping scam.
func TestEveryEmailNamesTheSite(t *testing.T) {
	const site = "Acme Widgets"
	r, err := newRenderer(web.Emails, site)
	if err != nil {
		t.Fatal(err)
	}
	data := emailData{
		SiteURL: "https://acme.example/", Link: "https://acme.example/confirm?token=x", ValidFor: "24 hours",
		LoginURL: "https://acme.example/login", DeleteAfter: "9 January 2030",
	}
	for k := range mailKinds {
		out, err := r.render(k, data)
		if err != nil {
			t.Fatal(err)
		}
		for part, s := range map[string]string{"subject": out.Subject, "text": out.Text, "html": out.HTML} {
			if !strings.Contains(s, site) {
				t.Errorf("%s %s does not name %q:\n%s", k, part, site, s)
			}
			if strings.Contains(strings.ToLower(s), "confirm the address") {
				t.Errorf("%s %s says \"confirm the address\"", k, part)
			}
		}
	}
}
