package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"signup/internal/purge"
	"signup/internal/store"
)

// purgeCmd is `web purge [--dry-run] [--force [--max N]]`: one purge pass now, by the
// purger's own code, recorded in purge_runs as a manual run. It prints the
// counts; a failed run (the safety limit included) returns its error.
//
// A real run migrates the schema first, as `web serve` does at start; a dry
// run changes nothing, so it needs a migrated database.
func purgeCmd(ctx context.Context, args []string, getenv lookupEnv, stdout, stderr io.Writer) error {
	fs := newFlagSet()
	dryRun := fs.Bool("dry-run", false, "count what the purge would delete and warn; change nothing")
	force := fs.Bool("force", false, "pass the safety limit (PURGE_MAX_SHARE); without --max, unbounded")
	maxAccounts := fs.Int64("max", 0, "delete and warn at most this many accounts in this run (0: no cap)")
	cfg, rest, err := loadConfig(fs, args, getenv, needs{}, stderr)
	if err != nil {
		return err
	}
	if *maxAccounts < 0 {
		return &configError{problems: []string{fmt.Sprintf("--max is %d; want a positive number of accounts", *maxAccounts)}}
	}
	if len(rest) > 0 {
		return &configError{problems: []string{fmt.Sprintf("purge takes no arguments, got %q", rest)}}
	}
	logger := newLogger(cfg.LogFormat, stderr)

	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	if !*dryRun {
		if err := db.Migrate(ctx); err != nil {
			return err
		}
	} else if _, err := db.SchemaVersion(ctx); err != nil {
		return fmt.Errorf("dry run needs a migrated database (run web migrate): %w", err)
	}

	p, err := purge.New(purgeConfig(cfg, db, logger))
	if err != nil {
		return err
	}
	rep, err := p.RunOnce(ctx, purge.Options{DryRun: *dryRun, Force: *force, Max: *maxAccounts})
	if rep.ID != 0 {
		printReport(stdout, rep)
	}
	return err
}

// printReport writes a run's counts as a small table.
func printReport(w io.Writer, rep purge.Report) {
	verb := "deleted"
	if rep.DryRun {
		verb = "would delete"
		fmt.Fprintf(w, "purge run %d: dry run, nothing changed\n", rep.ID)
	} else {
		fmt.Fprintf(w, "purge run %d\n", rep.ID)
	}
	for _, c := range purge.Categories {
		what := verb
		if c == purge.Warned {
			what = "warned"
			if rep.DryRun {
				what = "would warn"
			}
		}
		fmt.Fprintf(w, "  %-12s %9d  %s\n", c, rep.Counts.Get(c), what)
	}
}

// purgeConfig is the purger's configuration from the program's, the same
// for the nightly service and the purge command, so both apply one policy.
func purgeConfig(cfg *config, db *store.DB, logger *slog.Logger) purge.Config {
	return purge.Config{
		Store:                db.Purges(),
		Schedule:             cfg.PurgeSchedule,
		Location:             cfg.PurgeTZ,
		UnconfirmedRetention: cfg.UnconfirmedRetention,
		InactiveRetention:    cfg.InactiveRetention,
		InactiveWarning:      cfg.InactiveWarning,
		MaxShare:             cfg.PurgeMaxShare,
		Logger:               logger,
	}
}
