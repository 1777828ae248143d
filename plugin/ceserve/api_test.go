package ceserve

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

// nothingCreated requires an empty instance list, an empty registry and no
// instance directory.
func (ts *testServer) nothingCreated(t *testing.T) {
	t.Helper()
	code, b := ts.call(t, http.MethodGet, InstancesPath, accountKey, nil)
	require.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `[]`, string(b))
	recs, err := ts.reg.load()
	require.NoError(t, err)
	assert.Empty(t, recs)
	entries, _ := os.ReadDir(filepath.Join(ts.opts.DataDir, instancesDir))
	assert.Empty(t, entries)
}

type errorAnswer struct {
	Message         string `json:"message"`
	RequestID       string `json:"requestId"`
	ProviderCode    string `json:"providerCode"`
	ProviderMessage string `json:"providerMessage"`
}

func decodeError(t *testing.T, b []byte) errorAnswer {
	t.Helper()
	var e errorAnswer
	require.NoError(t, json.Unmarshal(b, &e), "%s", b)
	assert.NotEmpty(t, e.RequestID)
	return e
}

// Bad bodies get 400 naming the key (as import-cloud-elements names it),
// store refusals a 400 with the store's reason, oversized bodies 413; none
// creates anything, and no secret of the body is echoed.
func TestBadRequests(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	ts := newTestServer(t, "", nil)

	// A site without the WooCommerce REST API: WordPress' rest_no_route.
	noWoo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"code":"rest_no_route","message":"No route was found matching the URL and request method.","data":{"status":404}}`))
	}))
	t.Cleanup(noWoo.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	good := pollingBody(t, sim, cb.URL())
	edit := func(conf, top map[string]any) []byte { return editBody(t, good, conf, top) }
	pollerOrders := func(url string) map[string]any {
		return map[string]any{"orders": map[string]any{"url": url}}
	}
	cases := []struct {
		name   string
		body   []byte
		status int
		want   string // in the message
	}{
		{"unknown key", edit(nil, map[string]any{"instanceId": 3}), 400, "instanceId: unknown key"},
		{"unknown configuration key", edit(map[string]any{"event.poller.pageSize": 5}, nil), 400, "configuration.event.poller.pageSize: unknown key"},
		{"wrong type", edit(nil, map[string]any{"name": 5}), 400, "name: must be a string"},
		{"tags not strings", edit(nil, map[string]any{"tags": []any{"a", 1}}), 400, "tags[1]: must be a string"},
		{"missing store URL", edit(map[string]any{"store.url": nil}, nil), 400, "configuration.store.url: required URL"},
		{"refresh interval 0", edit(map[string]any{"event.poller.refresh_interval": 0}, nil), 400, "configuration.event.poller.refresh_interval"},
		{"refresh interval not a number", edit(map[string]any{"event.poller.refresh_interval": "soon"}, nil), 400, "configuration.event.poller.refresh_interval: minutes between polls: must be a number"},
		{"unknown hub URL", edit(map[string]any{"event.poller.configuration": pollerOrders("/hubs/crm/accounts")}, nil), 400, "configuration.event.poller.configuration.orders.url"},
		{"key YAML would misread", edit(map[string]any{"oauth.api.key": "ck_x #comment"}, nil), 400, "configuration.oauth.api.key: must be a WooCommerce REST API key"},
		{"wrong element", edit(nil, map[string]any{"element": map[string]any{"key": "shopify"}}), 400, "element.key"},
		{"not JSON", []byte(`{"element":`), 400, "not a JSON object"},
		{"empty body", nil, 400, "not a JSON object"},
		{"JSON array", []byte(`[1,2]`), 400, "not a JSON object"},
		{"oversized", append(append([]byte(`{"name":"`), bytes.Repeat([]byte("x"), 1<<20)...), []byte(`"}`)...), 413, "larger than"},
		{"wrong store keys", edit(map[string]any{"oauth.api.key": "ck_wrong", "oauth.api.secret": "cs_wrong"}, nil), 400,
			"configuration.oauth.api.key: the store refused the keys: woocommerce: 401"},
		{"store unreachable", edit(map[string]any{"store.url": closedURL}, nil), 400, "configuration.store.url: the store cannot be reached"},
		{"no WooCommerce", edit(map[string]any{"store.url": noWoo.URL}, nil), 400, "configuration.store.url: no WooCommerce REST API at this URL"},
		{"webhook with a read-only key", seedBody(t, "webhook-instance.json", map[string]any{
			"store.url": sim.URL(), "oauth.api.key": wcsim.DefaultReadOnlyConsumerKey, "oauth.api.secret": wcsim.DefaultReadOnlyConsumerSecret,
			"event.notification.callback.url": cb.URL(),
		}, nil), 400, "configuration.oauth.api.key: the store refused to register the webhooks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, b := ts.call(t, http.MethodPost, InstancesPath, accountKey, tc.body)
			require.Equal(t, tc.status, code, "%s", b)
			e := decodeError(t, b)
			assert.Contains(t, e.Message, tc.want)
			for _, secret := range []string{wcsim.DefaultReadOnlyConsumerSecret, wcsim.DefaultConsumerSecret, fixtureSigKey, "cs_wrong"} {
				assert.NotContains(t, string(b), secret)
			}
			ts.nothingCreated(t)
		})
	}
	t.Run("store reason", func(t *testing.T) {
		_, b := ts.call(t, http.MethodPost, InstancesPath, accountKey, edit(map[string]any{"oauth.api.key": "ck_wrong", "oauth.api.secret": "cs_wrong"}, nil))
		e := decodeError(t, b)
		assert.Equal(t, "woocommerce_rest_authentication_error", e.ProviderCode)
		assert.NotEmpty(t, e.ProviderMessage)
	})
	assert.Empty(t, sim.Webhooks(), "the read-only webhook instance left no webhook behind")

	t.Run("webhook instance without public URL", func(t *testing.T) {
		other := newTestServer(t, "", func(o *Options) { o.PublicURL = "" })
		code, b := other.call(t, http.MethodPost, InstancesPath, accountKey, webhookBody(t, sim, cb.URL()))
		require.Equal(t, http.StatusBadRequest, code, "%s", b)
		assert.Contains(t, decodeError(t, b).Message, "configuration.event.vendor.type: webhook instances need a public URL")
		other.nothingCreated(t)
	})

	t.Run("method", func(t *testing.T) {
		code, b := ts.call(t, http.MethodPut, InstancesPath, accountKey, good)
		assert.Equal(t, http.StatusMethodNotAllowed, code, "%s", b)
		ts.nothingCreated(t)
	})
}

// Every call needs the account secrets, or for one instance its Element
// token; a refusal is the same 401 whatever was wrong and whether or not the
// instance exists.
func TestAuthorization(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	ts := newTestServer(t, "", nil)
	a := ts.create(t, pollingBody(t, sim, cb.URL()))
	b := ts.create(t, pollingBody(t, sim, cb.URL()))
	require.NotEqual(t, a.Token, b.Token)

	pathA := InstancesPath + "/" + itoa(a.ID)
	pathB := InstancesPath + "/" + itoa(b.ID)
	refused := []struct {
		name, method, path, auth string
		body                     []byte
	}{
		{"no header", http.MethodGet, InstancesPath, "", nil},
		{"no header create", http.MethodPost, InstancesPath, "", pollingBody(t, sim, cb.URL())},
		{"wrong user", http.MethodGet, InstancesPath, "User nope, Organization " + testOrg, nil},
		{"wrong organization", http.MethodGet, InstancesPath, "User " + testUser + ", Organization nope", nil},
		{"user only", http.MethodGet, InstancesPath, "User " + testUser, nil},
		{"swapped", http.MethodGet, InstancesPath, "User " + testOrg + ", Organization " + testUser, nil},
		{"bearer", http.MethodGet, InstancesPath, "Bearer " + testUser, nil},
		{"repeated part", http.MethodGet, InstancesPath, "User " + testUser + ", User " + testUser + ", Organization " + testOrg, nil},
		{"element token for the list", http.MethodGet, InstancesPath, "Element " + a.Token, nil},
		{"element token to create", http.MethodPost, InstancesPath, "Element " + a.Token, pollingBody(t, sim, cb.URL())},
		{"element token of another instance", http.MethodGet, pathB, "Element " + a.Token, nil},
		{"element token of another instance, delete", http.MethodDelete, pathB, "Element " + a.Token, nil},
		{"element token, unknown instance", http.MethodGet, InstancesPath + "/999", "Element " + a.Token, nil},
		{"wrong element token", http.MethodGet, pathA, "Element " + strings.ToUpper(a.Token), nil},
		{"wrong account with a valid token's instance", http.MethodGet, InstancesPath + "/999", "User nope, Organization nope", nil},
	}
	var messages []string
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ts.call(t, tc.method, tc.path, tc.auth, tc.body)
			require.Equal(t, http.StatusUnauthorized, code, "%s", body)
			e := decodeError(t, body)
			messages = append(messages, e.Message)
			assert.NotContains(t, string(body), a.Token)
			assert.NotContains(t, string(body), "my-woocommerce-instance")
		})
	}
	for _, m := range messages {
		assert.Equal(t, messages[0], m, "every refusal says the same")
	}

	// The Element token opens its own instance, and only that one.
	code, body := ts.call(t, http.MethodGet, pathA, "Element "+a.Token, nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = ts.call(t, http.MethodGet, pathA, "User "+testUser+", Organization "+testOrg+", Element "+a.Token, nil)
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = ts.call(t, http.MethodPatch, pathA, "Element "+a.Token, []byte(`{"name":"renamed"}`))
	require.Equal(t, http.StatusOK, code, "%s", body)
	assert.Equal(t, "renamed", ts.instance(t, a.ID).Name)
	code, _ = ts.call(t, http.MethodGet, InstancesPath+"/999", accountKey, nil)
	assert.Equal(t, http.StatusNotFound, code, "the account sees that 999 does not exist")
	assert.Len(t, ts.list(), 2, "nothing created by the refused creates")
}
