package devmail

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"join": strings.Join,
}).ParseFS(templateFS, "templates/*.html"))

// Handler is the web inbox. Start serves it on HTTPAddr; it is exported so
// it can also be mounted elsewhere or driven with httptest.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleList)
	mux.HandleFunc("GET /messages/{id}", s.handleMessage)
	mux.HandleFunc("GET /messages/{id}/raw", s.handleRaw)
	mux.HandleFunc("GET /messages/{id}/html", s.handleHTML)
	mux.HandleFunc("POST /reset", s.handleReset)
	mux.HandleFunc("GET /api/messages", s.handleAPIList)
	mux.HandleFunc("GET /api/messages/{id}", s.handleAPIMessage)
	mux.HandleFunc("POST /api/reset", s.handleAPIReset)
	mux.HandleFunc("/", s.handleNotFound)
	return securityHeaders(mux)
}

// securityHeaders keeps the inbox itself script-free; the HTML part of a
// message is further confined by its iframe sandbox.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-src 'self'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// page is what every HTML page needs for its frame.
type page struct {
	Title   string
	Refresh bool
	SMTPURL string
}

type listPage struct {
	page
	Messages []Message
}

type headerRow struct{ Name, Value string }

type messagePage struct {
	page
	Message
	Headers      []headerRow
	TextSegments []textSegment
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	msgs := s.Messages()
	slices.Reverse(msgs)
	s.render(w, http.StatusOK, "list", listPage{
		page:     page{Title: "Inbox", Refresh: r.URL.Query().Get("refresh") != "off", SMTPURL: s.SMTPURL()},
		Messages: msgs,
	})
}

func (s *Server) handleMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.lookup(r)
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	title := m.Subject
	if title == "" {
		title = "(no subject)"
	}
	s.render(w, http.StatusOK, "message", messagePage{
		page:         page{Title: title, SMTPURL: s.SMTPURL()},
		Message:      m,
		Headers:      headerRows(m),
		TextSegments: splitURLs(m.Text),
	})
}

func headerRows(m Message) []headerRow {
	rows := []headerRow{}
	for _, name := range []string{"From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-Id"} {
		if v := m.Header.Get(name); v != "" {
			if name == "Message-Id" {
				name = "Message-ID"
			}
			rows = append(rows, headerRow{name, decodeHeader(v)})
		}
	}
	rows = append(rows,
		headerRow{"Envelope from", m.From},
		headerRow{"Envelope to", strings.Join(m.To, ", ")},
		headerRow{"Received", m.Received.Format(time.RFC1123Z)},
	)
	transport := "plain text"
	if m.TLS {
		transport = "TLS"
	}
	if m.AuthUser != "" {
		transport += ", authenticated as " + m.AuthUser
	}
	return append(rows, headerRow{"Transport", transport})
}

func (s *Server) handleRaw(w http.ResponseWriter, r *http.Request) {
	m, ok := s.lookup(r)
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(m.Raw)
}

// handleHTML serves a message's HTML part for the message page's iframe,
// sandboxed by its own policy: no scripts, no forms, links open only on a
// click.
func (s *Server) handleHTML(w http.ResponseWriter, r *http.Request) {
	m, ok := s.lookup(r)
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-ancestors 'self'; sandbox allow-popups allow-top-navigation-by-user-activation")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(m.HTML))
}

func (s *Server) handleReset(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) handleNotFound(w http.ResponseWriter, _ *http.Request) {
	s.render(w, http.StatusNotFound, "notfound", page{Title: "Not found", SMTPURL: s.SMTPURL()})
}

// apiMessage is the JSON form of a Message.
type apiMessage struct {
	ID       int       `json:"id"`
	Received time.Time `json:"received"`
	From     string    `json:"from"`
	To       []string  `json:"to"`
	Subject  string    `json:"subject"`
	Text     string    `json:"text"`
	HTML     string    `json:"html"`
	Links    []string  `json:"links"`
}

func toAPI(m Message) apiMessage {
	return apiMessage{
		ID:       m.ID,
		Received: m.Received,
		From:     m.From,
		To:       nonNil(m.To),
		Subject:  m.Subject,
		Text:     m.Text,
		HTML:     m.HTML,
		Links:    nonNil(m.Links),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) handleAPIList(w http.ResponseWriter, _ *http.Request) {
	msgs := s.Messages()
	out := make([]apiMessage, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, toAPI(m))
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleAPIMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.lookup(r)
	if !ok {
		s.writeJSON(w, http.StatusNotFound, map[string]string{"error": "message not found"})
		return
	}
	s.writeJSON(w, http.StatusOK, toAPI(m))
}

func (s *Server) handleAPIReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// lookup finds the message named by the {id} path value.
func (s *Server) lookup(r *http.Request) (Message, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return Message{}, false
	}
	return s.message(id)
}

// render executes a page into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("devmail: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("devmail: encode json", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
