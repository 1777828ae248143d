package wcsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type received struct {
	path   string
	header http.Header
	body   string
}

// receiver is a real HTTP server recording deliveries; status(path) picks
// the answer.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status func(path string, body string) int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{status: func(string, string) int { return 200 }}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		if r.Close {
			h.Set("Connection", "close")
		}
		rc.mu.Lock()
		rc.got = append(rc.got, received{path: r.URL.Path, header: h, body: string(b)})
		st := rc.status
		rc.mu.Unlock()
		w.WriteHeader(st(r.URL.Path, string(b)))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setStatus(f func(path, body string) int) {
	rc.mu.Lock()
	rc.status = f
	rc.mu.Unlock()
}

func (rc *receiver) take() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	g := rc.got
	rc.got = nil
	return g
}

func topicsOf(ds []Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Topic+":"+strconv.FormatInt(d.ObjectID, 10))
	}
	return out
}

func hookAll(t *testing.T, s *Store, rc *receiver, topics ...string) map[string]int64 {
	ids := map[string]int64{}
	for _, tp := range topics {
		id, err := s.AddWebhook(tp, rc.URL+"/wc/"+tp, "wcreal-webhook-secret")
		require.NoError(t, err)
		ids[tp] = id
	}
	return ids
}

func TestDeliveryHeadersMatchCapture(t *testing.T) {
	rc := newReceiver(t)
	s := startStore(t, Options{UTCOffset: 2 * time.Hour})
	s.SetNow(t0)
	hooks := hookAll(t, s, rc, "order.updated")
	ping := rc.take()
	require.Len(t, ping, 1)
	wantPing := loadCapture(t, "webhooks/0001-ping.http")
	assert.Equal(t, headerNames(wantPing.header, "Host", "Content-Length"), headerNames(ping[0].header, "Content-Length"))
	assert.Equal(t, "webhook_id="+itoa(hooks["order.updated"]), ping[0].body)
	assert.Equal(t, "application/x-www-form-urlencoded", ping[0].header.Get("Content-Type"))
	assert.Equal(t, UserAgent, ping[0].header.Get("User-Agent"))
	s.Flush()

	id, _ := s.Seed(Orders, 1)
	require.NoError(t, s.Update(Orders, id, map[string]any{"status": "completed"}))
	got := rc.take()
	require.Len(t, got, 1)
	want := loadCapture(t, "webhooks/0016-order.updated-order-updated.http")
	assert.Equal(t, headerNames(want.header, "Host", "Content-Length"), headerNames(got[0].header, "Content-Length"))
	for _, h := range []string{"User-Agent", "Accept", "Accept-Encoding", "Content-Type", "X-WC-Webhook-Topic", "X-WC-Webhook-Resource", "X-WC-Webhook-Event", "Connection"} {
		assert.Equal(t, want.header.Get(h), got[0].header.Get(h), h)
	}
	assert.Equal(t, s.URL()+"/", got[0].header.Get("X-WC-Webhook-Source"))
	assert.Equal(t, itoa(hooks["order.updated"]), got[0].header.Get("X-WC-Webhook-ID"))
	assert.Equal(t, Signature("wcreal-webhook-secret", []byte(got[0].body)), got[0].header.Get("X-WC-Webhook-Signature"))
	assert.Regexp(t, `^[0-9a-f]{32}$`, got[0].header.Get("X-WC-Webhook-Delivery-ID"))
	assert.Equal(t, "/wc/order.updated", got[0].path)
	// body = the wc/v3 JSON at delivery time, same field order as captured
	cur, ok := s.Get(Orders, id)
	require.True(t, ok)
	assert.Equal(t, string(cur), got[0].body)
	assert.Equal(t, topKeys(t, want.body), topKeys(t, []byte(got[0].body)))
	assert.Contains(t, got[0].body, `"status":"completed"`)
	assert.Contains(t, got[0].body, `"date_modified":"2026-11-28T01:48:00"`)

	// Delivery IDs: shared within one second, different in the next
	ds := s.Flush()
	require.Len(t, ds, 1)
	require.NoError(t, s.Update(Orders, id, map[string]any{"customer_note": "a"}))
	s.Advance(time.Second)
	require.NoError(t, s.Update(Orders, id, map[string]any{"customer_note": "b"}))
	ds2 := s.Flush()
	require.Len(t, ds2, 2)
	assert.Equal(t, ds[0].DeliveryID, ds2[0].DeliveryID)
	assert.NotEqual(t, ds2[0].DeliveryID, ds2[1].DeliveryID)
}

