package devmail

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"regexp"
	"strings"

	"golang.org/x/text/encoding/htmlindex"
)

// maxDepth bounds multipart nesting; real mail nests three or four deep.
const maxDepth = 16

// parseMessage extracts headers and the text and HTML parts of raw. It never
// fails: what does not parse is reported in ParseError and the rest kept.
func parseMessage(raw []byte) Message {
	m := Message{Raw: raw}
	// textproto rather than mail.ReadMessage: it returns the header fields
	// read before an error instead of nothing.
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw)))
	hdr, err := r.ReadMIMEHeader()
	if hdr == nil {
		hdr = textproto.MIMEHeader{}
	}
	m.Header = mail.Header(hdr)
	m.Subject = decodeHeader(hdr.Get("Subject"))
	if err != nil && !errors.Is(err, io.EOF) {
		m.ParseError = fmt.Sprintf("header: %v", err)
		return m
	}

	var p partCollector
	p.walk(hdr, r.R, 0)
	if p.err != nil {
		m.ParseError = p.err.Error()
	}
	m.Text, m.HTML = p.text, p.html
	m.Links = extractLinks(m.Text, m.HTML)
	return m
}

// partCollector keeps the first text/plain and text/html parts found, and
// the first error; a broken part does not stop the walk through the others.
type partCollector struct {
	text, html       string
	hasText, hasHTML bool
	err              error
}

func (p *partCollector) fail(err error) {
	if p.err == nil && err != nil {
		p.err = err
	}
}

func (p *partCollector) walk(h textproto.MIMEHeader, body io.Reader, depth int) {
	if depth > maxDepth {
		p.fail(errors.New("multipart nested too deep"))
		return
	}
	mediaType, params := "text/plain", map[string]string{}
	if ct := h.Get("Content-Type"); ct != "" {
		mt, ps, err := mime.ParseMediaType(ct)
		if mt == "" {
			p.fail(fmt.Errorf("content type %q: %w", ct, err))
			return
		}
		// A bad parameter still leaves a usable media type.
		mediaType, params = mt, ps
	}

	if strings.HasPrefix(mediaType, "multipart/") {
		boundary := params["boundary"]
		if boundary == "" {
			p.fail(fmt.Errorf("%s without boundary", mediaType))
			return
		}
		mr := multipart.NewReader(body, boundary)
		for {
			// NextRawPart: decode transfer encodings here, uniformly.
			part, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				p.fail(fmt.Errorf("%s: %w", mediaType, err))
				return
			}
			p.walk(part.Header, part, depth+1)
		}
	}

	if disp, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); disp == "attachment" {
		return
	}
	switch {
	case mediaType == "text/plain" && !p.hasText:
		s, err := decodeBody(body, h.Get("Content-Transfer-Encoding"), params["charset"])
		p.text, p.hasText = s, true
		p.fail(err)
	case mediaType == "text/html" && !p.hasHTML:
		s, err := decodeBody(body, h.Get("Content-Transfer-Encoding"), params["charset"])
		p.html, p.hasHTML = s, true
		p.fail(err)
	}
}

// decodeBody undoes the transfer encoding, converts charset to UTF-8 and
// normalises line ends to LF.
func decodeBody(body io.Reader, cte, charset string) (string, error) {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "", "7bit", "8bit", "binary":
		r = body
	default:
		b, _ := io.ReadAll(body)
		return normaliseNewlines(string(b)), fmt.Errorf("unknown transfer encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		err = fmt.Errorf("decode %s body: %w", cte, err)
	}
	return normaliseNewlines(toUTF8(b, charset)), err
}

// toUTF8 converts b from charset; an unknown charset leaves b as it is.
func toUTF8(b []byte, charset string) string {
	switch strings.ToLower(strings.TrimSpace(charset)) {
	case "", "utf-8", "utf8", "us-ascii":
		return string(b)
	}
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return string(b)
	}
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return string(b)
	}
	return string(out)
}

func normaliseNewlines(s string) string {
	return strings.ReplaceAll(s, "\r\n", "\n")
}

var wordDecoder = &mime.WordDecoder{
	CharsetReader: func(charset string, input io.Reader) (io.Reader, error) {
		enc, err := htmlindex.Get(charset)
		if err != nil {
			return nil, err
		}
		return enc.NewDecoder().Reader(input), nil
	},
}

// decodeHeader decodes RFC 2047 encoded words; undecodable input is
// returned unchanged.
func decodeHeader(v string) string {
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

var (
	// urlPattern finds http(s) URLs in plain text; trimURL then drops the
	// punctuation that usually ends the sentence around them.
	urlPattern = regexp.MustCompile("(?i)\\bhttps?://[^\\s<>\"'`]+")
	// hrefPattern finds href attribute values, quoted or not.
	hrefPattern = regexp.MustCompile(`(?i)\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>]+))`)
)

// textSegment is a run of plain text, or a URL when URL is set.
type textSegment struct {
	Text string
	URL  string
}

// splitURLs cuts text into plain runs and the http(s) URLs inside it.
func splitURLs(text string) []textSegment {
	var out []textSegment
	last := 0
	for _, loc := range urlPattern.FindAllStringIndex(text, -1) {
		u := trimURL(text[loc[0]:loc[1]])
		if u == "" {
			continue
		}
		if loc[0] > last {
			out = append(out, textSegment{Text: text[last:loc[0]]})
		}
		out = append(out, textSegment{Text: u, URL: u})
		last = loc[0] + len(u)
	}
	if last < len(text) {
		out = append(out, textSegment{Text: text[last:]})
	}
	return out
}

// trimURL drops trailing sentence punctuation, and a closing bracket that
// has no opening one inside the URL.
func trimURL(u string) string {
	for u != "" {
		c := u[len(u)-1]
		switch {
		case strings.IndexByte(".,;:!?*", c) >= 0:
		case c == ')' && strings.Count(u, "(") < strings.Count(u, ")"):
		case c == ']' && strings.Count(u, "[") < strings.Count(u, "]"):
		default:
			if scheme := strings.Index(u, "://"); scheme < 0 || scheme+3 == len(u) {
				return ""
			}
			return u
		}
		u = u[:len(u)-1]
	}
	return ""
}

// extractLinks lists the http(s) URLs in the text part and the hrefs of the
// HTML part, in order, without duplicates.
func extractLinks(text, htmlBody string) []string {
	var links []string
	seen := map[string]bool{}
	add := func(u string) {
		if u != "" && !seen[u] {
			seen[u] = true
			links = append(links, u)
		}
	}
	for _, seg := range splitURLs(text) {
		add(seg.URL)
	}
	for _, m := range hrefPattern.FindAllStringSubmatch(htmlBody, -1) {
		u := strings.TrimSpace(html.UnescapeString(m[1] + m[2] + m[3]))
		if lower := strings.ToLower(u); strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
			add(u)
		}
	}
	return links
}
