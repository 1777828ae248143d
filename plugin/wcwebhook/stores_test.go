package wcwebhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tidwall/gjson"

	"github.com/wooevents/wooevents/plugin/wcevent"
	"github.com/wooevents/wooevents/tests/wcsim"
)

// TestSeveralStores: stores are selected by path segment or, on the bare
// path, by X-WC-Webhook-Source; each store has its own secrets (several at
// once, for rotation) and its URL becomes the event's store.
func TestSeveralStores(t *testing.T) {
	run := startStream(t, `  stores:
    - name: eu
      url: https://EU.shop.example.com/
      secrets: [ new-eu-secret, old-eu-secret ]
    - name: us
      url: https://us.shop.example.com
      secrets: [ us-secret ]
`, nil, "")
	storeOf := func(t *testing.T) string {
		m := run.next(t)
		s, _ := m.MetaGet(wcevent.MetaStore)
		return s
	}
	cases := []struct {
		name, path, secret, source string
		status                     int
		store                      string
	}{
		{"eu by path, new secret", "/eu", "new-eu-secret", "", 200, "https://eu.shop.example.com"},
		{"eu by path, old secret", "/eu", "old-eu-secret", "", 200, "https://eu.shop.example.com"},
		{"eu by path ignores the source header", "/eu", "new-eu-secret", "https://us.shop.example.com/", 200, "https://eu.shop.example.com"},
		{"us by path", "/us", "us-secret", "", 200, "https://us.shop.example.com"},
		{"us path, eu secret", "/us", "new-eu-secret", "", 401, ""},
		{"unknown store", "/asia", "us-secret", "", 404, ""},
		{"bare path, by source", "", "us-secret", "https://us.shop.example.com/", 200, "https://us.shop.example.com"},
		{"bare path, source differs in case", "", "old-eu-secret", "https://eu.SHOP.example.com/", 200, "https://eu.shop.example.com"},
		{"bare path, source of another store's secret", "", "us-secret", "https://eu.shop.example.com/", 401, ""},
		{"bare path, unknown source", "", "us-secret", "https://elsewhere.example.com/", 401, ""},
		{"bare path, no source", "", "us-secret", "", 401, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := post(t, signedRequest(t, run.URL+tc.path, tc.secret, "order.updated", tc.source, orderBody))
			require.Equal(t, tc.status, status, body)
			if tc.status == 200 {
				assert.Equal(t, tc.store, storeOf(t))
			} else {
				r := *run
				r.URL = run.URL + "/us"
				r.sentinel(t, "us-secret", "", 50000+i)
			}
		})
	}
	assert.Equal(t, int64(3), run.Metrics.Get(MetricRejections, "reason="+ReasonUnknownStore))
}

