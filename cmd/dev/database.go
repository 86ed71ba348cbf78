package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	localURL    = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	devDatabase = "signup_dev"
	privatePort = 54330
)

// database finds a PostgreSQL: the given URL, the local server (where it
// makes a signup_dev database), or a private cluster under dataDir. It
// returns the URL to use and a func that stops what it started.
func database(ctx context.Context, given, root, dataDir string, log io.Writer) (string, func(), error) {
	nothing := func() {}
	if given != "" {
		if err := ping(ctx, given); err != nil {
			return "", nothing, fmt.Errorf("DATABASE_URL does not answer: %w", err)
		}
		return given, nothing, nil
	}
	if ping(ctx, localURL) == nil {
		u, err := ensureDatabase(ctx, localURL, devDatabase)
		return u, nothing, err
	}
	fmt.Fprintln(log, "dev: no PostgreSQL on 127.0.0.1:5432; starting a private cluster in", filepath.Join(dataDir, "pg"))
	if _, err := postgresBin(); err != nil {
		// As make test installs Chromium: with the repository's script.
		install := exec.CommandContext(ctx, filepath.Join(root, "scripts", "install-postgres.sh"))
		install.Stdout, install.Stderr = log, log
		if err := install.Run(); err != nil {
			return "", nothing, fmt.Errorf("no PostgreSQL binaries, and installing them failed (%w): run scripts/install-postgres.sh, or set DATABASE_URL", err)
		}
	}
	return privateCluster(ctx, filepath.Join(dataDir, "pg"), log)
}

func ping(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// ensureDatabase creates name on the server at admin when it is missing.
func ensureDatabase(ctx context.Context, admin, name string) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// privateCluster initialises (once) and starts a cluster in dir with the
// installed PostgreSQL binaries, and returns a func that stops it.
func privateCluster(ctx context.Context, dir string, log io.Writer) (string, func(), error) {
	nothing := func() {}
	bin, err := postgresBin()
	if err != nil {
		return "", nothing, err
	}
	asPostgres := func(name string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		if os.Geteuid() == 0 {
			// initdb and postgres refuse to run as root.
			cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		}
		cmd.Stdout, cmd.Stderr = log, log
		return cmd
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nothing, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", nothing, errors.New("running as root needs a postgres user for the private cluster")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		filepath.Walk(filepath.Dir(dir), func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		if err := asPostgres("initdb", "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8").Run(); err != nil {
			return "", nothing, fmt.Errorf("initdb: %w", err)
		}
	}
	opts := fmt.Sprintf("-p %d -k /tmp -c listen_addresses=127.0.0.1", privatePort)
	if err := asPostgres("pg_ctl", "-D", dir, "-l", filepath.Join(dir, "server.log"), "-w", "-o", opts, "start").Run(); err != nil {
		return "", nothing, fmt.Errorf("pg_ctl start: %w", err)
	}
	stop := func() {
		cmd := asPostgres("pg_ctl", "-D", dir, "-m", "fast", "-w", "stop")
		cmd.Run()
	}
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", privatePort)
	u, err := ensureDatabase(ctx, admin, devDatabase)
	if err != nil {
		stop()
		return "", nothing, err
	}
	return u, stop, nil
}

// postgresBin finds the newest installed PostgreSQL's bin directory.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL binaries found and nothing answers on 127.0.0.1:5432: run scripts/install-postgres.sh, or set DATABASE_URL")
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
