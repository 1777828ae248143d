package ceserve

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// Flag names.
const (
	flagAddress        = "address"
	flagDataDir        = "data-dir"
	flagPublicURL      = "public-url"
	flagMetricsAddress = "metrics-address"
	flagLogLevel       = "log-level"
	flagLogFormat      = "log-format"
	flagRegisterWait   = "register-timeout"
	flagMaxInFlight    = "callback-max-in-flight"
	flagIdleStop       = "idle-stop"
)

// shutdownTimeout bounds the graceful stop of every instance on SIGTERM.
const shutdownTimeout = 20 * time.Second

// Command is the `serve` subcommand.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "Run a Cloud Elements-compatible /instances API and every instance created through it",
		Description: `Serves POST/GET /elements/api-v2/instances and GET/PATCH/DELETE /elements/api-v2/instances/{id}
with Cloud Elements' bodies and answers. Each instance runs the pipeline import-cloud-elements
writes for its body (polling or webhook input, Cloud Elements envelope, Elements-Webhook-Signature,
callback with retries and dead letters), in this process. Instances, checkpoints, spools and dead
letters live under --data-dir; a restart resumes every instance from its checkpoint.

Every call needs Authorization: User <WOOEVENTS_USER_SECRET>, Organization <WOOEVENTS_ORGANIZATION_SECRET>
(a call about one instance also accepts Element <its token>). WOOEVENTS_INSTANCES_KEY (16, 24 or 32
bytes, hex or base64) seals the stored instances with AES-GCM. See docs/serve.md.

  WOOEVENTS_USER_SECRET=... WOOEVENTS_ORGANIZATION_SECRET=... WOOEVENTS_INSTANCES_KEY=$(openssl rand -base64 32) \
    wooevents serve --address 0.0.0.0:8080 --public-url https://events.example.com`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagAddress, Value: "127.0.0.1:8080", EnvVars: []string{"WOOEVENTS_SERVE_ADDRESS"},
				Usage: "listen address of the API and of the webhook receivers"},
			&cli.StringFlag{Name: flagDataDir, Value: "./data", EnvVars: []string{"WOOEVENTS_DATA_DIR"},
				Usage: "instances, checkpoints, spools and dead letters"},
			&cli.StringFlag{Name: flagPublicURL, EnvVars: []string{"WOOEVENTS_PUBLIC_URL"},
				Usage: "base URL the stores reach this server at; webhook instances get <public-url>/elements/api-v2/events/woocommercerest/<id> (required for webhook instances)"},
			&cli.StringFlag{Name: flagMetricsAddress, Value: "127.0.0.1:4195", EnvVars: []string{"WOOEVENTS_METRICS_ADDRESS"},
				Usage: "serves /metrics (Prometheus: every instance's pipeline metrics, labelled wooevents_instance), /ping and /ready; empty disables it"},
			&cli.StringFlag{Name: flagLogLevel, Value: "info", EnvVars: []string{"WOOEVENTS_LOG_LEVEL"},
				Usage: "debug, info, warn, error or none"},
			&cli.StringFlag{Name: flagLogFormat, Value: "logfmt", EnvVars: []string{"WOOEVENTS_LOG_FORMAT"},
				Usage: "logfmt or json"},
			&cli.IntFlag{Name: flagMaxInFlight, Value: DefaultCallbackMaxInFlight,
				Usage: "notifications each instance sends at once (the callback output's max_in_flight; the YAML pipelines use 16)"},
			&cli.DurationFlag{Name: flagIdleStop, Value: DefaultIdleStop, EnvVars: []string{"WOOEVENTS_IDLE_STOP"},
				Usage: "stop a polling instance's pipeline while it has nothing to do and its next poll is at least this far away, and build it again for that poll (0: keep every pipeline running)"},
			&cli.DurationFlag{Name: flagRegisterWait, Value: defaultTimeout,
				Usage: "how long creating a webhook instance waits for its webhooks to be registered in the store"},
		},
		Action: func(c *cli.Context) error {
			logger, err := newLogger(c.App.Writer, c.String(flagLogLevel), c.String(flagLogFormat))
			if err != nil {
				return cli.Exit("serve: "+err.Error(), 2)
			}
			opts := Options{
				Address:             c.String(flagAddress),
				DataDir:             c.String(flagDataDir),
				PublicURL:           c.String(flagPublicURL),
				MetricsAddress:      c.String(flagMetricsAddress),
				UserSecret:          os.Getenv(EnvUserSecret),
				OrganizationSecret:  os.Getenv(EnvOrganizationSecret),
				Logger:              logger,
				RegisterTimeout:     c.Duration(flagRegisterWait),
				CallbackMaxInFlight: c.Int(flagMaxInFlight),
				IdleStop:            c.Duration(flagIdleStop),
			}
			if k := os.Getenv(EnvInstancesKey); k != "" {
				if opts.InstancesKey, err = ParseInstancesKey(k); err != nil {
					return cli.Exit("serve: "+EnvInstancesKey+": "+err.Error(), 2)
				}
			}
			return run(c.Context, opts)
		},
	}
}

// gcPercent is the GOGC serve runs with unless GOGC is set: a server of
// many mostly idle pipelines holds little garbage, and the heap's headroom
// (GOGC=100 lets it double before a collection) is most of its RSS.
const gcPercent = 50

func run(ctx context.Context, opts Options) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	srv, err := New(opts)
	if err != nil {
		return cli.Exit("serve: "+err.Error(), 1)
	}
	if err := srv.Start(); err != nil {
		_ = srv.Close(context.Background())
		return cli.Exit("serve: "+err.Error(), 1)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-srv.Err():
	}
	opts.Logger.Info("stopping: every instance stores its checkpoint")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Close(sctx); err != nil {
		return cli.Exit("serve: "+err.Error(), 1)
	}
	if serveErr != nil {
		return cli.Exit(fmt.Sprintf("serve: listener stopped: %v", serveErr), 1)
	}
	return nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug", "trace", "all":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	case "none", "off":
		l = slog.LevelError + 100
	default:
		return nil, fmt.Errorf("--%s %q: want debug, info, warn, error or none", flagLogLevel, level)
	}
	o := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "logfmt", "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--%s %q: want logfmt or json", flagLogFormat, format)
}
