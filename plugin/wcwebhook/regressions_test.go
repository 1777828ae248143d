package wcwebhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/plugin/wcclient"
)

// Bug 1 (issue 11): the wait between failed registration checks doubled
// without a cap and overflowed after ~31 failures in a row (negative wait),
// then stayed 0: a hot loop of ListWebhooks calls. Revoked credentials are
// enough, since a 401 is never retried. The waits must stay within
// [5s, check_interval], never shrink, and every failure costs one request.
func TestRegistrationRetryWaitStaysBounded(t *testing.T) {
	var lists atomic.Int64
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lists.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"code":"woocommerce_rest_authentication_error","message":"Invalid signature - provided signature does not match.","data":{"status":401}}`))
	}))
	t.Cleanup(store.Close)
	client, err := wcclient.New(wcclient.Config{StoreURL: store.URL, ConsumerKey: "ck_revoked", ConsumerSecret: "cs_revoked"})
	require.NoError(t, err)
	const checkInterval = 5 * time.Minute
	r := newRegistrar(client, registerConfig{deliveryURL: "https://events.example/hook", topics: []string{"order.created"},
		checkInterval: checkInterval}, testSecret, "", service.MockResources().Logger(), newMetrics(service.MockResources().Metrics()))

	const failures = 100 // well past the 31 that overflowed and the 55 that reached 0
	var waits []time.Duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if len(waits) == failures {
			cancel()
		}
		return ctx.Err()
	}
	r.run(ctx, make(chan struct{}))

	require.Len(t, waits, failures)
	assert.Equal(t, 5*time.Second, waits[0])
	for i, w := range waits {
		require.GreaterOrEqual(t, w, 5*time.Second, "wait after failure %d", i+1)
		require.LessOrEqual(t, w, checkInterval, "wait after failure %d", i+1)
		if i > 0 {
			require.GreaterOrEqual(t, w, waits[i-1], "wait after failure %d shrank", i+1)
		}
	}
	assert.Equal(t, checkInterval, waits[failures-1])
	assert.Equal(t, int64(failures), lists.Load(), "one ListWebhooks call per failed check")
}

// deadStoreURL is an http URL on which nothing listens: every request is
// refused (which the REST client retries for GETs).
func deadStoreURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	return u
}

// Bug 2 (issue 11): with ack: spooled the delete check ran on the feed with
// the client's whole retry budget (max_retry_elapsed, 2 minutes), so while
// the store was down every delete held the feed for minutes. The check now
// has a budget of its own; on timeout the delete is emitted as received,
// marked unconfirmed in metadata, and the deliveries behind it follow.
func TestSpooledDeleteCheckHasItsOwnBudget(t *testing.T) {
	store := deadStoreURL(t)
	run := startStream(t, fmt.Sprintf(`  secret: %s
  store_url: %s
  ack: spooled
  spool_dir: %s
  register:
    store_url: %s
    consumer_key: ck_test
    consumer_secret: cs_test
    max_retry_elapsed: 2m
