// Command dev runs the whole application locally for `make run`: a
// PostgreSQL (DATABASE_URL, else the server on 127.0.0.1:5432, else a private
// cluster it creates under ./.data and stops on exit), the dev mail inbox on
// http://localhost:8025 (unless SMTP_URL is set), and the app on
// http://localhost:8080. Ctrl-C stops everything.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"signup/internal/devmail"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	dataDir := filepath.Join(root, ".data")

	dbURL, stopDB, err := database(ctx, getenv("DATABASE_URL"), dataDir, stderr)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer stopDB()

	smtpURL := getenv("SMTP_URL")
	inbox := "(your SMTP server: " + smtpURL + ")"
	if smtpURL == "" {
		mail := devmail.New(devmail.Config{SMTPAddr: "localhost:1025", HTTPAddr: "localhost:8025", Logger: logger})
		if err := mail.Start(ctx); err != nil {
			return fmt.Errorf("dev inbox: %w", err)
		}
		defer mail.Stop(context.Background())
		smtpURL = mail.SMTPURL()
		inbox = strings.Replace(mail.InboxURL(), "127.0.0.1", "localhost", 1)
	}

	bin := filepath.Join(dataDir, "bin", "web")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/web")
	build.Stdout, build.Stderr = stderr, stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build web: %w", err)
	}

	web := exec.Command(bin)
	web.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "SMTP_URL="+smtpURL)
	if getenv("LOG_FORMAT") == "" {
		web.Env = append(web.Env, "LOG_FORMAT=text")
	}
	web.Stdout, web.Stderr = stdout, stderr
	if err := web.Start(); err != nil {
		return fmt.Errorf("start web: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- web.Wait() }()

	site := getenv("BASE_URL")
	if site == "" {
		site = "http://localhost:8080"
	}
	status := "http://localhost:9090"
	if addr := getenv("OPS_ADDR"); addr != "" {
		host, port, _ := net.SplitHostPort(addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		status = "http://" + net.JoinHostPort(host, port)
	}
	fmt.Fprintf(stdout, "\n  app:        %s\n  dev inbox:  %s\n  status:     %s\n  database:   %s\n\n  Ctrl-C stops everything.\n\n", site, inbox, status, redact(dbURL))

	select {
	case err := <-exited:
		return fmt.Errorf("web exited: %w", err)
	case <-ctx.Done():
	}
	// Ctrl-C reaches the whole process group; signal web in case it did not.
	web.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return err
		}
	case <-time.After(40 * time.Second):
		web.Process.Kill()
		<-exited
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
