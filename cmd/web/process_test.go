package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"signup/internal/store/storetest"
)

// webBinary is the real program, built once for the tests that run it as a
// process.
var webBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "web-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	webBinary = filepath.Join(dir, "web")
	build := exec.Command("go", "build", "-race", "-o", webBinary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build web:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running web process and what it logged.
type proc struct {
	cmd  *exec.Cmd
	addr string // the site's address, once listening

	mu    sync.Mutex
	lines []map[string]any
	cond  *sync.Cond
	done  chan struct{}
	err   error // from Wait
}

// startWeb runs the binary with env (on top of a minimal environment) and
// returns once it has logged that the site listens.
func startWeb(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	p := launch(t, env, args...)
	rec := p.waitLog(t, 30*time.Second, func(l map[string]any) bool { return l["msg"] == "listening" && l["server"] == "http" })
	p.addr = rec["addr"].(string)
	return p
}

func launch(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(webBinary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json", "OPS_ADDR=", "HTTP_ADDR=127.0.0.1:0"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				rec = map[string]any{"raw": sc.Text()}
			}
			p.mu.Lock()
			p.lines = append(p.lines, rec)
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		p.mu.Lock()
		close(p.done)
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("web log:\n%s", p.log())
		}
	})
	return p
}

// waitLog blocks until a log record matches, the process exits, or the
// timeout passes.
func (p *proc) waitLog(t *testing.T, timeout time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	timer := time.AfterFunc(timeout, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; ; {
		for ; i < len(p.lines); i++ {
			if match(p.lines[i]) {
				return p.lines[i]
			}
		}
		select {
		case <-p.done:
			t.Fatalf("web exited (%v) before the awaited log line:\n%s", p.err, p.logLocked())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no awaited log line within %v:\n%s", timeout, p.logLocked())
		}
		p.cond.Wait()
	}
}

// wait returns the exit code once the process ends, failing after timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("web still running after %v", timeout)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", p.err)
	return -1
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logLocked()
}

func (p *proc) logLocked() string {
	var b strings.Builder
	for _, l := range p.lines {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// waitReady polls /readyz (there is no other signal from outside a
// process) until it answers 200.
func waitReady(t *testing.T, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within %v (last: %v)", timeout, err)
		}
		time.Sleep(10 * time.Millisecond) // polling an outside process; no signal to wait on
	}
}

func baseEnv(t *testing.T) map[string]string {
	return map[string]string{
		"DATABASE_URL": storetest.URL(t),
		"SMTP_URL":     "smtp://127.0.0.1:1",
	}
}

func TestProcessBadConfigExits2(t *testing.T) {
	t.Parallel()
	p := launch(t, map[string]string{"SMTP_URL": "smtp://[::1", "SHUTDOWN_TIMEOUT": "5"})
	if code := p.wait(t, 10*time.Second); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	out := p.log()
	for _, want := range []string{"web: DATABASE_URL is required", "web: SMTP_URL is not a URL", "web: SHUTDOWN_TIMEOUT is not a positive duration"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "service starting") {
		t.Error("a service started despite bad configuration")
	}
}

func TestProcessDatabaseDownFailsStart(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never answers: the worst kind of down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	p := launch(t, map[string]string{
		"DATABASE_URL":  "postgres://postgres@" + ln.Addr().String() + "/x?sslmode=disable",
		"SMTP_URL":      "smtp://127.0.0.1:1",
		"START_TIMEOUT": "1s",
	})
	if code := p.wait(t, 20*time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("took %v to give up; the start timeout is 1s", took)
	}
	if out := p.log(); !strings.Contains(out, "start database") || !strings.Contains(out, "deadline exceeded") {
		t.Errorf("no clear error:\n%s", out)
	}
}

func TestProcessSIGTERMDrainsSlowRequest(t *testing.T) {
	t.Parallel()
	started := time.Now()
	p := startWeb(t, baseEnv(t))
	waitReady(t, p.addr, 30*time.Second)
	t.Logf("process start to /readyz 200: %v", time.Since(started))

	// A slow client: headers now, the body after SIGTERM.
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := "email=slow%40example.com&password=correct+horse+battery+staple"
	fmt.Fprintf(conn, "POST /signup HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", p.addr, len(body), body[:10])

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, 10*time.Second, func(l map[string]any) bool { return l["msg"] == "service stopping" && l["service"] == "http" })
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request was cut: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("in-flight signup: status %d", res.StatusCode)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
}

func TestProcessReadyDuringLifecycle(t *testing.T) {
	t.Parallel()
	env := baseEnv(t)
	p := startWeb(t, env)
	waitReady(t, p.addr, 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.addr+"/healthz", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", res, err)
	}
	res.Body.Close()
	p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
}
