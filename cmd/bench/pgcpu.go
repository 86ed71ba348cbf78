package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat
// (sysconf(_SC_CLK_TCK), 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuSnapshot is the CPU time so far of each PostgreSQL backend serving a
// database, by pid.
type cpuSnapshot map[int]time.Duration

// backendCPU reads, from /proc, the CPU time (user and system) of every
// backend pg_stat_activity lists for database name. It needs the server
// on this machine, as the bench's is.
func backendCPU(ctx context.Context, h *harness, name string) (cpuSnapshot, error) {
	conn, err := pgx.Connect(ctx, h.admin)
	if err != nil {
		return nil, fmt.Errorf("backend cpu: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, name)
	if err != nil {
		return nil, fmt.Errorf("backend cpu: %w", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("backend cpu: %w", err)
	}
	snap := cpuSnapshot{}
	for _, pid := range pids {
		t, err := processCPU(int(pid))
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since; its time is lost to both sides alike
		}
		if err != nil {
			return nil, fmt.Errorf("backend cpu: %w", err)
		}
		snap[int(pid)] = t
	}
	return snap, nil
}

// processCPU is the CPU time (user and system) process pid has used so
// far, from /proc/<pid>/stat, in clock ticks.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command (which may hold spaces) in parentheses:
	// state is the first, utime the 12th and stime the 13th.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// since is the CPU the backends in s used after before (all of it for a
// backend that was not there then).
func (s cpuSnapshot) since(before cpuSnapshot) time.Duration {
	var d time.Duration
	for pid, t := range s {
		d += t - before[pid]
	}
	return d
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
