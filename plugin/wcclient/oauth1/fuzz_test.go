package oauth1_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/tests/wcsim"
)

var (
	simOnce sync.Once
	sim     *wcsim.Store
	client  *wcclient.Client
	simErr  error
)

// startSim runs one plain-HTTP simulated store per fuzz worker: its OAuth 1.0a
// check is written independently from this package, after WooCommerce's PHP.
func startSim() {
	sim = wcsim.New(wcsim.Options{Logf: func(string, ...any) {}})
	if simErr = sim.Start(); simErr != nil {
		return
	}
	client, simErr = wcclient.New(wcclient.Config{
		StoreURL: sim.URL(), ConsumerKey: wcsim.DefaultConsumerKey, ConsumerSecret: wcsim.DefaultConsumerSecret,
		Auth: wcclient.AuthOAuth1, MaxRetryElapsed: -1,
	})
}

// FuzzOAuth1 signs requests carrying arbitrary parameter values (and simple
// arbitrary names) and checks that the simulator's WooCommerce-exact verifier
// accepts every one of them.
func FuzzOAuth1(f *testing.F) {
	for _, seed := range [][2]string{
		{"search", "a b"}, {"x", "~-._"}, {"q", "100%"}, {"z", "ünïcødé"}, {"a", "="},
		{"b", "&oauth_nonce=1"}, {"c", ""}, {"d", "+plus+"}, {"e", "\x00\xff"}, {"f", "a,b,c"},
	} {
		f.Add(seed[0], seed[1], "GET")
	}
	f.Fuzz(func(t *testing.T, name, value, method string) {
		simOnce.Do(startSim)
		if simErr != nil {
			t.Fatal(simErr)
		}
		// PHP rewrites '.', ' ' and '[' in names; keep names to what PHP passes through.
		name = "x_" + strings.Map(func(r rune) rune {
			if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
				return r
			}
			return -1
		}, strings.ToLower(name))
		if method != http.MethodHead {
			method = http.MethodGet
		}
		q := url.Values{name: {value}}
		_, err := client.Do(context.Background(), method, "orders", q, nil, nil)
		if code := wcclient.StatusCode(err); code == http.StatusUnauthorized {
			t.Fatalf("signed request with %s=%q rejected: %v", name, value, err)
		}
	})
}
