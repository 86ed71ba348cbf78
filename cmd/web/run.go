package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"signup/internal/account"
	"signup/internal/groupwrite"
	"signup/internal/hosted"
	apphttp "signup/internal/http"
	appmail "signup/internal/mail"
	"signup/internal/ops"
	"signup/internal/purge"
	"signup/internal/store"
	"signup/web"
)

// run is the whole program, testable: it takes its arguments, environment
// and output instead of reading globals.
func run(ctx context.Context, args []string, getenv lookupEnv, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stderr)
	case "migrate":
		return migrateCmd(ctx, args, getenv, stdout, stderr)
	case "purge":
		return purgeCmd(ctx, args, getenv, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return &configError{problems: []string{fmt.Sprintf("unknown command %q; want serve, migrate or purge (see web help)", cmd)}}
}

const usage = `usage: web [serve|migrate|purge] [flags]

  serve    run the site, the mail sender and the purger (the default)
  migrate  bring the database schema up to date and exit
  purge    run one purge pass now (--dry-run counts what it would delete
           and warn, changing and locking nothing; --force passes the
           safety limit, unbounded unless --max N caps the accounts)

Configuration is read from the environment; a flag of the same name in
lower case with dashes (--database-url for DATABASE_URL) overrides it.
Run "web serve -h" for the list.
`

func newFlagSet() *flag.FlagSet { return flag.NewFlagSet("web", flag.ContinueOnError) }

// newLogger logs to w in format, or as logFormat picks for w when format
// is empty.
func newLogger(format string, w io.Writer) *slog.Logger {
	if logFormat(format, w) == "text" {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// logFormat is format, or when it is empty, text for a terminal and JSON
// for anything else.
func logFormat(format string, w io.Writer) string {
	if format != "" {
		return format
	}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return "text"
		}
	}
	return "json"
}

