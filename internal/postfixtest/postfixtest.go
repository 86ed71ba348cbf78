// Package postfixtest runs a private Debian Postfix for a test: its own
// configuration, queue, data and log under a temporary folder, smtpd on
// 127.0.0.1 at a free port, Maildir delivery for one test domain, an error
// transport for everything else (nothing leaves the machine), and on
// demand STARTTLS (Debian's snakeoil certificate or one from a CA made for
// the test), a HELO check, a list of known users and greylisting by a
// private postgrey. The test starts and stops it; the system's mail
// service is never touched. scripts/ensure-postfix.sh installs what it
// needs; it runs as root (Postfix's start-up requires it).
package postfixtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/waitfor"
)

// Hostname is the instance's myhostname, and a name in the test CA's
// server certificate.
const Hostname = "mx.postfixtest.example"

// DefaultDomain is the domain the instance delivers for when Options
// names none.
const DefaultDomain = "example.org"

// Debian's snakeoil certificate (package ssl-cert).
const (
	snakeoilCert = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
	snakeoilKey  = "/etc/ssl/private/ssl-cert-snakeoil.key"
)

// TLS is what the instance offers with STARTTLS.
type TLS int

const (
	// NoTLS offers no STARTTLS.
	NoTLS TLS = iota
	// Snakeoil offers STARTTLS with Debian's self-signed snakeoil
	// certificate, as a stock Debian Postfix does (security level may).
	Snakeoil
	// TestCA offers STARTTLS with a certificate for localhost and
	// 127.0.0.1 issued by a CA made for this instance (Server.CAFile).
	TestCA
)

// Options shape the instance.
type Options struct {
	// Domain is the one domain delivered to the Maildir. Default
	// DefaultDomain.
	Domain string
	// TLS is what STARTTLS offers. Default NoTLS.
	TLS TLS
	// RejectNonFQDNHelo rejects clients whose HELO is not a fully
	// qualified name (reject_non_fqdn_helo_hostname; the reply comes at
	// RCPT, as smtpd_delay_reject is on).
	RejectNonFQDNHelo bool
	// Mailboxes are the local parts of Domain that exist; any other
	// recipient gets 550 5.1.1 (reject_unlisted_recipient). Nil accepts
	// every recipient in Domain.
	Mailboxes []string
	// Greylist, when positive, greylists every new (client, sender,
	// recipient) through a private postgrey with this delay (rounded up
	// to whole seconds).
	Greylist time.Duration
	// NoPipelining leaves PIPELINING out of the EHLO reply
	// (smtpd_discard_ehlo_keywords), as some servers do. Every instance
	// disconnects a client that sends ahead of time what RFC 2920 never
	// allows to be pipelined, such as a message before DATA's 354
	// (smtpd_forbid_unauth_pipelining, the default of Postfix 3.9).
	NoPipelining bool
}

// Server is a running (or stopped) private Postfix.
type Server struct {
	// Port is smtpd's port on 127.0.0.1.
	Port int
	// CAFile is the test CA's PEM certificate (TLS TestCA), else empty.
	CAFile string

	dir  string
	opts Options

	greylistPort int

	mu       sync.Mutex
	running  bool
	postgrey *exec.Cmd
}

// Start runs a new instance for t and stops it, and removes its files,
// when t ends; when t failed, the instance's mail log goes to t's log.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("postfixtest: a private Postfix instance must be started as root")
	}
	if _, err := exec.LookPath("postfix"); err != nil {
		t.Fatal("postfixtest: postfix is not installed (scripts/ensure-postfix.sh installs it)")
	}
	if opts.Domain == "" {
		opts.Domain = DefaultDomain
	}
	s, err := create(opts)
	if err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
	t.Cleanup(func() {
		s.shutdown()
		if t.Failed() {
			t.Logf("postfix mail log (%s):\n%s", s.dir, s.Log())
			if b, err := os.ReadFile(filepath.Join(s.dir, "log", "postgrey.log")); err == nil {
				t.Logf("postgrey log:\n%s", b)
			}
		}
		os.RemoveAll(s.dir)
	})
	if opts.Greylist > 0 {
		if err := s.startPostgrey(); err != nil {
			t.Fatalf("postfixtest: %v", err)
		}
	}
	if err := s.startFresh(); err != nil {
		t.Fatalf("postfixtest: %v\n%s", err, s.Log())
	}
	return s
}

