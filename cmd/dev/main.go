// Command dev runs the whole application locally for `make run`: a
// PostgreSQL (DATABASE_URL, else the server on 127.0.0.1:5432, else a private
// cluster it creates under ./.data and stops on exit, installing PostgreSQL's
// binaries first when they are missing), the dev mail inbox on
// http://localhost:8025 (unless SMTP_URL is set), and the web binary beside
// it (built into .data/bin when there is none). Ctrl-C stops everything:
// dev passes each signal it gets to web once, so the first stops web
// gracefully (the sender drains) and a second stops it at once.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"signup/internal/devmail"
)

func main() {
	restore := takeTerminal()
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	err := run(signals, os.Getenv, os.Stdout, os.Stderr)
	restore()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stdout, "dev: everything stopped")
}

// run sets up the stack, runs web until it exits, and returns nil when web
// stopped cleanly. Each signal from signals is passed to web once; one that
// comes before web runs cancels the set-up instead.
func run(signals <-chan os.Signal, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fwd := &forwarder{cancel: cancel}
	go func() {
		for sig := range signals {
			fwd.signal(sig)
		}
	}()

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	dataDir := filepath.Join(root, ".data")

	dbURL, stopDB, err := database(ctx, getenv("DATABASE_URL"), root, dataDir, stderr)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer stopDB()

	b := banner{database: redact(dbURL)}
	smtpURL := getenv("SMTP_URL")
	if smtpURL == "" {
		mail := devmail.New(devmail.Config{SMTPAddr: "localhost:1025", HTTPAddr: "localhost:8025", Logger: logger})
		if err := mail.Start(ctx); err != nil {
			return fmt.Errorf("dev inbox: %w", err)
		}
		defer mail.Stop(context.Background())
		smtpURL = mail.SMTPURL()
		b.inbox = strings.Replace(mail.InboxURL(), "127.0.0.1", "localhost", 1)
	}

	bin, err := webBinary(ctx, dataDir, stderr)
	if err != nil {
		return err
	}
	web := exec.Command(bin)
	web.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "SMTP_URL="+smtpURL)
	if getenv("LOG_FORMAT") == "" {
		web.Env = append(web.Env, "LOG_FORMAT=text")
	}
	// A process group of its own: a signal to dev's group (Ctrl-C) does
	// not reach web directly, only as dev passes it on, so web gets it
	// once. Should dev die, web is told to stop.
	web.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	watch := &logWatch{out: stderr, ready: func(l listeners) { b.print(stdout, l) }}
	web.Stdout, web.Stderr = stdout, watch
	if err := fwd.start(ctx, web); err != nil {
		return err
	}
	err = web.Wait()
	watch.flush()
	switch n := fwd.signalled(); {
	case err == nil:
		fmt.Fprintln(stdout, "dev: web stopped gracefully")
		return nil
	case n > 1:
		return fmt.Errorf("web stopped at once on the second signal: %w", err)
	default:
		return fmt.Errorf("web exited: %w", err)
	}
}

// forwarder passes each signal dev gets to web, once; before web runs, a
// signal cancels the set-up, and web is not started.
type forwarder struct {
	cancel context.CancelFunc

	mu   sync.Mutex
	web  *os.Process
	sent int
}

func (f *forwarder) signal(sig os.Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancel()
	if f.web != nil {
		f.web.Signal(sig)
		f.sent++
	}
}

// start starts cmd unless a signal came first.
func (f *forwarder) start(ctx context.Context, cmd *exec.Cmd) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() != nil {
		return errors.New("interrupted before web started")
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start web: %w", err)
	}
	f.web = cmd.Process
	return nil
}

// signalled is how many signals web was sent.
func (f *forwarder) signalled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

// webBinary is the web binary next to dev's own (make run builds both into
// bin/), else one built now into dataDir/bin.
func webBinary(ctx context.Context, dataDir string, log io.Writer) (string, error) {
	if self, err := os.Executable(); err == nil {
		bin := filepath.Join(filepath.Dir(self), "web")
		if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return bin, nil
		}
	}
	bin := filepath.Join(dataDir, "bin", "web")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/web")
	build.Stdout, build.Stderr = log, log
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build web: %w", err)
	}
	return bin, nil
}
