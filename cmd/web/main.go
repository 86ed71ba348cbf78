// Command web is the signup application: the site, the confirmation-email
// sender and the nightly purger, run as hosted services in one process.
//
//	web [serve]   run the application (the default)
//	web migrate   bring the database schema up to date and exit
//	web purge     run one purge pass now (--dry-run, --force)
//
// Configuration comes from the environment; flags of the same name
// (--database-url for DATABASE_URL) override it. See README.md.
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
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		cancel() // the first signal stops gracefully
		<-signals
		fmt.Fprintln(os.Stderr, "web: second signal: exiting now")
		os.Exit(1)
	}()
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err and picks the exit status: 2 for bad configuration or
// usage, 1 for any other failure, 0 for none.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ce *configError
	if errors.As(err, &ce) {
		for _, p := range ce.problems {
			fmt.Fprintf(stderr, "web: %s\n", p)
		}
		return 2
	}
	fmt.Fprintf(stderr, "web: %v\n", err)
	return 1
}
