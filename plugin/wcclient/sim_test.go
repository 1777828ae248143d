package wcclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/tests/wcsim"
)

// These tests run the client against the tests/wcsim store simulator, whose
// authentication reproduces WC_REST_Authentication (Basic/query keys only
// over HTTPS, one-legged OAuth 1.0a with nonce and timestamp checks).

const ordersPath = "/wp-json/wc/v3/orders"

func startSim(t *testing.T, tlsOn bool) *wcsim.Store {
	t.Helper()
	s := wcsim.New(wcsim.Options{TLS: tlsOn, UTCOffset: 2 * time.Hour})
	require.NoError(t, s.Start())
	t.Cleanup(s.Close)
	return s
}

func simClient(t *testing.T, s *wcsim.Store, mod func(*wcclient.Config)) *wcclient.Client {
	t.Helper()
	cfg := wcclient.Config{
		StoreURL:             s.URL(),
		ConsumerKey:          wcsim.DefaultConsumerKey,
		ConsumerSecret:       wcsim.DefaultConsumerSecret,
		HTTPClient:           s.Client(),
		RetryInitialInterval: 10 * time.Millisecond,
		RetryMaxInterval:     50 * time.Millisecond,
		MaxRetryElapsed:      3 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := wcclient.New(cfg)
	require.NoError(t, err)
	return c
}

// assertRequests checks the simulator's request count. The simulator logs a
// request after its handler returned, which can be just after the client got
// the answer, so wait (briefly) for the count to reach want first.
func assertRequests(t *testing.T, s *wcsim.Store, method, prefix string, want int) {
	t.Helper()
	require.Eventually(t, func() bool { return s.Requests(method, prefix) >= want }, 2*time.Second, 5*time.Millisecond,
		"want %d requests, have %d", want, s.Requests(method, prefix))
	assert.Equal(t, want, s.Requests(method, prefix))
}

func noSecrets(t *testing.T, s string) {
	t.Helper()
	assert.NotContains(t, s, wcsim.DefaultConsumerSecret)
	assert.NotContains(t, s, wcsim.DefaultConsumerKey)
}

func TestSimAuthModesAccepted(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
		auth wcclient.AuthMode
		sig  string
	}{
		{"https auto(basic)", true, wcclient.AuthAuto, ""},
		{"https basic", true, wcclient.AuthBasic, ""},
		{"https query", true, wcclient.AuthQuery, ""},
		{"https oauth1", true, wcclient.AuthOAuth1, ""},
		{"http auto(oauth1)", false, wcclient.AuthAuto, ""},
		{"http oauth1 sha1", false, wcclient.AuthOAuth1, "HMAC-SHA1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, tc.tls)
			id, err := s.Create(wcsim.Orders, map[string]any{"status": "processing"})
			require.NoError(t, err)
			c := simClient(t, s, func(cfg *wcclient.Config) { cfg.Auth = tc.auth; cfg.SignatureMethod = tc.sig })
			// An array parameter, a comma list and a space: all signed the
			// way WooCommerce re-derives them.
			q := url.Values{"status[]": {"processing", "on-hold"}, "_fields": {"id,status,date_modified_gmt"}, "search": {""}, "order": {"asc"}}
			p, err := c.ListPage(context.Background(), "orders", q, 1, 10)
			require.NoError(t, err)
			require.Len(t, p.Items, 1)
			var o struct {
				ID     int64  `json:"id"`
				Status string `json:"status"`
			}
			require.NoError(t, json.Unmarshal(p.Items[0], &o))
			assert.Equal(t, id, o.ID)
			assert.Equal(t, "processing", o.Status)
			assert.Equal(t, 1, p.Total)
			assert.Equal(t, 1, p.TotalPages)
			assert.True(t, p.Last())
			assertRequests(t, s, "GET", ordersPath, 1)
		})
	}
}

