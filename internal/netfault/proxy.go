// Package netfault is a TCP proxy for tests that misbehaves on request: it
// delays every chunk it forwards, and can cut every connection at once. Put
// it between the application and PostgreSQL to make the database slow or
// make it vanish mid-query, without touching the server.
package netfault

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections from its 127.0.0.1 listener to a target
// address.
type Proxy struct {
	target  string
	ln      net.Listener
	latency atomic.Int64 // nanoseconds added before forwarding each chunk
	open    atomic.Int64
	peak    atomic.Int64
	total   atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	// closing is closed by Close: chunks still waiting out their latency
	// are dropped rather than waited for.
	closing chan struct{}
}

// Listen starts a proxy to target on a free 127.0.0.1 port.
func Listen(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netfault: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}, closing: make(chan struct{})}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays each chunk forwarded from now on, in either direction,
// by d (0 for none). Chunks of one direction keep their order, so a
// request and its answer each wait d: a round trip takes 2d more.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(max(d, 0))) }

// Open is the number of client connections open now.
func (p *Proxy) Open() int64 { return p.open.Load() }

// Peak is the most client connections that were open at once.
func (p *Proxy) Peak() int64 { return p.peak.Load() }

// Total is the number of client connections accepted so far.
func (p *Proxy) Total() int64 { return p.total.Load() }

// ResetPeak makes Peak start again from the connections open now.
func (p *Proxy) ResetPeak() { p.peak.Store(p.open.Load()) }

// Cut closes every connection open now, both sides, without a word to
// either: what a crashed server or a broken network looks like. New
// connections are still accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops accepting, cuts every connection, drops what is still
// waiting out its latency and waits for the forwarding goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		close(p.closing)
	}
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.total.Add(1)
		p.wg.Go(func() { p.serve(client) })
	}
}

// track registers c for Cut; false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *Proxy) serve(client net.Conn) {
	defer client.Close()
	n := p.open.Add(1)
	defer p.open.Add(-1)
	for {
		peak := p.peak.Load()
		if n <= peak || p.peak.CompareAndSwap(peak, n) {
			break
		}
	}
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	server, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client); done <- struct{}{} }()
	go func() { p.pipe(client, server); done <- struct{}{} }()
	<-done
	// One side ended: end the other too.
	client.Close()
	server.Close()
	<-done
}

// pipe copies src to dst, each chunk after the latency in force when it
// was read. A reader goroutine timestamps chunks so that latency adds up
// per chunk in flight, not per chunk in sequence: it models a long wire,
// not a slow pipe.
func (p *Proxy) pipe(dst, src net.Conn) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	chunks := make(chan chunk, 64)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{buf[:n], time.Now().Add(time.Duration(p.latency.Load()))}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		if wait := time.Until(c.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.closing:
				// Closed: the connections are cut, nothing more is
				// forwarded.
				t.Stop()
				src.Close()
				for range chunks {
				}
				return
			}
		}
		if _, err := dst.Write(c.b); err != nil {
			// The destination went away: end the reader and let it go.
			src.Close()
			for range chunks {
			}
			return
		}
	}
}