func TestPingPendingDelivery(t *testing.T) {
	rc := newReceiver(t)
	rc.setStatus(func(_, body string) int {
		if strings.HasPrefix(body, "webhook_id=") {
			return 204 // not exactly 200
		}
		return 200
	})
	s := startStore(t, Options{TLS: true})
	hooks := hookAll(t, s, rc, "product.created")
	w, ok := s.Webhook(hooks["product.created"])
	require.True(t, ok)
	assert.True(t, w.PendingDelivery)
	ds := s.Flush()
	require.Len(t, ds, 1)
	assert.True(t, ds[0].Ping)
	assert.False(t, ds[0].Success)
	assert.Equal(t, "Error: Delivery URL returned response code: 204", ds[0].Error)
	// deliveries still flow while pending
	_, err := s.Create(Products, map[string]any{"name": "P"})
	require.NoError(t, err)
	assert.Len(t, s.Flush(), 1)
	// a REST update re-pings while pending; 200 clears it
	rc.setStatus(func(string, string) int { return 200 })
	r := basicDo(t, s, "PUT", "/wp-json/wc/v3/webhooks/"+itoa(hooks["product.created"]), []byte(`{"status":"active"}`))
	require.Equal(t, 200, r.code, string(r.body))
	w, _ = s.Webhook(hooks["product.created"])
	assert.False(t, w.PendingDelivery)
}

func TestWebhookAutoDisableOnSeventhFailure(t *testing.T) {
	rc := newReceiver(t)
	s := startStore(t, Options{})
	hooks := hookAll(t, s, rc, "order.updated")
	hid := hooks["order.updated"]
	id, _ := s.Seed(Orders, 1)
	rc.setStatus(func(string, string) int { return 500 })
	for i := 1; i <= 6; i++ {
		require.NoError(t, s.Update(Orders, id, map[string]any{"customer_note": strconv.Itoa(i)}))
		w, _ := s.Webhook(hid)
		require.Equal(t, WebhookActive, w.Status, "after failure %d", i)
		require.Equal(t, i, w.FailureCount)
	}
	// a success resets the count
	rc.setStatus(func(string, string) int { return 302 })
	require.NoError(t, s.Update(Orders, id, map[string]any{"customer_note": "ok"}))
	w, _ := s.Webhook(hid)
	assert.Equal(t, 0, w.FailureCount)
	rc.setStatus(func(string, string) int { return 404 })
	for i := 1; i <= 7; i++ {
		require.NoError(t, s.Update(Orders, id, map[string]any{"customer_note": "f" + strconv.Itoa(i)}))
	}
	w, _ = s.Webhook(hid)
	assert.Equal(t, WebhookDisabled, w.Status)
	rc.take()
	require.NoError(t, s.Update(Orders, id, map[string]any{"customer_note": "after"}))
	assert.Empty(t, rc.take(), "disabled webhooks get nothing")
	r := basicDo(t, s, "GET", "/wp-json/wc/v3/webhooks/"+itoa(hid), nil) // shown over TLS? plain store: use oauth
	assert.Equal(t, 401, r.code)
	r = oauthDo(t, s, "GET", "/wp-json/wc/v3/webhooks/"+itoa(hid), nil, oauthOpt{}, nil)
	assert.Equal(t, "disabled", decodeObj(t, r.body)["status"])
}

