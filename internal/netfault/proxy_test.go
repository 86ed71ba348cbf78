package netfault

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echo serves lines back until the client goes.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
	return time.Since(start)
}

func TestProxy(t *testing.T) {
	p, err := Listen(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	// The fastest of a few round trips: what the proxy adds, without the
	// moments a busy machine does not schedule the test at all.
	fastest := roundTrip(t, c, r)
	for range 4 {
		fastest = min(fastest, roundTrip(t, c, r))
	}
	if fastest > 100*time.Millisecond {
		t.Errorf("the fastest of 5 round trips without latency took %v", fastest)
	}
	p.SetLatency(50 * time.Millisecond)
	if d := roundTrip(t, c, r); d < 100*time.Millisecond {
		t.Errorf("round trip with 50 ms a chunk each way took %v, want at least 100 ms", d)
	}
	p.SetLatency(0)
	if p.Open() != 1 || p.Peak() != 1 || p.Total() != 1 {
		t.Errorf("open %d, peak %d, total %d; want 1 each", p.Open(), p.Peak(), p.Total())
	}

	p.Cut()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("read after Cut succeeded")
	}
	// New connections still work after a cut.
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	roundTrip(t, c2, bufio.NewReader(c2))
}
