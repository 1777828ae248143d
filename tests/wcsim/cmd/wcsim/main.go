// Command wcsim serves the WooCommerce store simulator (package
// github.com/wooevents/wooevents/tests/wcsim) for e2e tests and the demo.
//
//	go run ./tests/wcsim/cmd/wcsim -addr 127.0.0.1:8480 -seed-orders 20 -tls=false -utc-offset +02:00
//
// It prints the store URL and the (fixture) API keys, then serves until
// interrupted. See -help for the /__sim control endpoints.
package main

import (
	"flag"
	"fmt"
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

func main() {
	fs := flag.NewFlagSet("wcsim", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8480", "listen address")
	useTLS := fs.Bool("tls", false, "serve HTTPS with a self-signed certificate (enables Basic/query-string keys)")
	offset := fs.String("utc-offset", "+00:00", "site UTC offset, e.g. +02:00 or -07:00")
	seedOrders := fs.Int("seed-orders", 0, "orders to seed (one per second ending now)")
	seedProducts := fs.Int("seed-products", 0, "products to seed")
	seedCustomers := fs.Int("seed-customers", 0, "customers to seed")
	seedCoupons := fs.Int("seed-coupons", 0, "coupons to seed")
	coalesce := fs.Bool("coalesce-webhooks", false, "queue webhook deliveries until POST /__sim/flush")
	quiet := fs.Bool("quiet", false, "do not log")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wcsim [flags]\n\nServes a simulated WooCommerce 11 store (wc/v3 REST + webhooks).\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s\n", wcsim.SimEndpoints)
	}
	_ = fs.Parse(os.Args[1:])
	off, err := parseOffset(*offset)
	if err != nil {
		log.Fatalf("wcsim: %v", err)
	}
	opts := wcsim.Options{TLS: *useTLS, UTCOffset: off, Addr: *addr, CoalesceWebhooks: *coalesce}
	if !*quiet {
		opts.Logf = log.Printf
	}
	s := wcsim.New(opts)
	for res, n := range map[string]int{wcsim.Orders: *seedOrders, wcsim.Products: *seedProducts, wcsim.Customers: *seedCustomers, wcsim.Coupons: *seedCoupons} {
		if n > 0 {
			first, last := s.Seed(res, n)
			log.Printf("wcsim: seeded %d %s (ids %d..%d)", n, res, first, last)
		}
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