func TestSimBasicOverHTTPRejectedWithHint(t *testing.T) {
	s := startSim(t, false)
	for _, mode := range []wcclient.AuthMode{wcclient.AuthBasic, wcclient.AuthQuery} {
		c := simClient(t, s, func(cfg *wcclient.Config) { cfg.Auth = mode })
		_, err := c.ListPage(context.Background(), "orders", nil, 1, 10)
		var we *wcclient.Error
		require.ErrorAs(t, err, &we, mode)
		assert.Equal(t, http.StatusUnauthorized, we.Status)
		assert.Equal(t, "woocommerce_rest_cannot_view", we.Code)
		assert.Contains(t, err.Error(), "use auth: oauth1")
		noSecrets(t, err.Error())
	}
	assertRequests(t, s, "", ordersPath, 2)
}

func TestSimOAuthNonceReplayAndStaleTimestamp(t *testing.T) {
	s := startSim(t, false)
	fixed := simClient(t, s, func(cfg *wcclient.Config) {
		cfg.Nonce = func() string { return "00112233445566778899aabbccddeeff" }
	})
	_, err := fixed.Do(context.Background(), "GET", "orders", nil, nil, nil)
	require.NoError(t, err)
	_, err = fixed.Do(context.Background(), "GET", "orders", nil, nil, nil)
	var we *wcclient.Error
	require.ErrorAs(t, err, &we)
	assert.Equal(t, 401, we.Status)
	assert.Contains(t, we.Message, "nonce has already been used")

	stale := simClient(t, s, func(cfg *wcclient.Config) { cfg.Now = func() time.Time { return time.Now().Add(-16 * time.Minute) } })
	_, err = stale.Do(context.Background(), "GET", "orders", nil, nil, nil)
	require.ErrorAs(t, err, &we)
	assert.Equal(t, 401, we.Status)
	assert.Contains(t, we.Message, "timestamp")
	noSecrets(t, err.Error())
	assertRequests(t, s, "GET", ordersPath, 3)

	wrong := simClient(t, s, func(cfg *wcclient.Config) { cfg.ConsumerSecret = "cs_not-the-secret" })
	_, err = wrong.Do(context.Background(), "GET", "orders", nil, nil, nil)
	require.ErrorAs(t, err, &we)
	assert.Contains(t, we.Message, "signature")
	assert.NotContains(t, err.Error(), "cs_not-the-secret")
	assertRequests(t, s, "GET", ordersPath, 4)
}

