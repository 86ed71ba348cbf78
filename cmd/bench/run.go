package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// errUsage means the command line was wrong; the flag package has said why.
var errUsage = errors.New("usage")

// options are the command-line flags.
type options struct {
	// runs is how many times each scenario is measured.
	runs int
	// only keeps the scenarios whose name contains one of these.
	only []string
	// quick shrinks every size, for a smoke run.
	quick bool
	// out is where the table is written with the machine's description;
	// "" writes nothing.
	out string
	// notes is a Markdown file put under "Missed goals" in out: the
	// reading of the profiles taken for the goals a run missed.
	notes string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var only string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.runs, "runs", 3, "how many times each scenario is measured (the table shows the median, min and max)")
	fs.StringVar(&only, "only", "", "run only the scenarios whose name contains this (comma-separated alternatives)")
	fs.BoolVar(&o.quick, "quick", false, "smaller sizes and shorter loads, for a smoke run")
	fs.StringVar(&o.out, "out", "BENCHMARKS.md", `file the table is written to ("" for none)`)
	fs.StringVar(&o.notes, "notes", "", `Markdown file written under "Missed goals" in -out: where the time goes, from profiles`)
	if err := fs.Parse(args); err != nil {
		return o, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "bench: unexpected argument %q\n", fs.Arg(0))
		return o, errUsage
	}
	if o.runs < 1 {
		fmt.Fprintln(stderr, "bench: -runs must be at least 1")
		return o, errUsage
	}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.only = append(o.only, strings.ToLower(s))
		}
	}
	return o, nil
}

// run is the whole command, testable: it takes its arguments, environment
// and output instead of reading globals.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var selected []*scenario
	for _, sc := range scenarios(sizesFor(opts.quick)) {
		if sc.matches(opts.only) {
			selected = append(selected, sc)
		}
	}
	if len(selected) == 0 {
		fmt.Fprintf(stderr, "bench: no scenario matches -only %q\n", strings.Join(opts.only, ","))
		return errUsage
	}

	if opts.notes != "" {
		// Read at the end, so the notes can be written while the run goes;
		// a wrong path fails now rather than after the run.
		if _, err := os.Stat(opts.notes); err != nil {
			return fmt.Errorf("-notes: %w", err)
		}
	}

	began := time.Now()
	h, err := newHarness(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer h.close()

	// Runs go round all scenarios in turn, rather than repeating one
	// scenario back to back, so that a slow minute on the machine spreads
	// over every row instead of skewing one.
	rows := make([]*row, len(selected))
	for i, sc := range selected {
		rows[i] = &row{scenario: sc}
	}
	for r := 1; r <= opts.runs; r++ {
		h.mu.Lock()
		h.run = r
		h.mu.Unlock()
		for _, rw := range rows {
			if rw.scenario.pending != "" {
				continue
			}
			h.progress("run %d/%d: %s", r, opts.runs, rw.scenario.name)
			t0 := time.Now()
			m, err := rw.scenario.measure(ctx, h)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				h.progress("  failed: %v", err)
				rw.errs = append(rw.errs, err)
				continue
			}
			h.progress("  %s (baseline %s, ratio %s) in %v", fmtNum(m.value), fmtNum(m.baseline),
				fmtNum(m.ratio()), time.Since(t0).Round(100*time.Millisecond))
			rw.runs = append(rw.runs, m)
		}
	}

	machine, err := describeMachine(ctx, h.admin)
	if err != nil {
		return err
	}
	var notes []byte
	if opts.notes != "" {
		if notes, err = os.ReadFile(opts.notes); err != nil {
			return fmt.Errorf("read -notes: %w", err)
		}
	}
	rep := report{rows: rows, runs: opts.runs, quick: opts.quick, machine: machine, took: time.Since(began), notes: string(notes)}
	fmt.Fprint(stdout, rep.table())
	if opts.out != "" {
		if err := os.WriteFile(opts.out, []byte(rep.markdown()), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", opts.out, err)
		}
	}
	var failed []string
	for _, rw := range rows {
		if len(rw.errs) > 0 {
			failed = append(failed, fmt.Sprintf("%s: %d of %d runs failed (first: %v)",
				rw.scenario.name, len(rw.errs), opts.runs, rw.errs[0]))
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}
