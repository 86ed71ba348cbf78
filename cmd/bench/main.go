// Command bench measures the product against baselines taken in the same
// run and prints one table, which it also writes to BENCHMARKS.md with a
// description of the machine.
//
//	bench [-runs 3] [-only substring[,substring…]] [-quick] [-out BENCHMARKS.md] [-notes file.md]
//
// Each row is a scenario: the product's figure, a baseline measured in the
// same run on the same machine, and their ratio, as the median over -runs
// runs with the minimum and maximum. Load comes from this process over
// loopback, at a constant arrival rate (vegeta) or, for saturation, from a
// fixed set of closed-loop workers; the product is the real web binary,
// built without the race detector and started as a subprocess on a fresh
// database and an in-process devmail SMTP peer.
//
// It needs a PostgreSQL server it may create databases on:
// TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres.
// `make bench` sets it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The constant-page baseline runs as a child of this very binary.
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(runChild(role, os.Getenv, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err and picks the exit status: 2 for bad usage, 1 for a
// failed measurement, 0 for none.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "bench: %v\n", err)
	return 1
}
