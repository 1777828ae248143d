// Command wcsim serves the WooCommerce store simulator (package
// github.com/wooevents/wooevents/tests/wcsim) for e2e tests and the demo.
//
//	go run ./tests/wcsim/cmd/wcsim -addr 127.0.0.1:8480 -seed-orders 20 -tls=false -utc-offset +02:00
//
// It prints the store URL and the (fixture) API keys, then serves until
// interrupted. See -help for the /__sim control endpoints, the latency and
// fault flags, and the store quirks (-behind-proxy, -strip-authorization,
// -no-pretty-permalinks, -ignore-modified-after, -clock-skew).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wooevents/wooevents/tests/wcsim"
)

func parseOffset(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "Z" || s == "0" {
		return 0, nil
	}
	sign := time.Duration(1)
	switch s[0] {
	case '+':
		s = s[1:]
	case '-':
		sign, s = -1, s[1:]
	}
	h, m, found := strings.Cut(s, ":")
	hh, err := strconv.Atoi(h)
	if err != nil || hh > 14 {
		return 0, fmt.Errorf("bad UTC offset %q (want +HH:MM)", s)
	}
	mm := 0
	if found {
		if mm, err = strconv.Atoi(m); err != nil || mm > 59 {
			return 0, fmt.Errorf("bad UTC offset minutes %q", m)
		}
	}
	return sign * (time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute), nil
}

// config is what the command line asks for.
type config struct {
	opts    wcsim.Options
	seeds   map[string]int
	seedAge time.Duration // how long before now the newest seeded record was modified
	quiet   bool
}

// parseFlags reads the command line (without the program name).
func parseFlags(args []string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("wcsim", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:8480", "listen address")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a self-signed certificate (enables Basic/query-string keys)")
	offset := fs.String("utc-offset", "+00:00", "site UTC offset, e.g. +02:00 or -07:00")
	seedOrders := fs.Int("seed-orders", 0, "orders to seed (one per second ending now, or -seed-age before now)")
	seedAge := fs.Duration("seed-age", 0, "age of the newest seeded record of each resource (e.g. 10s: the seeded data is history that no poll holds back as too recent)")
	seedProducts := fs.Int("seed-products", 0, "products to seed")
	seedCustomers := fs.Int("seed-customers", 0, "customers to seed")
	seedCoupons := fs.Int("seed-coupons", 0, "coupons to seed")
	coalesce := fs.Bool("coalesce-webhooks", false, "queue webhook deliveries until POST /__sim/flush")
	quiet := fs.Bool("quiet", false, "do not log")
	latency := fs.String("latency", "0-2ms", "delay of every REST request: a range (1ms-3ms), a fixed duration (5ms) or off")
	pageDelay := fs.Duration("page-delay", 0, "delay added to every list request, like a real store's query time (e.g. 300ms)")
	faultRate := fs.Float64("random-faults", 0, "answer this fraction (0..1) of REST requests with a random realistic fault")
	faultSeed := fs.Int64("random-faults-seed", 1, "seed of the random faults (the same seed draws the same faults)")
	tieSeed := fs.Int64("tie-seed", 0, "seed of the order of rows sharing a non-unique sort key (0 = fixed default)")
	clockSkew := fs.Duration("clock-skew", 0, "store clock minus real time, e.g. -20m (Date headers, OAuth timestamp window)")
	ignoreModified := fs.Bool("ignore-modified-after", false, "quirk: accept modified_after/modified_before without applying them")
	behindProxy := fs.Bool("behind-proxy", false, "quirk: TLS ends at a proxy without X-Forwarded-Proto (is_ssl() false: Basic and query keys ignored, OAuth signed for http://)")
	stripAuth := fs.Bool("strip-authorization", false, "quirk: the host drops the Authorization header (Basic never seen)")
	noPretty := fs.Bool("no-pretty-permalinks", false, "quirk: plain permalinks: /wp-json/... is an HTML 404, only /?rest_route=/... works")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wcsim [flags]\n\nServes a simulated WooCommerce 11 store (wc/v3 REST + webhooks).\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s\n", wcsim.SimEndpoints)
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	off, err := parseOffset(*offset)
	if err != nil {
		return config{}, err
	}
	lat, err := wcsim.ParseLatency(*latency)
	if err != nil {
		return config{}, fmt.Errorf("-latency: %w", err)
	}
	if *faultRate < 0 || *faultRate > 1 {
		return config{}, fmt.Errorf("-random-faults %v: want a fraction between 0 and 1", *faultRate)
	}
	if *pageDelay < 0 {
		return config{}, fmt.Errorf("-page-delay %v: must not be negative", *pageDelay)
	}
	if *seedAge < 0 {
		return config{}, fmt.Errorf("-seed-age %v: must not be negative", *seedAge)
	}
	return config{
		opts: wcsim.Options{TLS: *useTLS, UTCOffset: off, Addr: *addr, CoalesceWebhooks: *coalesce,
			Latency: lat, PageDelay: *pageDelay, RandomFaults: wcsim.RandomFaults{Rate: *faultRate, Seed: *faultSeed},
			TieSeed: *tieSeed, ClockSkew: *clockSkew, IgnoreModifiedAfter: *ignoreModified, BehindProxy: *behindProxy,
			StripAuthorization: *stripAuth, NoPrettyPermalinks: *noPretty},
		seeds:   map[string]int{wcsim.Orders: *seedOrders, wcsim.Products: *seedProducts, wcsim.Customers: *seedCustomers, wcsim.Coupons: *seedCoupons},
		seedAge: *seedAge,
		quiet:   *quiet,
	}, nil
}

// seed adds the records the command line asks for, one per second, the
// newest cfg.seedAge before the store's now; it returns the first and last
// id seeded per resource.
func seed(s *wcsim.Store, cfg config) (map[string][2]int64, error) {
	ids := map[string][2]int64{}
	for _, res := range []string{wcsim.Orders, wcsim.Products, wcsim.Customers, wcsim.Coupons} {
		n := cfg.seeds[res]
		if n <= 0 {
			continue
		}
		start := s.Now().Add(-cfg.seedAge - time.Duration(n-1)*time.Second)
		first, last, err := s.SeedWith(res, n, wcsim.SeedOptions{Start: start})
		if err != nil {
			return nil, fmt.Errorf("seeding %s: %w", res, err)
		}
		ids[res] = [2]int64{first, last}
		log.Printf("wcsim: seeded %d %s (ids %d..%d)", n, res, first, last)
	}
	return ids, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Fatalf("wcsim: %v", err)
	}
	opts := cfg.opts
	if !cfg.quiet {
		opts.Logf = log.Printf
	}
	s := wcsim.New(opts)
	if _, err := seed(s, cfg); err != nil {
		log.Fatalf("wcsim: %v", err)
	}
	if err := s.Start(); err != nil {
		log.Fatalf("wcsim: %v", err)
	}
	defer s.Close()
	fmt.Printf("url=%s\n", s.URL())
	for _, k := range s.Keys() {
		fmt.Printf("key permissions=%s consumer_key=%s consumer_secret=%s\n", k.Permissions, k.ConsumerKey, k.ConsumerSecret)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}
