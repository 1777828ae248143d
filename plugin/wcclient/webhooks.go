package wcclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// WebhooksRoute is the webhook management route.
const WebhooksRoute = "/wc/v3/webhooks"

// Webhook statuses. WooCommerce lists them with status=all (its default);
// "pending" webhooks (created but not yet pinged successfully) are only
// reachable that way, the status filter accepts all|active|paused|disabled.
const (
	WebhookStatusAll      = "all"
	WebhookStatusActive   = "active"
	WebhookStatusPaused   = "paused"
	WebhookStatusDisabled = "disabled"
	WebhookStatusPending  = "pending"
)

// Webhook is a WooCommerce webhook as /wc/v3/webhooks returns it.
type Webhook struct {
	ID              int64  `json:"id"`
	Name            string `json:"name"`
	Status          string `json:"status"`
	Topic           string `json:"topic"`
	Resource        string `json:"resource"`
	Event           string `json:"event"`
	DeliveryURL     string `json:"delivery_url"`
	DateCreatedGMT  string `json:"date_created_gmt"`
	DateModifiedGMT string `json:"date_modified_gmt"`
	// Raw is the object exactly as received.
	Raw json.RawMessage `json:"-"`
}

// WebhookCreate is the body of a webhook creation. Secret is required: a
// webhook without our own secret would be signed with a WordPress default.
type WebhookCreate struct {
	Name        string `json:"name,omitempty"`
	Topic       string `json:"topic"`
	DeliveryURL string `json:"delivery_url"`
	Secret      string `json:"secret"`
	Status      string `json:"status,omitempty"`
}

// WebhookUpdate changes a webhook; empty fields are left unchanged.
type WebhookUpdate struct {
	Name        string `json:"name,omitempty"`
	Status      string `json:"status,omitempty"`
	DeliveryURL string `json:"delivery_url,omitempty"`
	Secret      string `json:"secret,omitempty"`
	Topic       string `json:"topic,omitempty"`
}

func decodeWebhook(raw json.RawMessage) (Webhook, error) {
	var w Webhook
	if err := json.Unmarshal(raw, &w); err != nil {
		return w, err
	}
	w.Raw = append(json.RawMessage(nil), raw...)
	return w, nil
}

// ListWebhooks returns every webhook with the given status filter ("" or
// WebhookStatusAll for all, including pending), walking all pages. The
// number of webhooks on a store is small, so they are returned as a slice.
func (c *Client) ListWebhooks(ctx context.Context, status string) ([]Webhook, error) {
	if status == "" {
		status = WebhookStatusAll
	}
	q := url.Values{"status": {status}, "orderby": {"id"}, "order": {"asc"}}
	var out []Webhook
	err := c.Walk(ctx, WebhooksRoute, q, MaxPerPage, func(p *Page) error {
		for _, item := range p.Items {
			w, err := decodeWebhook(item)
			if err != nil {
				return &BodyError{Status: http.StatusOK, URL: p.URL, ContentType: p.Header.Get("Content-Type"),
					Snippet: snippet(item, 200), Reason: fmt.Sprintf("webhook object does not decode (%v)", err)}
			}
			out = append(out, w)
		}
		return nil
	})
	return out, err
}

func (c *Client) webhookCall(ctx context.Context, method, route string, query url.Values, body any) (Webhook, error) {
	var raw json.RawMessage
	if _, err := c.Do(ctx, method, route, query, body, &raw); err != nil {
		return Webhook{}, err
	}
	w, err := decodeWebhook(raw)
	if err != nil {
		return Webhook{}, fmt.Errorf("woocommerce %s %s: webhook object does not decode: %w", method, route, err)
	}
	return w, nil
}

// GetWebhook fetches one webhook (404 → an *Error, see IsNotFound).
func (c *Client) GetWebhook(ctx context.Context, id int64) (Webhook, error) {
	return c.webhookCall(ctx, http.MethodGet, webhookRoute(id), nil, nil)
}

// CreateWebhook creates a webhook. Topic, DeliveryURL and Secret are
// required. WooCommerce pings the delivery URL while handling this call.
func (c *Client) CreateWebhook(ctx context.Context, w WebhookCreate) (Webhook, error) {
	if w.Topic == "" || w.DeliveryURL == "" || w.Secret == "" {
		return Webhook{}, fmt.Errorf("creating a webhook needs topic, delivery_url and secret")
	}
	return c.webhookCall(ctx, http.MethodPost, WebhooksRoute, nil, w)
}

// UpdateWebhook changes a webhook (PUT) and returns its new state.
func (c *Client) UpdateWebhook(ctx context.Context, id int64, u WebhookUpdate) (Webhook, error) {
	if u == (WebhookUpdate{}) {
		return Webhook{}, fmt.Errorf("webhook update with nothing to change")
	}
	return c.webhookCall(ctx, http.MethodPut, webhookRoute(id), nil, u)
}

// DeleteWebhook deletes a webhook permanently (force=true; webhooks have no
// trash) and returns it as it was.
func (c *Client) DeleteWebhook(ctx context.Context, id int64) (Webhook, error) {
	return c.webhookCall(ctx, http.MethodDelete, webhookRoute(id), url.Values{"force": {"true"}}, nil)
}

func webhookRoute(id int64) string {
	return WebhooksRoute + "/" + strconv.FormatInt(id, 10)
}
