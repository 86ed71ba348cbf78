// Package e2e runs the real web binary as a process for end-to-end tests:
// it builds it, starts it with an environment, follows its JSON log, and
// signals or kills it. Only tests use it.
package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"signup/internal/waitfor"
)

// Build compiles the web binary (with the race detector when race is true)
// into dir and returns its path.
func Build(dir string, race bool) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	out := filepath.Join(dir, "web")
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/web")...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build web: %v\n%s", err, b)
	}
	return out, nil
}

// Main is a test package's TestMain for tests that run the program: it
// builds the web binary with the race detector into *race and without it
// into *fast (a nil pointer skips that build), runs the tests, removes the
// binaries and exits with the tests' status.
func Main(m *testing.M, race, fast *string) {
	dir, err := os.MkdirTemp("", "web-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, b := range []struct {
		path *string
		name string
		race bool
	}{{race, "race", true}, {fast, "fast", false}} {
		if b.path == nil || err != nil {
			continue
		}
		*b.path, err = Build(filepath.Join(dir, b.name), b.race)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Process is a running web binary and what it logged.
type Process struct {
	Cmd *exec.Cmd
	// Addr is the site's address once it listens (set by Start).
	Addr string

	mu    sync.Mutex
	cond  *sync.Cond
	lines []map[string]any
	done  chan struct{}
	err   error
}

// Launch runs bin with env on top of a minimal environment (JSON logs, no
// ops listener, the site on a free port) and returns at once.
func Launch(t testing.TB, bin string, env map[string]string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
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
	p := &Process{Cmd: cmd, done: make(chan struct{})}
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
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		close(p.done)
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("web log (pid %d):\n%s", cmd.Process.Pid, p.Log())
		}
	})
	return p
}

// Start launches bin and waits until the site listens.
func Start(t testing.TB, bin string, env map[string]string, args ...string) *Process {
	t.Helper()
	p := Launch(t, bin, env, args...)
	rec := p.WaitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "listening" && l["server"] == "http" })
	p.Addr, _ = rec["addr"].(string)
	return p
}

// URL is the site's base URL.
func (p *Process) URL() string { return "http://" + p.Addr }

// OpsURL is the base URL of the ops listener, for a process launched with
// OPS_ADDR set; it waits for the listener to log its address.
func (p *Process) OpsURL(t testing.TB) string {
	t.Helper()
	rec := p.WaitLog(t, time.Minute, func(l map[string]any) bool { return l["msg"] == "listening" && l["server"] == "ops" })
	addr, _ := rec["addr"].(string)
	return "http://" + addr
}

// WaitLog blocks until a log record matches, failing the test when the
// process exits first or the timeout passes.
func (p *Process) WaitLog(t testing.TB, timeout time.Duration, match func(map[string]any) bool) map[string]any {
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
			t.Fatalf("web exited (%v) before the awaited log line", p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no awaited log line within %v", timeout)
		}
		p.cond.Wait()
	}
}

// Wait returns the exit code once the process ends, failing after timeout.
func (p *Process) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("web still running after %v", timeout)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", p.err)
	return -1
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill ends the process at once (SIGKILL) and waits for it.
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Cmd.Process.Kill()
	<-p.done
}

// Count is how many of the records logged so far match.
func (p *Process) Count(match func(map[string]any) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if match(l) {
			n++
		}
	}
	return n
}

// Log is everything the process logged, one JSON record a line.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, l := range p.lines {
		j, _ := json.Marshal(l)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// WaitReady polls /readyz until it answers 200. Polling is the only way to
// watch another process become ready from outside, as a load balancer does.
func WaitReady(t testing.TB, baseURL string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	waitfor.Until(t, timeout, func() error {
		res, err := client.Get(baseURL + "/readyz")
		if err != nil {
			return fmt.Errorf("%s not ready: %w", baseURL, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s/readyz answers %d", baseURL, res.StatusCode)
		}
		return nil
	})
}
