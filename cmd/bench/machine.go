package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// machine describes where the figures were taken.
type machine struct {
	cpus       int
	cpuModel   string
	memory     string
	kernel     string
	goVersion  string
	postgreSQL string
	date       time.Time
}

func describeMachine(ctx context.Context, adminURL string) (machine, error) {
	m := machine{
		cpus:      runtime.NumCPU(),
		cpuModel:  procField("/proc/cpuinfo", "model name"),
		memory:    procField("/proc/meminfo", "MemTotal"),
		goVersion: runtime.Version(),
		date:      time.Now().UTC(),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = "Linux " + strings.TrimSpace(string(b))
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return m, fmt.Errorf("describe machine: %w", err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&m.postgreSQL); err != nil {
		return m, fmt.Errorf("describe machine: %w", err)
	}
	return m, nil
}

// procField is the value of the first "key: value" line with key in a
// /proc file, or "unknown".
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "unknown"
}
