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
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/plugin/wcevent"
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
	in, err := New(Config{Address: addr, Stores: []StoreConfig{{URL: testStore, Secrets: []string{testSecret}}},
		CertFile: certFile, KeyFile: keyFile}, service.MockResources())
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

func TestConfigErrors(t *testing.T) {
	for name, c := range map[string]Config{
		"no store":                {},
		"no secret":               {Stores: []StoreConfig{{URL: testStore}}},
		"empty secret":            {Stores: []StoreConfig{{Secrets: []string{""}}}},
		"spooled without dir":     {Stores: []StoreConfig{{Secrets: []string{"s"}}}, Ack: AckSpooled},
		"unknown ack":             {Stores: []StoreConfig{{Secrets: []string{"s"}}}, Ack: "later"},
		"cert without key":        {Stores: []StoreConfig{{Secrets: []string{"s"}}}, CertFile: "x.pem"},
		"duplicate store":         {Stores: []StoreConfig{{Name: "a", URL: "https://a", Secrets: []string{"s"}}, {Name: "a", URL: "https://b", Secrets: []string{"s"}}}},
		"store without url":       {Stores: []StoreConfig{{Name: "a", Secrets: []string{"s"}}}},
		"path without slash":      {Path: "webhooks", Stores: []StoreConfig{{Secrets: []string{"s"}}}},
		"missing TLS files":       {Stores: []StoreConfig{{Secrets: []string{"s"}}}, CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"},
		"confirm without creds":   {Stores: []StoreConfig{{Secrets: []string{"s"}}}, ConfirmDeletes: true},
		"unknown rate limit name": {Stores: []StoreConfig{{Secrets: []string{"s"}}}, RateLimit: "nope"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := New(c, service.MockResources())
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
	// Secrets never show in a config error from YAML either.
	for _, yaml := range []string{
		"secret: hush-hush-secret\nstores: [ { name: a, url: \"https://a\", secrets: [ other-hush ] } ]\n",
		"stores: [ { name: a, url: \"https://a\", secrets: [ hush-one ] }, { name: a, url: \"https://b\", secrets: [ hush-two ] } ]\n",
		"secret: hush-hush-secret\nregister: { store_url: \"ftp://x\", consumer_key: ck_hush, consumer_secret: cs_hush, delivery_url: \"http://x/\" }\n",
	} {
		conf, err := Spec().ParseYAML(yaml, nil)
		require.NoError(t, err)
		c, err := ConfigFromParsed(conf, service.MockResources())
		if err == nil {
			_, err = New(c, service.MockResources())
		}
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "hush")
	}
}
