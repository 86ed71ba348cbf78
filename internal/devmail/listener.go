package devmail

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// guardedListener admits SMTP connections: it refuses them while
// Faults.Refuse is set (accept, then close at once, so the client sees the
// connection drop before the greeting), and tracks the admitted ones so that
// Refuse and Stop can close them.
type guardedListener struct {
	net.Listener
	srv *Server
}

func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, err := l.srv.admit(c)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			return tc, nil
		}
	}
}

// admit registers c, or closes it and returns nil when refusing, or an error
// once the server is stopping.
func (s *Server) admit(c net.Conn) (*trackedConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateStopped {
		c.Close()
		return nil, net.ErrClosed
	}
	if s.faults.Refuse {
		c.Close()
		return nil, nil
	}
	if g := s.faults.Greeting; g != nil {
		line := fmt.Sprintf("%d %d.%d.%d %s\r\n", g.Code, g.Enhanced[0], g.Enhanced[1], g.Enhanced[2], g.Message)
		go func() {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // closed below either way
			c.Write([]byte(line))                               //nolint:errcheck // as above
			c.Close()
		}()
		return nil, nil
	}
	tc := &trackedConn{Conn: c, srv: s}
	s.conns[tc] = struct{}{}
	s.connections.Add(1)
	return tc, nil
}

// connsLocked returns the open connections; the caller holds s.mu and closes
// them after releasing it (Close takes s.mu).
func (s *Server) connsLocked() []*trackedConn {
	out := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// trackedConn removes itself from the server's set when closed.
type trackedConn struct {
	net.Conn
	srv  *Server
	once sync.Once
}

// Read counts the reads that bring bytes (see Server.Reads).
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.srv.reads.Add(1)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
	})
	return err
}
