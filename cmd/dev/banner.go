package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"regexp"
	"sync"
)

// listeners are the addresses web logged it listens on, by server name
// ("http", "ops").
type listeners map[string]string

// banner says where to find what runs, once web has started.
type banner struct {
	inbox    string // the dev inbox's URL; empty when SMTP_URL was given
	database string // redacted
}

func (b banner) print(w io.Writer, l listeners) {
	var s bytes.Buffer
	s.WriteString("\n")
	if addr, ok := l["http"]; ok {
		fmt.Fprintf(&s, "  app:        %s\n", siteURL(addr))
	}
	if b.inbox != "" {
		fmt.Fprintf(&s, "  dev inbox:  %s\n", b.inbox)
	}
	if addr, ok := l["ops"]; ok {
		fmt.Fprintf(&s, "  status:     %s\n", siteURL(addr))
	}
	fmt.Fprintf(&s, "  database:   %s\n\n  Ctrl-C stops everything.\n\n", b.database)
	w.Write(s.Bytes())
}

// siteURL is the http URL of a listening address, with localhost for an
// address that listens on every interface.
func siteURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && (ip.IsUnspecified() || ip.IsLoopback()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// logWatch passes web's log through to out and watches it for the
// listeners web opens and for the host having started, when it calls
// ready once with what listens. It reads both of web's log formats.
type logWatch struct {
	out   io.Writer
	ready func(listeners)

	mu      sync.Mutex
	partial []byte
	seen    listeners
	done    bool
}

var (
	textListening = regexp.MustCompile(`\bmsg=listening server=(\S+) addr=(\S+)`)
	textStarted   = regexp.MustCompile(`\bmsg="host started"`)
)

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.out.Write(p)
	if w.done {
		return n, err
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(w.partial[:i])
		w.partial = w.partial[i+1:]
	}
	return n, err
}

// flush forgets a last line without its newline.
func (w *logWatch) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = nil
}

func (w *logWatch) line(l []byte) {
	if w.seen == nil {
		w.seen = listeners{}
	}
	var rec struct{ Msg, Server, Addr string }
	if json.Unmarshal(l, &rec) != nil {
		rec.Msg = ""
		if m := textListening.FindSubmatch(l); m != nil {
			rec.Msg, rec.Server, rec.Addr = "listening", string(m[1]), string(m[2])
		} else if textStarted.Match(l) {
			rec.Msg = "host started"
		}
	}
	switch rec.Msg {
	case "listening":
		w.seen[rec.Server] = rec.Addr
	case "host started":
		w.done = true
		w.ready(w.seen)
	}
}