func migrateCmd(ctx context.Context, args []string, getenv lookupEnv, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig(newFlagSet(), args, getenv, needs{}, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		return err
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", v)
	return nil
}

func serve(ctx context.Context, args []string, getenv lookupEnv, stderr io.Writer) error {
	cfg, _, err := loadConfig(newFlagSet(), args, getenv, needs{smtp: true}, stderr)
	if err != nil {
		return err
	}
	// Log lines are gathered and written together while a write runs
	// (internal/groupwrite): a line per request is otherwise a system call
	// per request. What is left is written before serve returns.
	logOut := groupwrite.New(stderr)
	defer logOut.Close()
	logger := newLogger(logFormat(cfg.LogFormat, stderr), logOut)
	warnInsecure(cfg, logger)
	app, err := build(cfg, logger)
	if err != nil {
		return err
	}
	return app.host.Run(ctx)
}

// warnInsecure says loudly, at every start, that OPS_INSECURE=true let the
// ops listener serve the network without a token.
func warnInsecure(cfg *config, logger *slog.Logger) {
	if cfg.OpsAddr != "" && cfg.OpsToken == "" && !loopback(cfg.OpsAddr) {
		logger.Warn("INSECURE: the ops listener serves metrics, the status dashboard (email addresses, SMTP errors), mail retries and pprof to the network without a token (OPS_INSECURE=true); set OPS_TOKEN, or bind OPS_ADDR to 127.0.0.1",
			"ops_addr", cfg.OpsAddr)
	}
}

// app is the wired program.
type app struct {
	host *hosted.Host
	db   *store.DB
	site *apphttp.Server
	// ops is the ops listener; nil when OPS_ADDR is empty.
	ops *apphttp.Server
}

// build wires the services into a host: database first, then the mail
// sender, the purger and the ops listener, then the site last, so no
// signup is taken before the sender runs and the site stops first.
func build(cfg *config, logger *slog.Logger) (*app, error) {
	db, err := store.New(cfg.DatabaseURL, store.Options{StatementTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	host := hosted.New(hosted.Config{StartTimeout: cfg.StartTimeout, ShutdownTimeout: cfg.ShutdownTimeout, StopDelay: cfg.StopDelay, Logger: logger})
	host.Add("database", hosted.Funcs(
		func(ctx context.Context) error {
			if err := db.Ping(ctx); err != nil {
				return err
			}
			return db.Migrate(ctx)
		},
		func(context.Context) error { db.Close(); return nil },
	), hosted.Options{})
	host.AddCheck("postgres", pingCheck(db, logger), hosted.TagReady)

	queue := hosted.NewQueue[appmail.Job](4096)
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := ops.NewMetrics(registry, ops.MetricsConfig{
		Services: host.States,
		Queue:    queue,
		Outbox:   db.Outbox(),
		Purges:   db.Purges(),
		Logger:   logger,
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	accounts := account.NewService(account.Config{
		Repo:       db.Accounts(),
		Hasher:     account.NewHasher(account.DefaultParams(), 0, account.WithMaxWait(cfg.HashQueueWait), account.WithWaitLimit(hashWaitLimit(cfg))),
		Notifier:   account.NotifierFunc(func(id int64) { queue.TryEnqueue(appmail.NewJob(id)) }),
		Observer:   metrics,
		MailLimits: account.MailLimits{Cooldown: cfg.MailCooldown},
		// user@localhost only where the site itself runs on localhost.
		LocalhostEmail: loopbackHost(cfg.BaseURL.Hostname()),
	})

	composer, err := account.NewComposer(account.ComposerConfig{
		Templates:       web.Emails,
		Tokens:          db.Accounts(),
		SiteName:        cfg.SiteName,
		BaseURL:         cfg.BaseURL,
		InactiveWarning: cfg.InactiveWarning,
		Lifetimes:       account.TokenLifetimes{Reset: cfg.ResetTTL},
	})
	if err != nil {
		return nil, err
	}
	helo := cfg.SMTPHELO
	if helo == "" {
		helo = appmail.HELOName(cfg.BaseURL)
	}
	sender, err := appmail.New(appmail.Config{
		Outbox:     db.Outbox(),
		Queue:      queue,
		Composer:   composer,
		SMTP:       cfg.SMTP,
		TLSConfig:  &tls.Config{RootCAs: cfg.SMTPRoots, MinVersion: tls.VersionTLS12},
		HELO:       helo,
		From:       cfg.MailFrom,
		ReturnPath: cfg.MailReturnPath,
		MaxAge:     cfg.MailMaxAge,
		RetryMin:   cfg.MailRetryMin,
		RetryMax:   cfg.MailRetryMax,
		Logger:     logger,
		Observer:   metrics,
	})
	if err != nil {
		return nil, err
	}
	host.Add("mail", sender, hosted.Options{Policy: cfg.MailOnFailure, Tags: []string{hosted.TagReady}})

	pc := purgeConfig(cfg, db, logger.With("service", "purge"))
	pc.Observer = metrics
	purger, err := purge.New(pc)
	if err != nil {
		return nil, err
	}
	// Readiness does not depend on the purger: failed purges are no reason
	// to take an instance out of the load balancer. Its health shows on
	// the dashboard and in signup_service_health.
	host.Add("purge", purger, hosted.Options{Policy: cfg.PurgeOnFailure})

	var opsSrv *apphttp.Server
	if cfg.OpsAddr != "" {
		dash, err := ops.NewDashboard(ops.DashboardConfig{
			Services: host.States,
			Queue:    queue,
			Outbox:   db.Outbox(),
			Purges:   purger,
			Enqueue:  func(id int64) bool { return queue.TryEnqueue(appmail.NewJob(id)) },
			Sender:   sender.Blocked,
			Logger:   logger,
		})
		if err != nil {
			return nil, err
		}
		h, err := ops.NewHandler(ops.HandlerConfig{
			Gatherer: registry, Dashboard: dash, Logger: logger,
			Hosts: cfg.OpsHosts, Token: cfg.OpsToken, MetricsAuth: cfg.OpsMetricsAuth,
		})
		if err != nil {
			return nil, err
		}
		// pprof's CPU profile and trace run for up to 30 s by default.
		opsSrv = apphttp.NewServer(apphttp.ServerConfig{Name: "ops", Addr: cfg.OpsAddr, Handler: h, Logger: logger, WriteTimeout: 2 * time.Minute})
		host.Add("ops", opsSrv, hosted.Options{})
	}

	rl := cfg.RateLimit
	site, err := apphttp.NewSite(apphttp.SiteConfig{
		Accounts:       accounts,
		Ready:          host.HealthHandler(hosted.TagReady),
		Live:           host.HealthHandler(hosted.TagLive),
		BaseURL:        cfg.BaseURL,
		SiteName:       cfg.SiteName,
		RateLimit:      map[bool]int{true: 0, false: rl.N}[rl.Off],
		RatePeriod:     rl.Period,
		TrustedProxies: cfg.TrustedProxies,
		Observer:       metrics,
		RequestTimeout: cfg.RequestTimeout,
		LinkLifetimes:  account.TokenLifetimes{Reset: cfg.ResetTTL},
		Logger:         logger,
	})
	if err != nil {
		return nil, err
	}
	srv := apphttp.NewServer(apphttp.ServerConfig{Name: "http", Addr: cfg.HTTPAddr, Handler: site, Logger: logger})
	host.Add("http", srv, hosted.Options{Tags: []string{hosted.TagReady}})
	return &app{host: host, db: db, site: srv, ops: opsSrv}, nil
}

// pingCheck is the readiness check on the database: Unhealthy when it does
// not answer a ping within a second. The reason is fixed, since probes are
// public; the error goes to the log.
func pingCheck(db *store.DB, logger *slog.Logger) hosted.CheckFunc {
	return func(ctx context.Context) (hosted.Health, string) {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			logger.Warn("readiness: database unreachable", "err", err)
			return hosted.Unhealthy, "database unreachable"
		}
		return hosted.Healthy, ""
	}
}

// hashWaitLimit is how long a signup or sign-in already queued for a
// password-hashing turn may wait on when hashes turn out slower than
// expected: as long as its answer can still be written, that is what is
// left of a response's time once the request's own work is allowed for.
func hashWaitLimit(cfg *config) time.Duration {
	work := cfg.RequestTimeout
	if work <= 0 {
		work = apphttp.DefaultRequestTimeout
	}
	return apphttp.DefaultWriteTimeout - work
}