func TestTrashRestoreForceFlowsAndQuirks(t *testing.T) {
	rc := newReceiver(t)
	s := startStore(t, Options{TLS: true})
	s.SetNow(t0)
	hookAll(t, s, rc, "order.created", "order.updated", "order.deleted", "order.restored",
		"product.deleted", "coupon.deleted", "product.restored", "coupon.restored", "customer.deleted", "customer.created")
	s.Flush()

	// REST order create fires created and updated
	r := basicDo(t, s, "POST", "/wp-json/wc/v3/orders", []byte(`{"status":"processing"}`))
	require.Equal(t, 201, r.code, string(r.body))
	oid := int64(decodeObj(t, r.body)["id"].(float64))
	assert.Equal(t, []string{"order.created:" + itoa(oid), "order.updated:" + itoa(oid)}, topicsOf(s.Flush()))

	// trash: answer is the object before trashing; trashing bumps date_modified
	s.Advance(10 * time.Second)
	r = basicDo(t, s, "DELETE", "/wp-json/wc/v3/orders/"+itoa(oid), nil)
	require.Equal(t, 200, r.code)
	before := decodeObj(t, r.body)
	assert.Equal(t, "processing", before["status"])
	assert.Equal(t, t0.Format(wooLayout), before["date_modified_gmt"])
	ds := s.Flush()
	assert.Equal(t, []string{"order.deleted:" + itoa(oid)}, topicsOf(ds))
	assert.Equal(t, `{"id":`+itoa(oid)+`}`, ds[0].Body)
	cur := decodeObj(t, basicDo(t, s, "GET", "/wp-json/wc/v3/orders/"+itoa(oid), nil).body)
	assert.Equal(t, "trash", cur["status"])
	assert.Equal(t, t0.Add(10*time.Second).Format(wooLayout), cur["date_modified_gmt"])
	assert.Contains(t, cur["meta_data"], map[string]any{"id": cur["meta_data"].([]any)[0].(map[string]any)["id"], "key": "_wp_trash_meta_status", "value": "wc-processing"})
	// trashing again: 410
	r = basicDo(t, s, "DELETE", "/wp-json/wc/v3/orders/"+itoa(oid), nil)
	assert.Equal(t, 410, r.code)
	assert.Equal(t, `{"code":"woocommerce_rest_already_trashed","message":"The shop_order has already been deleted.","data":{"status":410}}`, string(r.body))
	// restore by status update: no order.restored, trash meta stays
	s.Advance(time.Second)
	r = basicDo(t, s, "PUT", "/wp-json/wc/v3/orders/"+itoa(oid), []byte(`{"status":"on-hold"}`))
	require.Equal(t, 200, r.code)
	assert.Equal(t, "on-hold", decodeObj(t, r.body)["status"])
	assert.Contains(t, string(r.body), `"key":"_wp_trash_meta_status"`)
	assert.Equal(t, []string{"order.updated:" + itoa(oid)}, topicsOf(s.Flush()))
	// explicit untrash fires order.restored
	require.NoError(t, s.Trash(Orders, oid))
	require.NoError(t, s.Restore(Orders, oid))
	assert.Equal(t, []string{"order.deleted:" + itoa(oid), "order.restored:" + itoa(oid)}, topicsOf(s.Flush()))
	got, _ := s.Get(Orders, oid)
	assert.Contains(t, string(got), `"status":"on-hold"`)
	assert.NotContains(t, string(got), "_wp_trash_meta")
	// force delete: pre-delete object, nothing fired, then 404
	r = basicDo(t, s, "DELETE", "/wp-json/wc/v3/orders/"+itoa(oid)+"?force=true", nil)
	require.Equal(t, 200, r.code)
	assert.Equal(t, float64(oid), decodeObj(t, r.body)["id"])
	assert.Empty(t, s.Flush())
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders/"+itoa(oid), nil)
	assert.Equal(t, string(loadCapture(t, "rest/errors/order-not-found.https-basic.http").body), string(r.body))

	// trashing a product fires product.deleted AND coupon.deleted (and a
	// coupon the same), with identical {"id":N} bodies and signatures
	pid, _ := s.Create(Products, map[string]any{"name": "Temp Product", "regular_price": "1.00"})
	cid, _ := s.Create(Coupons, map[string]any{"code": "temp20", "amount": "25"})
	s.Flush()
	rc.take()
	r = basicDo(t, s, "DELETE", "/wp-json/wc/v3/products/"+itoa(pid), nil)
	require.Equal(t, 200, r.code)
	require.NoError(t, s.Trash(Coupons, cid))
	ds = s.Flush()
	assert.Equal(t, []string{"product.deleted:" + itoa(pid), "coupon.deleted:" + itoa(pid), "product.deleted:" + itoa(cid), "coupon.deleted:" + itoa(cid)}, topicsOf(ds))
	recv := rc.take()
	require.Len(t, recv, 4)
	assert.Equal(t, recv[0].header.Get("X-WC-Webhook-Signature"), recv[1].header.Get("X-WC-Webhook-Signature"))
	assert.Equal(t, "coupon", recv[1].header.Get("X-WC-Webhook-Resource"))
	p, _ := s.Get(Products, pid)
	assert.Contains(t, string(p), `"slug":"temp-product__trashed"`)
	assert.Contains(t, string(p), `"permalink":"`+s.escHome()+`\/?post_type=product&p=`+itoa(pid)+`"`)
	// restore twin: product.restored + coupon.restored; the twin's payload is
	// built from the other resource's endpoint, so it is a 404 body
	require.NoError(t, s.Restore(Products, pid))
	ds = s.Flush()
	require.Equal(t, []string{"product.restored:" + itoa(pid), "coupon.restored:" + itoa(pid)}, topicsOf(ds))
	assert.Contains(t, ds[0].Body, `"slug":"temp-product"`)
	assert.Equal(t, `{"code":"woocommerce_rest_shop_coupon_invalid_id","message":"Invalid ID.","data":{"status":404}}`, ds[1].Body)

	// customers: no trash (501), force delete fires customer.deleted
	cust, _ := s.Create(Customers, map[string]any{"email": "gone@example.test"})
	s.Flush()
	r = basicDo(t, s, "DELETE", "/wp-json/wc/v3/customers/"+itoa(cust), nil)
	assert.Equal(t, 501, r.code)
	assert.Equal(t, `{"code":"woocommerce_rest_trash_not_supported","message":"Customers do not support trashing.","data":{"status":501}}`, string(r.body))
	r = basicDo(t, s, "DELETE", "/wp-json/wc/v3/customers/"+itoa(cust)+"?force=true", nil)
	require.Equal(t, 200, r.code)
	ds = s.Flush()
	require.Equal(t, []string{"customer.deleted:" + itoa(cust)}, topicsOf(ds))
	assert.Equal(t, `{"id":`+itoa(cust)+`}`, ds[0].Body)

	// webhooks: DELETE needs force
	wid := s.Webhooks()[0].ID
	r = basicDo(t, s, "DELETE", "/wp-json/wc/v3/webhooks/"+itoa(wid), nil)
	assert.Equal(t, `{"code":"woocommerce_rest_trash_not_supported","message":"Webhooks do not support trashing.","data":{"status":501}}`, string(r.body))
	r = basicDo(t, s, "DELETE", "/wp-json/wc/v3/webhooks/"+itoa(wid)+"?force=true", nil)
	assert.Equal(t, 200, r.code)
	_, ok := s.Webhook(wid)
	assert.False(t, ok)
}