// create lays out the instance's folders and the files that do not
// depend on the port.
func create(opts Options) (_ *Server, err error) {
	pf, err := user.Lookup("postfix")
	if err != nil {
		return nil, fmt.Errorf("no postfix user (scripts/ensure-postfix.sh installs postfix): %w", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	gid, _ := strconv.Atoi(pf.Gid)
	dir, err := os.MkdirTemp("", "postfixtest-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	s := &Server{dir: dir, opts: opts}
	// Postfix's daemons run as the postfix user: they must reach the
	// folder (MkdirTemp makes it private) and write the Maildir.
	if err = os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	for _, sub := range []string{"conf", "log", "queue", "mail", "tls"} {
		if err = os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err = os.Chown(filepath.Join(dir, "mail"), uid, gid); err != nil {
		return nil, err
	}
	if opts.TLS == TestCA {
		if s.CAFile, err = writeTestCA(filepath.Join(dir, "tls")); err != nil {
			return nil, err
		}
	}
	if opts.Mailboxes != nil {
		if err = os.WriteFile(filepath.Join(dir, "conf", "mailboxes"), []byte(mailboxesMap(opts.Domain, opts.Mailboxes)), 0o644); err != nil {
			return nil, err
		}
	}
	greylistPort := 0
	if opts.Greylist > 0 {
		if greylistPort, err = freePort(); err != nil {
			return nil, err
		}
	}
	s.greylistPort = greylistPort
	cf := mainCF(dir, opts, uid, gid, greylistPort)
	if err = os.WriteFile(filepath.Join(dir, "conf", "main.cf"), []byte(cf), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

// startFresh picks a free port and starts Postfix on it, with another
// port when another process took the first in between.
func (s *Server) startFresh() error {
	var err error
	for range 3 {
		if s.Port, err = freePort(); err != nil {
			return err
		}
		if err = os.WriteFile(filepath.Join(s.dir, "conf", "master.cf"), []byte(masterCF(s.Port)), 0o644); err != nil {
			return err
		}
		if err = s.start(); !errors.Is(err, errPortTaken) {
			return err
		}
	}
	return err
}

// SMTPURL is smtp://127.0.0.1:port, with query appended when not empty
// ("starttls=required").
func (s *Server) SMTPURL(query string) string {
	u := "smtp://127.0.0.1:" + strconv.Itoa(s.Port)
	if query != "" {
		u += "?" + query
	}
	return u
}

// Addr is "user@domain" for the instance's domain.
func (s *Server) Addr(local string) string { return local + "@" + s.opts.Domain }

// Stop stops Postfix, as an outage: connections are refused until Start.
// The queue and the delivered mail stay.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
}

// Start starts a stopped instance again on the same port.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("postfixtest: %v", err)
	}
}

// Restart stops and starts Postfix.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

// Log is the instance's mail log so far.
func (s *Server) Log() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "log", "maillog"))
	if err != nil {
		return fmt.Sprintf("(no mail log: %v)", err)
	}
	return string(b)
}

// errPortTaken says smtpd could not bind its port.
var errPortTaken = errors.New("port taken")

// start runs `postfix start` on the instance and waits until smtpd
// accepts connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	if out, err := s.postfix("start"); err != nil {
		// The master binds smtpd's port before `postfix start` returns.
		if strings.Contains(s.Log(), fmt.Sprintf("bind 127.0.0.1 port %d: Address already in use", s.Port)) {
			return fmt.Errorf("smtpd on 127.0.0.1:%d: %w", s.Port, errPortTaken)
		}
		return fmt.Errorf("postfix start: %v: %s", err, out)
	}
	s.running = true
	if err := waitfor.Wait(30*time.Second, func() error { return dial(s.Port) }); err != nil {
		return fmt.Errorf("smtpd on 127.0.0.1:%d: %w", s.Port, err)
	}
	return nil
}

// stop runs `postfix stop` (the master ends its daemons, open sessions
// included) and waits until the port refuses connections.
func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	if out, err := s.postfix("stop"); err != nil {
		return fmt.Errorf("postfix stop: %v: %s", err, out)
	}
	s.running = false
	return waitfor.Wait(30*time.Second, func() error {
		if dial(s.Port) == nil {
			return fmt.Errorf("127.0.0.1:%d still accepts connections", s.Port)
		}
		return nil
	})
}

// shutdown stops Postfix and postgrey, whatever their state, reporting
// nothing: it is the cleanup.
func (s *Server) shutdown() {
	if err := s.stop(); err != nil {
		// The master did not end: force it as `postfix abort` does.
		s.postfix("abort")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.postgrey != nil && s.postgrey.Process != nil {
		s.postgrey.Process.Kill()
		s.postgrey.Wait()
		s.postgrey = nil
	}
}

func (s *Server) postfix(command string) ([]byte, error) {
	cmd := exec.Command("postfix", "-c", filepath.Join(s.dir, "conf"), command)
	return cmd.CombinedOutput()
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// may take it before we bind it; startFresh retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func dial(port int) error {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}
