package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// buildWeb compiles the web binary into dir, without the race detector,
// and returns its path. It is internal/e2e's Build without the testing
// dependencies that package carries (it also drives Chromium).
func buildWeb(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("find the module: run bench inside the signup module")
	}
	bin := filepath.Join(dir, "web")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/web")
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build web: %v\n%s", err, b)
	}
	return bin, nil
}

// process is a child process whose log (stderr) is read as it comes: the
// address from its "listening" record is handed over, and the last lines are
// kept for error messages. Reading is needed anyway: a child whose pipe
// fills up blocks.
type process struct {
	cmd       *exec.Cmd
	listening chan string // the http server's address, once
	done      chan struct{}
	err       error // how it exited, set before done is closed

	mu   sync.Mutex
	tail []string
}

const tailLines = 30

// launch starts bin with exactly env and returns at once.
func launch(bin string, env []string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, listening: make(chan string, 1), done: make(chan struct{})}
	go p.read(stderr)
	return p, nil
}

func (p *process) read(stderr io.Reader) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Bytes()
		// Only the first "listening" record is decoded: under load the
		// web logs a line per request, and decoding each would cost this
		// process CPU that the load generator needs.
		if !found && bytes.Contains(line, []byte(`"msg":"listening"`)) {
			var rec struct{ Server, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Server == "http" {
				p.listening <- rec.Addr
				found = true
			}
		}
		p.mu.Lock()
		if len(p.tail) == tailLines {
			p.tail = p.tail[1:]
		}
		p.tail = append(p.tail, sc.Text())
		p.mu.Unlock()
	}
	p.err = p.cmd.Wait()
	close(p.done)
}

// waitListening returns the site's address once the process logs it.
func (p *process) waitListening(ctx context.Context, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case addr := <-p.listening:
		return addr, nil
	case <-p.done:
		return "", fmt.Errorf("%s exited (%v) before listening:\n%s", p.name(), p.err, p.log())
	case <-timer.C:
		return "", fmt.Errorf("%s not listening within %v:\n%s", p.name(), timeout, p.log())
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (p *process) name() string { return filepath.Base(p.cmd.Path) }

// log is the last lines the process logged.
func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// kill ends the process at once and waits for it. The bench never needs a
// graceful stop: the database is dropped right after.
func (p *process) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// memory reads the process's resident set now and its peak (VmRSS and
// VmHWM in /proc/<pid>/status), in bytes.
func (p *process) memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("read memory: %s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, errors.New("read memory: no VmRSS or VmHWM")
	}
	return rss, peak, nil
}

// waitReady polls base/readyz every interval until it answers 200, as a
// load balancer would: from outside, polling is the only way to watch
// another process become ready.
func waitReady(ctx context.Context, base string, interval, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		last = err
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v (last: %v)", base, timeout, last)
		}
		time.Sleep(interval)
	}
}