// With coalescing, the payload is built at flush time and a pending
// (webhook, object) pair is not queued twice — as the captures show.
func TestCoalescedDeliveriesBuiltAtFlushTime(t *testing.T) {
	rc := newReceiver(t)
	s := startStore(t, Options{CoalesceWebhooks: true})
	s.SetNow(t0)
	hookAll(t, s, rc, "product.created", "product.updated", "customer.created")
	s.Flush()
	rc.take() // pings
	pid, err := s.Create(Products, map[string]any{"name": "Temp Product", "sku": "TEMP-1", "regular_price": "1.00"})
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		require.NoError(t, s.Update(Products, pid, map[string]any{"regular_price": strconv.Itoa(2 + i)}))
	}
	require.NoError(t, s.Trash(Products, pid))
	assert.Equal(t, 2, s.Pending())
	assert.Empty(t, rc.take())
	ds := s.Flush()
	require.Equal(t, []string{"product.created:" + itoa(pid), "product.updated:" + itoa(pid)}, topicsOf(ds))
	for _, d := range ds {
		assert.Contains(t, d.Body, `"status":"trash"`) // like capture 0024
		assert.Contains(t, d.Body, `"regular_price":"4"`)
		assert.True(t, d.Success)
	}
	// a customer created then deleted before the flush: the captured error body
	cust, err := s.Create(Customers, map[string]any{"email": "temp@example.test"})
	require.NoError(t, err)
	require.NoError(t, s.ForceDelete(Customers, cust))
	ds = s.Flush()
	require.Len(t, ds, 1)
	want := loadCapture(t, filepath.Join("webhooks", "0027-customer.created-customer-created.http"))
	assert.Equal(t, string(want.body), ds[0].Body)
	assert.Equal(t, want.header.Get("X-WC-Webhook-Signature"), ds[0].Headers["X-WC-Webhook-Signature"])
}

