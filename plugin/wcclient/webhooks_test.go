package wcclient

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// webhookRoutes is an in-memory /wc/v3/webhooks following WooCommerce's
// rules: status filter all|active|paused|disabled (default all), paging,
// create needs topic and delivery_url, DELETE needs force=true (501
// otherwise).
type webhookRoutes struct {
	mu      sync.Mutex
	next    int64
	hooks   map[int64]map[string]any
	secrets map[int64]string
}

func newWebhookRoutes(t *testing.T) *webhookRoutes {
	wr := &webhookRoutes{next: 100, hooks: map[int64]map[string]any{}, secrets: map[int64]string{}}
	// Seed with the captured objects.
	f := loadFixture(t, "webhooks.list.https-basic.http")
	var seed []map[string]any
	require.NoError(t, json.Unmarshal(f.Body, &seed))
	for _, h := range seed {
		wr.hooks[int64(h["id"].(float64))] = h
	}
	return wr
}

func (wr *webhookRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	rest := strings.TrimPrefix(r.URL.Path, "/wp-json/wc/v3/webhooks")
	q := r.URL.Query()
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if rest == "" {
		switch r.Method {
		case http.MethodGet:
			status := q.Get("status")
			if status == "" {
				status = "all"
			}
			switch status {
			case "all", "active", "paused", "disabled":
			default:
				writeWPError(w, 400, "rest_invalid_param", "Invalid parameter(s): status")
				return
			}
			var ids []int64
			for id, h := range wr.hooks {
				if status == "all" || h["status"] == status {
					ids = append(ids, id)
				}
			}
			sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
			perPage, _ := strconv.Atoi(q.Get("per_page"))
			page, _ := strconv.Atoi(q.Get("page"))
			out := []map[string]any{}
			for i := (page - 1) * perPage; i < len(ids) && i < page*perPage; i++ {
				out = append(out, wr.hooks[ids[i]])
			}
			w.Header().Set("X-WP-Total", strconv.Itoa(len(ids)))
			w.Header().Set("X-WP-TotalPages", strconv.Itoa((len(ids)+perPage-1)/perPage))
			writeJSON(200, out)
		case http.MethodPost:
			var in map[string]any
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in["topic"] == nil || in["delivery_url"] == nil {
				writeWPError(w, 400, "rest_missing_callback_param", "Missing parameter(s): topic, delivery_url")
				return
			}
			wr.next++
			topic := in["topic"].(string)
			res, ev, _ := strings.Cut(topic, ".")
			h := map[string]any{"id": wr.next, "name": in["name"], "status": "active", "topic": topic,
				"resource": res, "event": ev, "delivery_url": in["delivery_url"],
				"date_created_gmt": "2026-11-28T00:00:00", "date_modified_gmt": "2026-11-28T00:00:00"}
			if s, ok := in["status"].(string); ok {
				h["status"] = s
			}
			wr.hooks[wr.next] = h
			wr.secrets[wr.next], _ = in["secret"].(string)
			writeJSON(201, h)
		default:
			w.WriteHeader(405)
		}
		return
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(rest, "/"), 10, 64)
	h := wr.hooks[id]
	if err != nil || h == nil {
		writeWPError(w, 404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(200, h)
	case http.MethodPut:
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		for _, k := range []string{"status", "delivery_url", "name", "topic"} {
			if v, ok := in[k]; ok {
				h[k] = v
			}
		}
		if s, ok := in["secret"].(string); ok {
			wr.secrets[id] = s
		}
		h["date_modified_gmt"] = "2026-11-28T00:00:01"
		writeJSON(200, h)
	case http.MethodDelete:
		if q.Get("force") != "true" {
			writeWPError(w, 501, "woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.")
			return
		}
		delete(wr.hooks, id)
		writeJSON(200, h)
	}
}

func TestWebhookCRUD(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		name := "http-oauth1"
		if tlsOn {
			name = "https-basic"
		}
		t.Run(name, func(t *testing.T) {
			wr := newWebhookRoutes(t)
			// One paused and one disabled among the captured ones, and enough
			// hooks for a second page of 100.
			wr.hooks[8]["status"] = "paused"
			wr.hooks[9]["status"] = "disabled"
			for i := int64(1000); i < 1110; i++ {
				wr.hooks[i] = map[string]any{"id": i, "name": "bulk", "status": "active", "topic": "order.updated"}
			}
			fs := newFakeStore(t, tlsOn, wr.ServeHTTP)
			c := fs.client(t, nil)
			ctx := context.Background()

			all, err := c.ListWebhooks(ctx, "")
			require.NoError(t, err)
			assert.Len(t, all, 112)
			assert.Equal(t, 2, fs.Count(), "two pages of 100")
			for _, r := range fs.Requests() {
				assert.Equal(t, "all", r.Query.Get("status"))
				assert.Equal(t, "100", r.Query.Get("per_page"))
			}
			byID := map[int64]Webhook{}
			for _, h := range all {
				byID[h.ID] = h
			}
			w8 := byID[8]
			assert.Equal(t, "wcreal product.restored", w8.Name)
			assert.Equal(t, "paused", w8.Status)
			assert.Equal(t, "product.restored", w8.Topic)
			assert.Equal(t, "product", w8.Resource)
			assert.Equal(t, "restored", w8.Event)
			assert.Equal(t, "http://127.0.0.1:8490/wc/product.restored", w8.DeliveryURL)
			assert.Equal(t, "2026-11-27T23:48:17", w8.DateCreatedGMT)
			assert.Contains(t, string(w8.Raw), `"hooks":["untrashed_post"]`)
			assert.Equal(t, "2026-11-27T23:50:16", byID[9].DateModifiedGMT)

			paused, err := c.ListWebhooks(ctx, WebhookStatusPaused)
			require.NoError(t, err)
			require.Len(t, paused, 1)
			assert.EqualValues(t, 8, paused[0].ID)

			created, err := c.CreateWebhook(ctx, WebhookCreate{Name: "wooevents order.updated", Topic: "order.updated",
				DeliveryURL: "https://hooks.example.com/wc", Secret: "s3cret-hook"})
			require.NoError(t, err)
			assert.EqualValues(t, 101, created.ID)
			assert.Equal(t, "active", created.Status)
			assert.Equal(t, "order", created.Resource)
			assert.Equal(t, "s3cret-hook", wr.secrets[101], "secret is sent")

			_, err = c.CreateWebhook(ctx, WebhookCreate{Topic: "order.updated", DeliveryURL: "https://x"})
			require.Error(t, err, "secret is mandatory")

			upd, err := c.UpdateWebhook(ctx, created.ID, WebhookUpdate{Status: WebhookStatusPaused, DeliveryURL: "https://hooks.example.com/v2", Secret: "rotated"})
			require.NoError(t, err)
			assert.Equal(t, "paused", upd.Status)
			assert.Equal(t, "https://hooks.example.com/v2", upd.DeliveryURL)
			assert.Equal(t, "rotated", wr.secrets[101])
			assert.Equal(t, "wooevents order.updated", upd.Name, "unset fields are not sent")
			_, err = c.UpdateWebhook(ctx, created.ID, WebhookUpdate{})
			require.Error(t, err)

			got, err := c.GetWebhook(ctx, created.ID)
			require.NoError(t, err)
			assert.Equal(t, "paused", got.Status)

			del, err := c.DeleteWebhook(ctx, created.ID)
			require.NoError(t, err)
			assert.EqualValues(t, 101, del.ID)
			_, err = c.GetWebhook(ctx, created.ID)
			assert.True(t, IsNotFound(err))

			reqs := fs.Requests()
			last := reqs[len(reqs)-2]
			assert.Equal(t, "DELETE", last.Method)
			assert.Equal(t, "true", last.Query.Get("force"))
			assert.Equal(t, "/wp-json/wc/v3/webhooks/101", last.Path)
		})
	}
}
