package main

import (
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// writeLog is a net.Conn that records each Write it is given, to show how
// many system calls, and so packets, the bytes went out in.
type writeLog struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	return w.Conn.Write(p)
}

func (w *writeLog) seen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.writes)
}

func TestGroupingConnWritesRepliesWhenItNextReads(t *testing.T) {
	server, client := tcpPair(t)
	// A reply that never comes fails the test instead of hanging it.
	if err := client.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	log := &writeLog{Conn: server}
	c := &groupingConn{Conn: log}

	for _, reply := range []string{"250 2.0.0 sender ok\r\n", "250 2.0.0 recipient ok\r\n", "354 go ahead\r\n"} {
		if _, err := c.Write([]byte(reply)); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if got := log.seen(); len(got) != 0 {
		t.Fatalf("written before the server read again: %q", got)
	}

	// The server's next Read sends the group; the client reads it and
	// sends its next command, which that Read returns.
	type result struct {
		line string
		err  error
	}
	read := make(chan result, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		read <- result{string(buf[:n]), err}
	}()
	want := "250 2.0.0 sender ok\r\n250 2.0.0 recipient ok\r\n354 go ahead\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatalf("client read: %v", err)
	}
	if string(got) != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
	if _, err := client.Write([]byte("QUIT\r\n")); err != nil {
		t.Fatalf("client write: %v", err)
	}
	if r := <-read; r.err != nil || r.line != "QUIT\r\n" {
		t.Fatalf("server Read = %q, %v; want %q", r.line, r.err, "QUIT\r\n")
	}
	if got := log.seen(); !slices.Equal(got, []string{want}) {
		t.Fatalf("writes = %q, want the three replies in one", got)
	}

	// Close sends what is left before closing.
	if _, err := c.Write([]byte("221 2.0.0 bye\r\n")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	last, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("client read to the end: %v", err)
	}
	if string(last) != "221 2.0.0 bye\r\n" {
		t.Fatalf("client got %q at the end, want the last reply", last)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}