func TestSimWalkAcrossPages(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		s := startSim(t, tlsOn)
		first, last := s.Seed(wcsim.Orders, 23)
		c := simClient(t, s, nil)
		seen := map[int64]bool{}
		var pages int
		err := c.Walk(context.Background(), "/wc/v3/orders", url.Values{"orderby": {"id"}, "order": {"asc"}}, 10, func(p *wcclient.Page) error {
			pages++
			assert.Equal(t, 23, p.Total)
			assert.Equal(t, 3, p.TotalPages)
			if p.Page == 1 && !tlsOn {
				// The store repeats the used nonce in rel=next; Walk re-signs instead.
				assert.Contains(t, p.Header.Get("Link"), "oauth_nonce=")
				assert.Contains(t, p.Header.Get("Link"), `rel="next"`)
			}
			for _, it := range p.Items {
				var o struct{ ID int64 }
				require.NoError(t, json.Unmarshal(it, &o))
				seen[o.ID] = true
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, 3, pages)
		assert.Len(t, seen, 23)
		assert.True(t, seen[first] && seen[last])
		assertRequests(t, s, "GET", ordersPath, 3)
	}
}

func TestSimRetryAfterHonoured(t *testing.T) {
	s := startSim(t, false)
	s.Seed(wcsim.Orders, 2)
	s.InjectFault(wcsim.Fault{PathPrefix: ordersPath, Count: 1, Status: 429, RetryAfter: "1"})
	c := simClient(t, s, nil)
	start := time.Now()
	p, err := c.ListPage(context.Background(), "orders", nil, 1, 10)
	elapsed := time.Since(start)
	require.NoError(t, err)
	assert.Len(t, p.Items, 2)
	assert.GreaterOrEqual(t, elapsed, time.Second)
	assertRequests(t, s, "GET", ordersPath, 2)
	log := s.RequestLog()
	require.Len(t, log, 2)
	assert.Equal(t, 429, log[0].Status)
	assert.Equal(t, 200, log[1].Status)
}

func TestSimTransientFaultsRetried(t *testing.T) {
	for _, f := range []wcsim.Fault{
		{Status: 500},
		{Status: 502, Kind: wcsim.FaultHTML},
		{Status: 503},
		{Status: 504, Kind: wcsim.FaultHTML},
		{Kind: wcsim.FaultTruncated},
		{Kind: wcsim.FaultDrop},
	} {
		t.Run(string(f.Kind)+http.StatusText(f.Status), func(t *testing.T) {
			s := startSim(t, true)
			s.Seed(wcsim.Orders, 3)
			f.PathPrefix = ordersPath
			f.Count = 2
			s.InjectFault(f)
			p, err := simClient(t, s, nil).ListPage(context.Background(), "orders", nil, 1, 10)
			require.NoError(t, err)
			assert.Len(t, p.Items, 3)
			assertRequests(t, s, "GET", ordersPath, 3)
		})
	}
}

func TestSimHTMLAnswerIsClearError(t *testing.T) {
	s := startSim(t, false)
	s.InjectFault(wcsim.Fault{PathPrefix: ordersPath, Status: 503, Kind: wcsim.FaultHTML})
	c := simClient(t, s, func(cfg *wcclient.Config) { cfg.MaxRetryElapsed = -1 })
	_, err := c.ListPage(context.Background(), "orders", nil, 1, 10)
	var be *wcclient.BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 503, be.Status)
	assert.Equal(t, "text/html; charset=iso-8859-1", be.ContentType)
	msg := err.Error()
	assert.Contains(t, msg, s.URL()+ordersPath)
	assert.Contains(t, msg, "503")
	assert.Contains(t, msg, "text/html")
	assert.Contains(t, msg, "HTML page")
	noSecrets(t, msg)
	assertRequests(t, s, "GET", ordersPath, 1)
}

func TestSimTruncatedJSONIsClearError(t *testing.T) {
	s := startSim(t, true)
	s.Seed(wcsim.Orders, 5)
	s.InjectFault(wcsim.Fault{PathPrefix: ordersPath, Kind: wcsim.FaultTruncated}) // every request
	c := simClient(t, s, func(cfg *wcclient.Config) { cfg.MaxRetryElapsed = 200 * time.Millisecond })
	_, err := c.ListPage(context.Background(), "orders", nil, 1, 10)
	var be *wcclient.BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, 200, be.Status)
	assert.Contains(t, be.Reason, "truncated")
	assert.Contains(t, err.Error(), s.URL()+ordersPath)
	assert.Contains(t, err.Error(), "application/json")
	var re *wcclient.RetryError
	require.ErrorAs(t, err, &re)
	assertRequests(t, s, "GET", ordersPath, re.Attempts)
	assert.Greater(t, re.Attempts, 1)
}

func TestSimNoRetryOn4xx(t *testing.T) {
	s := startSim(t, true)
	c := simClient(t, s, func(cfg *wcclient.Config) { cfg.ConsumerSecret = "cs_wrong" })
	_, err := c.Do(context.Background(), "GET", "orders", nil, nil, nil)
	assert.Equal(t, 401, wcclient.StatusCode(err))
	assertRequests(t, s, "", ordersPath, 1)

	good := simClient(t, s, nil)
	_, err = good.Do(context.Background(), "GET", "orders/987654", nil, nil, nil)
	assert.True(t, wcclient.IsNotFound(err), "%v", err)
	_, err = good.ListPage(context.Background(), "orders", url.Values{"status": {"bogus"}}, 1, 10)
	assert.Equal(t, 400, wcclient.StatusCode(err))
	var we *wcclient.Error
	require.ErrorAs(t, err, &we)
	assert.Equal(t, "rest_invalid_param", we.Code)
	assertRequests(t, s, "", ordersPath, 3)
}