`, testSecret, store, t.TempDir(), store), nil, "")

	start := time.Now()
	status, _, _ := post(t, signedRequest(t, run.URL, testSecret, "order.deleted", store, []byte(`{"id":41}`)))
	require.Equal(t, http.StatusOK, status)
	status, _, _ = post(t, signedRequest(t, run.URL, testSecret, "order.updated", store,
		[]byte(`{"id":42,"status":"processing","date_modified_gmt":"2026-11-27T23:48:19"}`)))
	require.Equal(t, http.StatusOK, status)

	del := run.next(t)
	upd := run.next(t)
	elapsed := time.Since(start)
	assert.Equal(t, "41", metaOf(del, "woocommerce_object_id"))
	assert.Equal(t, "deleted", metaOf(del, "woocommerce_action"))
	assert.Equal(t, "false", metaOf(del, MetaDeleteConfirmed), "emitted as received, unconfirmed")
	assert.Contains(t, []string{DeleteTimeout, DeleteError}, metaOf(del, MetaDeleteCheck))
	assert.Equal(t, "42", metaOf(upd, "woocommerce_object_id"))
	_, has := upd.MetaGet(MetaDeleteConfirmed)
	assert.False(t, has, "only deletes carry the check result")
	assert.Less(t, elapsed, 15*time.Second, "the feed was held by the delete check")
}

func metaOf(m *service.Message, key string) string {
	v, _ := m.MetaGet(key)
	return v
}

// slowCreateStore is a WooCommerce webhook API whose webhook creation is
// slow, like a real store's (WooCommerce pings the delivery URL while
// handling the POST), and completes even when the client hung up, as PHP
// does.
type slowCreateStore struct {
	srv *httptest.Server

	mu     sync.Mutex
	hooks  map[int64]wcclient.Webhook
	nextID int64

	createStarted chan struct{} // closed when the first create arrives
	release       chan struct{} // closed by the test to let a create finish
	createDone    chan struct{} // closed when the first create is committed
	startOnce     sync.Once
	doneOnce      sync.Once
}

func newSlowCreateStore(t *testing.T) *slowCreateStore {
	s := &slowCreateStore{hooks: map[int64]wcclient.Webhook{}, nextID: 1,
		createStarted: make(chan struct{}), release: make(chan struct{}), createDone: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *slowCreateStore) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	const base = "/wp-json/wc/v3/webhooks"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == base:
		s.mu.Lock()
		list := make([]wcclient.Webhook, 0, len(s.hooks))
		for id := int64(1); id < s.nextID; id++ {
			if h, ok := s.hooks[id]; ok {
				list = append(list, h)
			}
		}
		s.mu.Unlock()
		w.Header().Set("X-WP-Total", strconv.Itoa(len(list)))
		w.Header().Set("X-WP-TotalPages", "1")
		_ = json.NewEncoder(w).Encode(list)
	case r.Method == http.MethodPost && r.URL.Path == base:
		var c wcclient.WebhookCreate
		_ = json.NewDecoder(r.Body).Decode(&c)
		s.startOnce.Do(func() { close(s.createStarted) })
		select {
		case <-s.release:
		case <-time.After(time.Second): // the store's own pace
		}
		s.mu.Lock()
		h := wcclient.Webhook{ID: s.nextID, Name: c.Name, Status: c.Status, Topic: c.Topic, DeliveryURL: c.DeliveryURL}
		s.hooks[h.ID] = h
		s.nextID++
		s.mu.Unlock()
		s.doneOnce.Do(func() { close(s.createDone) })
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(h)
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, base+"/"):
		id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, base+"/"), 10, 64)
		s.mu.Lock()
		h, ok := s.hooks[id]
		delete(s.hooks, id)
		s.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":"woocommerce_rest_shop_webhook_invalid_id","message":"Invalid ID.","data":{"status":404}}`))
			return
		}
		_ = json.NewEncoder(w).Encode(h)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"code":"rest_no_route","message":"No route was found matching the URL and request method.","data":{"status":404}}`))
	}
}

func (s *slowCreateStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hooks)
}

// Bug 6 (issue 11): delete_on_close deleted the managed webhooks while a
// registration check was still in flight, and that check then created a
// webhook again: after shutdown the store kept delivering to an endpoint
// that no longer runs. Close now lets the check in flight finish before
// deleting, so nothing is left behind.
func TestDeleteOnCloseWaitsForRegistration(t *testing.T) {
	store := newSlowCreateStore(t)
	run := startStream(t, fmt.Sprintf(`  secret: %s
  register:
    store_url: %s
    consumer_key: ck_test
    consumer_secret: cs_test
    delivery_url: "{{BASE}}%s"
    topics: [ order.created, order.updated ]
    delete_on_close: true
`, testSecret, store.srv.URL, DefaultPath), nil, "")

	select {
	case <-store.createStarted:
	case <-time.After(10 * time.Second):
		t.Fatal("the input never tried to create a webhook")
	}
	run.Stop(t) // Close while the creation is in flight
	close(store.release)
	select {
	case <-store.createDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the store never finished the creation")
	}
	assert.Zero(t, store.count(), "a webhook created by the check in flight outlived delete_on_close")
}
