package devmail

import (
	"slices"
	"strings"
	"testing"
)

func crlf(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n"))
}

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name       string
		raw        []byte
		subject    string
		text       string
		html       string
		links      []string
		parseError bool
	}{
		{
			name:    "plain message without MIME headers",
			raw:     crlf("Subject: hi", "", "see https://example.test/a.", ""),
			subject: "hi",
			text:    "see https://example.test/a.\n",
			links:   []string{"https://example.test/a"},
		},
		{
			name: "base64 html and quoted-printable text in alternative",
			raw: crlf(
				"Subject: =?UTF-8?B?R3LDvMOfZSDinJM=?=",
				"Content-Type: multipart/alternative; boundary=b1",
				"",
				"--b1",
				"Content-Type: text/plain; charset=utf-8",
				"Content-Transfer-Encoding: quoted-printable",
				"",
				"Gr=C3=BC=C3=9Fe: https://example.test/confirm?token=3Dx=",
				"yz&a=3D1",
				"--b1",
				"Content-Type: text/html; charset=utf-8",
				"Content-Transfer-Encoding: base64",
				"",
				"PHA+PGEgaHJlZj0iaHR0cHM6Ly9leGFtcGxlLnRlc3QvY29uZmlybT90b2tlbj14eXomYW1wO2E9",
				"MSI+R3LDvMOfZTwvYT48L3A+",
				"--b1--",
				"",
			),
			subject: "Grüße ✓",
			text:    "Grüße: https://example.test/confirm?token=xyz&a=1",
			html:    `<p><a href="https://example.test/confirm?token=xyz&amp;a=1">Grüße</a></p>`,
			links:   []string{"https://example.test/confirm?token=xyz&a=1"},
		},
		{
			name: "nested mixed, related and alternative with an attachment",
			raw: crlf(
				"Subject: nested",
				"Content-Type: multipart/mixed; boundary=outer",
				"",
				"--outer",
				"Content-Type: multipart/related; boundary=rel",
				"",
				"--rel",
				"Content-Type: multipart/alternative; boundary=alt",
				"",
				"--alt",
				"Content-Type: text/plain",
				"",
				"text part",
				"--alt",
				"Content-Type: text/html",
				"",
				"<a href='http://example.test/h'>x</a> <a href=https://example.test/u>y</a> <a href=\"mailto:a@b\">z</a>",
				"--alt--",
				"--rel",
				"Content-Type: image/png",
				"Content-Transfer-Encoding: base64",
				"",
				"iVBORw0KGgo=",
				"--rel--",
				"--outer",
				"Content-Type: text/plain",
				"Content-Disposition: attachment; filename=notes.txt",
				"",
				"attached, not the body",
				"--outer--",
				"",
			),
			subject: "nested",
			text:    "text part",
			html:    "<a href='http://example.test/h'>x</a> <a href=https://example.test/u>y</a> <a href=\"mailto:a@b\">z</a>",
			links:   []string{"http://example.test/h", "https://example.test/u"},
		},
		{
			name: "latin-1 charset",
			raw: crlf(
				"Subject: =?iso-8859-1?q?=E9t=E9?=",
				"Content-Type: text/plain; charset=iso-8859-1",
				"Content-Transfer-Encoding: quoted-printable",
				"",
				"caf=E9",
			),
			subject: "été",
			text:    "café",
		},
		{
			name:       "broken header keeps what parsed",
			raw:        crlf("Subject: kept", "this is not a header", "", "body"),
			subject:    "kept",
			parseError: true,
		},
		{
			name: "multipart without boundary",
			raw: crlf(
				"Subject: no boundary",
				"Content-Type: multipart/alternative",
				"",
				"body",
			),
			subject:    "no boundary",
			parseError: true,
		},
		{
			name: "bad base64 in one part does not lose the other",
			raw: crlf(
				"Content-Type: multipart/alternative; boundary=b",
				"",
				"--b",
				"Content-Type: text/plain",
				"Content-Transfer-Encoding: base64",
				"",
				"!!!not base64!!!",
				"--b",
				"Content-Type: text/html",
				"",
				"<p>fine</p>",
				"--b--",
			),
			html:       "<p>fine</p>",
			parseError: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := parseMessage(tt.raw)
			if m.Subject != tt.subject {
				t.Errorf("subject = %q, want %q", m.Subject, tt.subject)
			}
			if m.Text != tt.text {
				t.Errorf("text = %q, want %q", m.Text, tt.text)
			}
			if m.HTML != tt.html {
				t.Errorf("html = %q, want %q", m.HTML, tt.html)
			}
			if !slices.Equal(m.Links, tt.links) {
				t.Errorf("links = %q, want %q", m.Links, tt.links)
			}
			if (m.ParseError != "") != tt.parseError {
				t.Errorf("parse error = %q, want one: %v", m.ParseError, tt.parseError)
			}
			if string(m.Raw) != string(tt.raw) || m.Header == nil {
				t.Error("raw or header missing")
			}
		})
	}
}

func TestSplitURLs(t *testing.T) {
	tests := []struct {
		text string
		urls []string
	}{
		{"no links here", nil},
		{"go to https://a.test/x?y=1&z=2, then", []string{"https://a.test/x?y=1&z=2"}},
		{"(see http://a.test/p_(1)) and <https://b.test/>.", []string{"http://a.test/p_(1)", "https://b.test/"}},
		{"HTTPS://A.TEST/up; http:// alone", []string{"HTTPS://A.TEST/up"}},
		{"'https://a.test/q' \"https://a.test/r\"", []string{"https://a.test/q", "https://a.test/r"}},
	}
	for _, tt := range tests {
		var urls []string
		var rebuilt strings.Builder
		for _, seg := range splitURLs(tt.text) {
			if seg.URL != "" {
				urls = append(urls, seg.URL)
			}
			rebuilt.WriteString(seg.Text)
		}
		if !slices.Equal(urls, tt.urls) {
			t.Errorf("splitURLs(%q) urls = %q, want %q", tt.text, urls, tt.urls)
		}
		if rebuilt.String() != tt.text {
			t.Errorf("splitURLs(%q) segments rebuild %q", tt.text, rebuilt.String())
		}
	}
}