func TestSimWebhookCRUD(t *testing.T) {
	var pings atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-WC-Webhook-Topic") == "" {
			pings.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(receiver.Close)

	for _, tlsOn := range []bool{false, true} {
		s := startSim(t, tlsOn)
		c := simClient(t, s, nil)
		ctx := context.Background()

		created, err := c.CreateWebhook(ctx, wcclient.WebhookCreate{Name: "wooevents order.updated", Topic: "order.updated",
			DeliveryURL: receiver.URL + "/wc", Secret: "hook-secret-1"})
		require.NoError(t, err)
		assert.NotZero(t, created.ID)
		assert.Equal(t, "order.updated", created.Topic)
		assert.Equal(t, "order", created.Resource)
		assert.Equal(t, "updated", created.Event)
		assert.Equal(t, receiver.URL+"/wc", created.DeliveryURL)
		assert.NotEmpty(t, created.DateCreatedGMT)
		sim, ok := s.Webhook(created.ID)
		require.True(t, ok)
		assert.Equal(t, "hook-secret-1", sim.Secret, "our secret was sent")

		second, err := c.CreateWebhook(ctx, wcclient.WebhookCreate{Topic: "product.created", DeliveryURL: receiver.URL + "/p", Secret: "s2"})
		require.NoError(t, err)

		paused, err := c.UpdateWebhook(ctx, second.ID, wcclient.WebhookUpdate{Status: wcclient.WebhookStatusPaused, Secret: "s2-rotated", DeliveryURL: receiver.URL + "/p2"})
		require.NoError(t, err)
		assert.Equal(t, "paused", paused.Status)
		assert.Equal(t, receiver.URL+"/p2", paused.DeliveryURL)
		sim, _ = s.Webhook(second.ID)
		assert.Equal(t, "s2-rotated", sim.Secret)

		all, err := c.ListWebhooks(ctx, "")
		require.NoError(t, err)
		require.Len(t, all, 2)
		statuses := map[int64]string{}
		for _, w := range all {
			statuses[w.ID] = w.Status
			assert.NotEmpty(t, w.Raw)
		}
		assert.Equal(t, "paused", statuses[second.ID])
		onlyPaused, err := c.ListWebhooks(ctx, wcclient.WebhookStatusPaused)
		require.NoError(t, err)
		require.Len(t, onlyPaused, 1)
		assert.Equal(t, second.ID, onlyPaused[0].ID)

		deleted, err := c.DeleteWebhook(ctx, created.ID)
		require.NoError(t, err)
		assert.Equal(t, created.ID, deleted.ID)
		_, err = c.GetWebhook(ctx, created.ID)
		assert.True(t, wcclient.IsNotFound(err), "%v", err)
		_, ok = s.Webhook(created.ID)
		assert.False(t, ok)
		got, err := c.GetWebhook(ctx, second.ID)
		require.NoError(t, err)
		assert.Equal(t, "paused", got.Status)
	}
	assert.GreaterOrEqual(t, pings.Load(), int32(2), "the store pinged on create")
}

func TestSimContextCancelStopsWalk(t *testing.T) {
	s := startSim(t, false)
	s.Seed(wcsim.Orders, 30)
	c := simClient(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	err := c.Walk(ctx, "orders", nil, 10, func(p *wcclient.Page) error {
		cancel()
		return nil
	})
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
	assertRequests(t, s, "GET", ordersPath, 1)
	assert.False(t, strings.Contains(err.Error(), wcsim.DefaultConsumerSecret))
}
