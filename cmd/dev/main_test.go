package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"signup/internal/devmail"
	"signup/internal/e2e"
	"signup/internal/store/storetest"
	"signup/internal/waitfor"
)

// binDir holds dev and web side by side, as make run builds them into bin/.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dev-test-")
	if err == nil {
		binDir = dir
		_, file, _, _ := runtime.Caller(0)
		build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/dev", "./cmd/web")
		build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, berr := build.CombinedOutput(); berr != nil {
			err = fmt.Errorf("build: %v\n%s", berr, out)
		}
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

// output collects what a process writes, safe for a reader.
type output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string { o.mu.Lock(); defer o.mu.Unlock(); return o.b.String() }

// TestInterruptStopsGracefully runs the dev stack as make run does, in a
// process group of its own like a terminal's foreground job, and sends
// SIGINT to the whole group as Ctrl-C does while an email is being sent.
// web gets the signal once (from dev: it runs in its own group), stops
// gracefully (the sender finishes the email, the host logs its stop),
// and dev exits 0. The banner names only what listens.
func TestInterruptStopsGracefully(t *testing.T) {
	mail := devmail.New(devmail.Config{})
	if err := mail.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mail.Stop(context.Background()) })
	// Each message is held a while, so the signal comes mid-send.
	mail.SetFaults(devmail.Faults{Latency: time.Second})

	var stdout, stderr output
	cmd := exec.Command(filepath.Join(binDir, "dev"))
	cmd.Dir = t.TempDir()
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"DATABASE_URL=" + storetest.URL(t),
		"SMTP_URL=" + mail.SMTPURL(),
		"HTTP_ADDR=127.0.0.1:0",
		"OPS_ADDR=",
		"LOG_FORMAT=json",
	}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("dev's output:\n%s\ndev's log:\n%s", stdout.String(), stderr.String())
		}
	})

	appLine := regexp.MustCompile(`app: +(http://\S+)`)
	var site string
	waitfor.Until(t, 2*time.Minute, func() error {
		if m := appLine.FindStringSubmatch(stdout.String()); m != nil {
			site = m[1]
			return nil
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("dev exited (%v) before its banner", err)
		default:
		}
		return errors.New("no banner with the app's address yet")
	})
	banner := stdout.String()
	if strings.Contains(banner, "status:") || strings.Contains(banner, "dev inbox:") {
		t.Errorf("the banner names what does not listen (no ops listener, no dev inbox):\n%s", banner)
	}

	const email = "interrupted@example.com"
	e2e.NewClient().Signup(t, site, email)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := mail.WaitAttempts(ctx, 1); err != nil {
		t.Fatalf("the confirmation was not being sent: %v", err)
	}

	// Ctrl-C: the terminal signals the foreground process group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("dev exited with %v after one SIGINT, want 0", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("dev still running a minute after SIGINT")
	}
	if n := len(mail.MessagesTo(email)); n != 1 {
		t.Errorf("%d confirmations delivered, want the one being sent when the signal came", n)
	}
	log := stderr.String()
	if n := strings.Count(log, `"msg":"host stopping"`); n != 1 {
		t.Errorf(`web logged "host stopping" %d times, want 1`, n)
	}
	for _, want := range []string{`"msg":"service stopped","service":"mail"`, `"msg":"host stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("web's log lacks %s: no graceful stop", want)
		}
	}
	if strings.Contains(log, "second signal") {
		t.Error("web got a second signal")
	}
	if !strings.Contains(stdout.String(), "everything stopped") {
		t.Errorf("dev did not say it stopped:\n%s", stdout.String())
	}
}
