package ceserve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wooevents/wooevents/plugin/ceimport"
	"github.com/wooevents/wooevents/plugin/wcclient"
)

// Store check bounds.
const (
	storeCheckTimeout = 20 * time.Second
	storeCallTimeout  = 10 * time.Second
	storeRetryBudget  = 3 * time.Second
)

// webhookNamePrefix starts the names the webhook input gives the hooks it
// registers: `wooevents [<input label>] <topic>`.
const webhookNamePrefix = "wooevents"

func (s *Server) storeClient(parsed *ceimport.Instance) (*wcclient.Client, error) {
	key, secret := parsed.Credentials()
	return wcclient.New(wcclient.Config{
		StoreURL:        parsed.StoreURL(),
		ConsumerKey:     key,
		ConsumerSecret:  secret,
		Timeout:         storeCallTimeout,
		MaxRetryElapsed: storeRetryBudget,
		HTTPClient:      s.opts.StoreHTTPClient,
	})
}

// checkStore authenticates against the store before an instance is
// created or its store changed, as Cloud Elements does: an authenticated
// GET of every polled route (one object), or of the webhook list for a
// webhook instance. Wrong keys, a store that does not answer and a site
// without the WooCommerce REST API each give a 400 naming the key, with the
// store's own reason.
func (s *Server) checkStore(ctx context.Context, parsed *ceimport.Instance) *apiError {
	ctx, cancel := context.WithTimeout(ctx, storeCheckTimeout)
	defer cancel()
	client, err := s.storeClient(parsed)
	if err != nil {
		return badRequest(ceimport.ConfigurationKeyPrefix+ceimport.KeyStoreURL+": "+err.Error(), "", "")
	}
	defer client.Close()
	routes := parsed.PollRoutes()
	if parsed.Mode() == ModeWebhook {
		routes = []string{wcclient.WebhooksRoute}
	}
	for _, route := range routes {
		var out []any
		if _, err := client.Do(ctx, http.MethodGet, route, url.Values{"per_page": {"1"}}, nil, &out); err != nil {
			return storeError(err)
		}
	}
	return nil
}

// storeError turns a store's refusal into the API's 400, naming the key
// that is wrong and carrying the store's reason (never a secret: the
// client redacts credentials from URLs).
func storeError(err error) *apiError {
	var we *wcclient.Error
	var be *wcclient.BodyError
	key := ceimport.ConfigurationKeyPrefix + ceimport.KeyStoreURL
	var what, code, providerMsg string
	switch {
	case errors.As(err, &we) && (we.Status == http.StatusUnauthorized || we.Status == http.StatusForbidden):
		key = ceimport.ConfigurationKeyPrefix + ceimport.KeyAPIKey
		what = "the store refused the keys"
		code, providerMsg = we.Code, we.Message
	case errors.As(err, &we) && we.Status == http.StatusNotFound:
		what = "no WooCommerce REST API at this URL"
		code, providerMsg = we.Code, we.Message
	case errors.As(err, &we):
		what = fmt.Sprintf("the store answered %d", we.Status)
		code, providerMsg = we.Code, we.Message
	case errors.As(err, &be):
		what = "the store's answer is not WooCommerce's (is WooCommerce installed and the URL the WordPress home?)"
		code = fmt.Sprint(be.Status)
	case errors.Is(err, context.DeadlineExceeded):
		what = "the store did not answer in time"
	default:
		what = "the store cannot be reached"
	}
	return badRequest(fmt.Sprintf("%s: %s: %v", key, what, err), code, providerMsg)
}

// hookRemoval is what DELETE (or a PATCH away from the store) did with the
// instance's webhooks.
type hookRemoval struct {
	Removed    []int64       `json:"removed"`
	NotRemoved []hookNotGone `json:"notRemoved,omitempty"`
	Error      string        `json:"error,omitempty"`
}

type hookNotGone struct {
	ID    int64  `json:"id"`
	Topic string `json:"topic"`
	Error string `json:"error"`
}

func (h hookRemoval) ok() bool { return h.Error == "" && len(h.NotRemoved) == 0 }

// removeHooks deletes the webhooks the instance registered: those named
// after its input (`wooevents [instance_<id>] …`) or delivering to its URL.
func (s *Server) removeHooks(ctx context.Context, in *instance, parsed *ceimport.Instance) hookRemoval {
	res := hookRemoval{Removed: []int64{}}
	client, err := s.storeClient(parsed)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer client.Close()
	hooks, err := client.ListWebhooks(ctx, wcclient.WebhookStatusAll)
	if err != nil {
		res.Error = "listing the store's webhooks: " + err.Error()
		return res
	}
	prefix := webhookNamePrefix + " [" + in.label() + "] "
	deliveryURL := strings.TrimRight(s.deliveryURL(in.id), "/")
	for _, h := range hooks {
		if !strings.HasPrefix(h.Name, prefix) && strings.TrimRight(h.DeliveryURL, "/") != deliveryURL {
			continue
		}
		if _, err := client.DeleteWebhook(ctx, h.ID); err != nil && !wcclient.IsNotFound(err) {
			res.NotRemoved = append(res.NotRemoved, hookNotGone{ID: h.ID, Topic: h.Topic, Error: err.Error()})
			continue
		}
		res.Removed = append(res.Removed, h.ID)
	}
	return res
}
