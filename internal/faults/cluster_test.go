package faults_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cluster is a private PostgreSQL server owned by one test, made with the
// installed binaries (initdb, pg_ctl) in a temporary directory, on its own
// port: a test may stop and start it without touching the shared server.
type cluster struct {
	t       *testing.T
	bin     string // directory of initdb and pg_ctl
	data    string
	port    int
	asOwner []string // runuser prefix when running as root
}

// newCluster initialises and starts a private cluster, stopped when t ends.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// The newest version: sort by major version number.
	slices.SortFunc(bins, func(a, b string) int { return majorOf(a) - majorOf(b) })
	bin := ""
	for _, b := range slices.Backward(bins) {
		if _, err := os.Stat(filepath.Join(b, "initdb")); err == nil {
			bin = b
			break
		}
	}
	if bin == "" {
		t.Fatal("no PostgreSQL binaries under /usr/lib/postgresql/*/bin; install postgresql")
	}
	dir := t.TempDir()
	c := &cluster{t: t, bin: bin, data: filepath.Join(dir, "data"), port: freePort(t)}
	if err := os.Mkdir(c.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root: the cluster belongs to
		// the postgres user, who must be able to reach its directory.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user to own the cluster: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(c.data, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.asOwner = []string{"runuser", "-u", "postgres", "--"}
	}
	if out, err := c.run("initdb", "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.start()
	t.Cleanup(func() {
		if out, err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop"); err != nil &&
			!strings.Contains(string(out), "Is server running?") {
			t.Logf("stop private cluster: %v\n%s", err, out)
		}
	})
	return c
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// freePort is a TCP port nothing listens on now on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	addr := freeAddr(t)
	n, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	return n
}

// run runs one of the cluster's programs as its owner.
func (c *cluster) run(prog string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(slices.Clone(c.asOwner), filepath.Join(c.bin, prog))
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w", prog, err)
	}
	return out, nil
}

// start starts the server and waits until it accepts connections: TCP on
// 127.0.0.1 only, its socket in the data directory, no fsync.
func (c *cluster) start() {
	c.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c full_page_writes=off -c max_connections=100", c.port, c.data)
	if out, err := c.run("pg_ctl", "-D", c.data, "-l", filepath.Join(c.data, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		c.t.Fatalf("start private cluster: %v\n%s", err, out)
	}
}

// stop shuts the server down the way an operator's restart does ("fast":
// sessions are ended, transactions rolled back) and waits until it is down.
func (c *cluster) stop() {
	c.t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		c.t.Fatalf("stop private cluster: %v\n%s", err, out)
	}
}

// url is the cluster's postgres database.
func (c *cluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}