func TestWebhooksREST(t *testing.T) {
	rc := newReceiver(t)
	s := startStore(t, Options{TLS: true, UTCOffset: time.Hour})
	s.SetNow(t0)
	r := basicDo(t, s, "POST", "/wp-json/wc/v3/webhooks", []byte(`{"name":"wcreal customer.created","topic":"customer.created","delivery_url":"`+rc.URL+`/wc/customer.created","secret":"wcreal-webhook-secret"}`))
	require.Equal(t, 201, r.code, string(r.body))
	o := decodeObj(t, r.body)
	assert.Equal(t, []any{"user_register", "woocommerce_created_customer", "woocommerce_new_customer"}, o["hooks"])
	assert.Equal(t, "active", o["status"])
	assert.Equal(t, "customer", o["resource"])
	assert.NotContains(t, string(r.body), "secret")
	want := loadCapture(t, "rest/webhooks.list.https-basic.http")
	assert.Equal(t, topKeys(t, firstElem(t, want.body)), topKeys(t, r.body))
	assert.Len(t, rc.take(), 1) // ping
	r = basicDo(t, s, "POST", "/wp-json/wc/v3/webhooks", []byte(`{"topic":"order.bogus","delivery_url":"http://x"}`))
	assert.Equal(t, `{"code":"woocommerce_rest_shop_webhook_invalid_topic","message":"Webhook topic is required and must be valid.","data":{"status":400}}`, string(r.body))
	r = basicDo(t, s, "POST", "/wp-json/wc/v3/webhooks", []byte(`{"topic":"action.woocommerce_thing","delivery_url":"ftp://x"}`))
	assert.Equal(t, 400, r.code)
	r = basicDo(t, s, "PUT", "/wp-json/wc/v3/webhooks/"+itoa(int64(o["id"].(float64))), []byte(`{"status":"paused"}`))
	assert.Equal(t, "paused", decodeObj(t, r.body)["status"])
	_, err := s.Create(Customers, map[string]any{"email": "p@example.test"})
	require.NoError(t, err)
	assert.Empty(t, rc.take(), "paused webhooks get nothing")
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/webhooks?status=paused", nil)
	assert.Equal(t, "1", r.header.Get("X-WP-Total"))
}