// TestTLS serves HTTPS with cert_file/key_file.
func TestTLS(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	addr := freeAddr(t)
	in, err := newTestInput(fmt.Sprintf("address: %s\nstore_url: %s\nsecret: %s\ncert_file: %s\nkey_file: %s\n",
		addr, testStore, testSecret, certFile, keyFile))
	require.NoError(t, err)
	require.NoError(t, in.Connect(context.Background()))
	defer in.Close(context.Background())
	got := make(chan *service.Message, 1)
	go func() {
		batch, ack, err := in.ReadBatch(context.Background())
		if err == nil {
			got <- batch[0]
			_ = ack(context.Background(), nil)
		}
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Do(signedRequest(t, "https://"+addr+DefaultPath, testSecret, "order.updated", "", orderBody))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m := <-got
	id, _ := m.MetaGet(wcevent.MetaObjectID)
	assert.Equal(t, "42", id)

	// Plain HTTP on the TLS port is refused.
	resp, err = http.DefaultClient.Do(signedRequest(t, "http://"+addr+DefaultPath, testSecret, "order.updated", "", orderBody))
	if err == nil {
		resp.Body.Close()
		assert.NotEqual(t, http.StatusOK, resp.StatusCode)
	}
}

func selfSigned(t *testing.T) (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile
}

// TestGracefulShutdown: a delivery whose message is still in the pipeline
// when the stream stops is answered 200 once it is acked, not cut off.
func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	inPipeline := make(chan struct{}, 1)
	run := startStream(t, "  secret: "+testSecret+"\n", func(ctx context.Context, m *service.Message) error {
		inPipeline <- struct{}{}
		<-release
		return nil
	}, "")
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(signedRequest(t, run.URL, testSecret, "order.updated", testStore, orderBody))
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-inPipeline
	stopped := make(chan struct{})
	go func() {
		run.Stop(t)
		close(stopped)
	}()
	select {
	case s := <-answered:
		t.Fatalf("answered %d before the ack", s)
	case <-stopped:
		t.Fatal("stopped with a request in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	require.Equal(t, http.StatusOK, <-answered)
	<-stopped
	// The server is gone.
	_, err := http.Post(run.URL, "text/plain", nil)
	require.Error(t, err)
}

// TestConfigErrors: configurations New refuses, with errors that name the
// problem and never a secret. (The cross-field ones are lint errors too, see
// TestLintRules.)
func TestConfigErrors(t *testing.T) {
	for name, yaml := range map[string]string{
		"no store":                "{}",
		"empty secret":            "secrets: [ \"\" ]",
		"store without secret":    "stores: [ { name: a, url: \"https://a\", secrets: [] } ]",
		"spooled without dir":     "secret: s3cret\nack: spooled",
		"cert without key":        "secret: s3cret\ncert_file: x.pem",
		"duplicate store":         "stores: [ { name: a, url: \"https://a\", secrets: [ s3cret ] }, { name: a, url: \"https://b\", secrets: [ s3cret ] } ]",
		"store name with slash":   "stores: [ { name: a/b, url: \"https://a\", secrets: [ s3cret ] } ]",
		"path without slash":      "secret: s3cret\npath: webhooks",
		"missing TLS files":       "secret: s3cret\ncert_file: /nonexistent/c.pem\nkey_file: /nonexistent/k.pem",
		"confirm without creds":   "secret: s3cret\nconfirm_deletes: true",
		"unknown rate limit name": "secret: s3cret\nrate_limit: nope",
		"spool_max_bytes 0":       "secret: s3cret\nack: spooled\nspool_dir: /tmp/x\nspool_max_bytes: 0",
		"negative max_in_flight":  "secret: s3cret\nmax_in_flight: -1",
		"stores and secret":       "secret: s3cret\nstores: [ { name: a, url: \"https://a\", secrets: [ s3cret ] } ]",
		"bad public_url":          "secret: s3cret\npublic_url: events.example.com",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newTestInput(yaml)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
	// Secrets never show in a config error from YAML either.
	for _, yaml := range []string{
		"secret: hush-hush-secret\nstores: [ { name: a, url: \"https://a\", secrets: [ other-hush ] } ]\n",
		"stores: [ { name: a, url: \"https://a\", secrets: [ hush-one ] }, { name: a, url: \"https://b\", secrets: [ hush-two ] } ]\n",
		"secret: hush-hush-secret\nregister: { store_url: \"ftp://x\", consumer_key: ck_hush, consumer_secret: cs_hush, delivery_url: \"http://x/\" }\n",
		"stores: [ { name: a, url: \"https://a\", secrets: [ hush-one ], register: { consumer_key: ck_hush } } ]\n",
	} {
		_, err := newTestInput(yaml)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "hush")
	}
}

// TestLintRules: the cross-field checks are lint rules, so `wooevents lint`
// (and every config load) reports them before anything runs.
func TestLintRules(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"spooled without spool_dir": {"secret: s\nack: spooled\n", "ack: spooled needs spool_dir"},
		"cert without key":          {"secret: s\ncert_file: c.pem\n", "cert_file needs key_file"},
		"key without cert":          {"secret: s\nkey_file: k.pem\n", "key_file needs cert_file"},
		"stores and store_url":      {"store_url: https://a\nstores: [ { name: a, url: https://a, secrets: [ s ] } ]\n", "stores replaces the single-store fields"},
		"stores and secret":         {"secret: s\nstores: [ { name: a, url: https://a, secrets: [ s ] } ]\n", "stores replaces the single-store fields"},
		"stores and register": {"stores: [ { name: a, url: https://a, secrets: [ s ] } ]\nregister: { store_url: https://a, consumer_key: k, consumer_secret: c }\n",
			"stores replaces the single-store fields"},
		"no store":               {"address: 127.0.0.1:0\n", "no store configured"},
		"duplicate store names":  {"stores: [ { name: a, url: https://a, secrets: [ s ] }, { name: a, url: https://b, secrets: [ s ] } ]\n", "a name of its own"},
		"spool_max_bytes 0":      {"secret: s\nspool_max_bytes: 0\n", "spool_max_bytes must be positive"},
		"negative max_in_flight": {"secret: s\nmax_in_flight: -5\n", "max_in_flight must be 0 (unbounded) or positive"},
		"confirm without creds":  {"secret: s\nconfirm_deletes: true\n", "confirm_deletes needs REST credentials"},
	} {
		t.Run(name, func(t *testing.T) {
			err := env().NewStreamBuilder().AddInputYAML("woocommerce_webhook:\n" + indent(tc.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	for name, yaml := range map[string]string{
		"single store":         "secret: s\nstore_url: https://a\nack: spooled\nspool_dir: ./spool\n",
		"stores with register": "public_url: https://events.example\nstores: [ { name: a, url: https://a, secrets: [ s ], register: { consumer_key: k, consumer_secret: c } }, { name: b, url: https://b, secrets: [ s ] } ]\nconfirm_deletes: true\n",
		"tls":                  "secret: s\ncert_file: c.pem\nkey_file: k.pem\nmax_in_flight: 0\n",
	} {
		t.Run("valid "+name, func(t *testing.T) {
			require.NoError(t, env().NewStreamBuilder().AddInputYAML("woocommerce_webhook:\n"+indent(yaml)))
		})
	}
}

func indent(yaml string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(yaml, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// TestStoresEachRegistered: two simulated stores on one endpoint, each with
// its own register block. Each store gets its hooks at
// <public_url><path>/<name> signed with its own secret; its deliveries are
// verified and emitted with its store name and URL; its deletes are
// confirmed with its own credentials (the twin of the other post type is
// dropped, the real delete is confirmed).
func TestStoresEachRegistered(t *testing.T) {
	simA, simB := startSim(t), startSim(t)
	const secretA, secretB = "store-a-secret", "store-b-secret"
	storeFields := func(name string, sim *wcsim.Store, secret string) string {
		return fmt.Sprintf(`    - name: %s
      url: %s
      secrets: [ %s ]
      register:
        consumer_key: %s
        consumer_secret: %s
        max_retry_elapsed: 2s
`, name, sim.URL(), secret, wcsim.DefaultConsumerKey, wcsim.DefaultConsumerSecret)
	}
	run := startStream(t, "  public_url: \"{{BASE}}\"\n  stores:\n"+
		storeFields("a", simA, secretA)+storeFields("b", simB, secretB), nil, "")

	require.Eventually(t, func() bool {
		return registeredWith(simA, run.URL+"/a", secretA) && len(simA.Webhooks()) == len(simTopics) &&
			registeredWith(simB, run.URL+"/b", secretB) && len(simB.Webhooks()) == len(simTopics)
	}, 20*time.Second, 20*time.Millisecond)
	for _, sim := range []*wcsim.Store{simA, simB} {
		for _, d := range sim.Flush() {
			require.True(t, d.Ping && d.Success, "only successful pings so far: %+v", d)
		}
	}

	// Each store's changes come out once, named after their store.
	type seen struct{ typ, name, store, id, confirmed string }
	collect := func() []seen {
		var out []seen
		for _, m := range drain(run) {
			raw, _ := m.AsBytes()
			out = append(out, seen{metaOf(m, wcevent.MetaType), metaOf(m, MetaStoreName), gjson.GetBytes(raw, "store").Str,
				metaOf(m, wcevent.MetaObjectID), metaOf(m, MetaDeleteConfirmed)})
		}
		return out
	}
	storeA, storeB := wcevent.NormalizeStore(simA.URL()), wcevent.NormalizeStore(simB.URL())
	orderA, err := simA.Create(wcsim.Orders, map[string]any{"status": "processing"})
	require.NoError(t, err)
	productB, err := simB.Create(wcsim.Products, map[string]any{"name": "Widget", "regular_price": "9.99"})
	require.NoError(t, err)
	got := collect()
	assert.Contains(t, got, seen{"order.created", "a", storeA, strconv.FormatInt(orderA, 10), ""})
	assert.Contains(t, got, seen{"product.created", "b", storeB, strconv.FormatInt(productB, 10), ""})
	for _, s := range got {
		switch s.name {
		case "a":
			assert.Equal(t, storeA, s.store, "%+v", s)
		case "b":
			assert.Equal(t, storeB, s.store, "%+v", s)
		default:
			t.Errorf("event without a store name: %+v", s)
		}
	}

	simB.Advance(2 * time.Second)
	require.NoError(t, simB.Trash(wcsim.Products, productB))
	got = collect()
	require.Equal(t, []seen{{"product.deleted", "b", storeB, strconv.FormatInt(productB, 10), "true"}}, got,
		"store b's credentials confirmed the product delete and dropped the coupon twin")
	assert.Equal(t, int64(1), run.Metrics.Get(MetricDeleteChecks, "result="+DeleteSpurious))

	for _, sim := range []*wcsim.Store{simA, simB} {
		for _, d := range sim.Flush() {
			assert.True(t, d.Success, "delivery %s %d answered %d", d.Topic, d.ObjectID, d.StatusCode)
		}
	}
}

// Two stores entries registering on one store would take each other's
// webhooks (registrars recognise theirs by name and topic): refused at
// build time, naming both entries.
func TestStoresRegisteringOnOneStoreRefused(t *testing.T) {
	entry := func(name, url string) string {
		return fmt.Sprintf("{ name: %s, url: %s, secrets: [ s-%s ], register: { consumer_key: k, consumer_secret: c } }", name, url, name)
	}
	_, err := newTestInput("address: 127.0.0.1:0\npublic_url: https://events.example\nstores: [ " +
		entry("a", "https://shop.example") + ", " + entry("b", "https://shop.example/") + " ]\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stores[0] and stores[1] both register webhooks on https://shop.example")
	in, err := newTestInput("address: 127.0.0.1:0\npublic_url: https://events.example\nstores: [ " +
		entry("a", "https://shop.example") + ", " + entry("b", "https://other.example") + " ]\n")
	require.NoError(t, err)
	require.NoError(t, in.Close(context.Background()))
}
