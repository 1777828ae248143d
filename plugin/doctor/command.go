package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcwebhook"
)

// Flag names and the environment variables they read.
const (
	flagStoreURL       = "store-url"
	flagConsumerKey    = "consumer-key"
	flagConsumerSecret = "consumer-secret"
	flagAuth           = "auth"
	flagConfig         = "config"
	flagFormat         = "format"
	flagResources      = "resources"
	flagInterval       = "interval"
	flagScanInterval   = "scan-interval"
	flagPageSize       = "page-size"
	flagDeliveryURL    = "delivery-url"
	flagTopics         = "topics"
	flagTimeout        = "timeout"
	flagTLSCAFile      = "tls-ca-file"
	flagTLSSkipVerify  = "tls-skip-verify"

	EnvStoreURL       = "WOOEVENTS_STORE_URL"
	EnvConsumerKey    = "WOOEVENTS_CONSUMER_KEY"
	EnvConsumerSecret = "WOOEVENTS_CONSUMER_SECRET"
)

// Exit codes.
const (
	exitFailed = 1 // a check failed
	exitUsage  = 2 // bad flags or an unreadable config
)

// Command is the `doctor` subcommand.
func Command() *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "Check a WooCommerce store (reachability, TLS, auth, key permission, clock, filters, costs, webhooks)",
		Description: `Checks a store before you write a pipeline for it, and whenever something goes wrong. Each check
prints a line: ok, warn or fail, what it found, and for warn and fail what to do. The exit code is 1 when
a check fails. Nothing is written to the store (the key's write permission is found with an empty POST
that WooCommerce rejects), and no key or secret is printed.

  export WOOEVENTS_CONSUMER_KEY=ck_... WOOEVENTS_CONSUMER_SECRET=cs_...
  wooevents doctor --store-url https://shop.example.com
  wooevents doctor -c ./config/hybrid_to_kafka.yaml        every store the pipeline names
  wooevents doctor --store-url https://shop.example.com --format json

With -c, the stores, keys, auth, TLS, resources, intervals and webhook delivery URLs come from the
pipeline's woocommerce_poll and woocommerce_webhook inputs (stores: and register: blocks included), with
${VARS} read from the environment as wooevents run would. See docs/troubleshooting.md for every failure.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagStoreURL, EnvVars: []string{EnvStoreURL}, Usage: "the store's WordPress home URL (without -c)"},
			&cli.StringFlag{Name: flagConsumerKey, EnvVars: []string{EnvConsumerKey}, Usage: "REST API consumer key (ck_…)"},
			&cli.StringFlag{Name: flagConsumerSecret, EnvVars: []string{EnvConsumerSecret}, Usage: "REST API consumer secret (cs_…)"},
			&cli.StringFlag{Name: flagAuth, Value: string(wcclient.AuthAuto), Usage: "the auth mode wooevents would use: auto, basic, query or oauth1 (all are tried)"},
			&cli.StringSliceFlag{Name: flagConfig, Aliases: []string{"c"}, Usage: "check every store this pipeline config names (repeatable)"},
			&cli.StringFlag{Name: flagFormat, Value: "text", Usage: "text or json"},
			&cli.StringFlag{Name: flagResources, Value: strings.Join(DefaultResources, ","), Usage: "resources to count and check (without -c)"},
			&cli.DurationFlag{Name: flagInterval, Value: defaultInterval, Usage: "poll interval to estimate costs with (without -c)"},
			&cli.DurationFlag{Name: flagScanInterval, Value: defaultScanInterval, Usage: "customers scan_interval (least time between passes) to estimate the scan's cost with (without -c)"},
			&cli.IntFlag{Name: flagPageSize, Value: defaultPageSize, Usage: "objects per page (without -c)"},
			&cli.StringFlag{Name: flagDeliveryURL, Usage: "your webhook receiver's public URL: check the store's webhooks for it (without -c)"},
			&cli.StringFlag{Name: flagTopics, Usage: "topics expected at --delivery-url, comma separated (default: order, product, customer, coupon × created, updated, deleted, restored)"},
			&cli.DurationFlag{Name: flagTimeout, Value: wcclient.DefaultTimeout, Usage: "timeout of each request"},
			&cli.StringFlag{Name: flagTLSCAFile, Usage: "PEM file of the CA that signed the store's certificate (test stores)"},
			&cli.BoolFlag{Name: flagTLSSkipVerify, Usage: "do not verify the store's certificate (throwaway test stores only)"},
		},
		Action: func(c *cli.Context) error {
			return runCommand(c.Context, c, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runCommand(ctx context.Context, c *cli.Context, stdout, stderr io.Writer) error {
	format := c.String(flagFormat)
	if format != "text" && format != "json" {
		return cli.Exit("doctor: --format must be text or json", exitUsage)
	}
	opts := Options{Timeout: c.Duration(flagTimeout)}
	if ca, skip := c.String(flagTLSCAFile), c.Bool(flagTLSSkipVerify); ca != "" || skip {
		tc := &tls.Config{InsecureSkipVerify: skip} //nolint:gosec // an explicit flag, reported as a warning
		if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return cli.Exit("doctor: "+err.Error(), exitUsage)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return cli.Exit("doctor: "+ca+": no PEM certificate in it", exitUsage)
			}
			tc.RootCAs = pool
		}
		opts.TLS = tc
	}

	var targets []*Target
	configs := c.StringSlice(flagConfig)
	if len(configs) > 0 {
		for _, path := range configs {
			ts, missing, err := TargetsFromConfig(path, os.LookupEnv)
			if err != nil {
				return cli.Exit("doctor: "+err.Error(), exitUsage)
			}
			if len(missing) > 0 {
				fmt.Fprintf(stderr, "doctor: %s: not set and without a default: %s (read as empty)\n", path, strings.Join(missing, ", "))
			}
			if len(ts) == 0 {
				fmt.Fprintf(stderr, "doctor: %s has no woocommerce_poll or woocommerce_webhook input: no store to check\n", path)
			}
			targets = append(targets, ts...)
		}
		if len(targets) == 0 {
			return cli.Exit("doctor: no store to check", exitUsage)
		}
	} else {
		storeURL := c.String(flagStoreURL)
		if storeURL == "" {
			return cli.Exit("usage: wooevents doctor --store-url URL (keys in WOOEVENTS_CONSUMER_KEY and WOOEVENTS_CONSUMER_SECRET), or wooevents doctor -c pipeline.yaml", exitUsage)
		}
		t := &Target{Client: wcclient.Config{
			StoreURL:       storeURL,
			ConsumerKey:    c.String(flagConsumerKey),
			ConsumerSecret: c.String(flagConsumerSecret),
			Auth:           wcclient.AuthMode(c.String(flagAuth)),
		}}
		switch t.Client.Auth {
		case wcclient.AuthAuto, wcclient.AuthBasic, wcclient.AuthQuery, wcclient.AuthOAuth1:
		default:
			return cli.Exit("doctor: --auth must be auto, basic, query or oauth1", exitUsage)
		}
		size := c.Int(flagPageSize)
		if size < 1 || size > wcclient.MaxPerPage {
			return cli.Exit(fmt.Sprintf("doctor: --page-size must be 1 to %d", wcclient.MaxPerPage), exitUsage)
		}
		if c.Duration(flagInterval) <= 0 {
			return cli.Exit("doctor: --interval must be positive (the poll interval, e.g. 5m)", exitUsage)
		}
		if c.Duration(flagScanInterval) < 0 {
			return cli.Exit("doctor: --scan-interval must not be negative (0: scan every poll)", exitUsage)
		}
		t.Poll = &PollSettings{
			Resources:    ResourcesFromNames(strings.Split(c.String(flagResources), ",")),
			Interval:     c.Duration(flagInterval),
			ScanInterval: c.Duration(flagScanInterval),
			ScanMaxPages: defaultScanMaxPages,
			PageSize:     size,
			StartFrom:    "beginning",
		}
		if d := c.String(flagDeliveryURL); d != "" {
			topics := wcwebhook.DefaultRegisterTopics
			if tl := c.String(flagTopics); tl != "" {
				topics = nil
				for _, s := range strings.Split(tl, ",") {
					if s = strings.TrimSpace(s); s != "" {
						topics = append(topics, s)
					}
				}
			}
			t.Webhooks = &WebhookSettings{DeliveryURLs: []string{d}, Topics: topics}
		}
		targets = []*Target{t}
	}

	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	rep := Run(ctx, targets, opts)
	var err error
	if format == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return cli.Exit("doctor: "+err.Error(), exitFailed)
	}
	if rep.Failed() {
		return cli.Exit("", exitFailed)
	}
	return nil
}
