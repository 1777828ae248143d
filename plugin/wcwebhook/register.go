package wcwebhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// webhookNamePrefix starts the name of every webhook the input creates.
const webhookNamePrefix = "wooevents"

// invalidTopicCode is WooCommerce's error code for a topic it does not know.
const invalidTopicCode = "woocommerce_rest_shop_webhook_invalid_topic"

// registerRetryMin is the first wait after a failed check; it doubles up to
// check_interval.
const registerRetryMin = 5 * time.Second

// registrar keeps one active webhook per topic pointing at the delivery URL.
type registrar struct {
	client *wcclient.Client
	conf   RegisterConfig
	secret string
	prefix string // webhookNamePrefix, plus " [label]" for labelled inputs
	log    *service.Logger
	m      *metrics
	now    func() time.Time
	// rejected are topics the store refused as invalid (plugins can narrow
	// the valid resources and events); they are no longer tried.
	rejected map[string]bool
}

func newRegistrar(client *wcclient.Client, conf RegisterConfig, secret, label string, log *service.Logger, m *metrics) *registrar {
	prefix := webhookNamePrefix
	if label != "" {
		prefix += " [" + label + "]"
	}
	return &registrar{client: client, conf: conf, secret: secret, prefix: prefix, log: log, m: m, now: time.Now,
		rejected: map[string]bool{}}
}

// name is the name given to the webhook of topic.
func (r *registrar) name(topic string) string { return r.prefix + " " + topic }

func sameURL(a, b string) bool {
	return strings.TrimRight(strings.TrimSpace(a), "/") == strings.TrimRight(strings.TrimSpace(b), "/")
}

// run checks at once, then every check_interval (sooner after a failure),
// until ctx ends.
func (r *registrar) run(ctx context.Context) {
	first := true
	retry := registerRetryMin
	for {
		wait := r.conf.CheckInterval
		if err := r.reconcile(ctx, first); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.m.registerErrs.Incr(1)
			r.log.Errorf("woocommerce_webhook: webhook registration check failed (next try in %s): %v", min(retry, wait), err)
			wait = min(retry, wait)
			retry *= 2
		} else {
			r.m.checks.Incr(1)
			first = false
			retry = registerRetryMin
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// reconcile lists every webhook (all statuses, all pages) and, per topic,
// creates a missing one, fixes its delivery URL and re-activates it. With
// setSecret (the first check after start) existing webhooks are also given
// the secret, since WooCommerce never returns it for comparison.
func (r *registrar) reconcile(ctx context.Context, setSecret bool) error {
	hooks, err := r.client.ListWebhooks(ctx, wcclient.WebhookStatusAll)
	if err != nil {
		return fmt.Errorf("listing webhooks: %w", err)
	}
	var errs []error
	for _, topic := range r.conf.Topics {
		if r.rejected[topic] {
			continue
		}
		err := r.ensure(ctx, topic, hooks, setSecret)
		var werr *wcclient.Error
		if errors.As(err, &werr) && werr.Status == http.StatusBadRequest && werr.Code == invalidTopicCode {
			r.rejected[topic] = true
			r.log.Warnf("woocommerce_webhook: the store refuses webhook topic %s as invalid; not registering it", topic)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", topic, err))
		}
	}
	return errors.Join(errs...)
}

func (r *registrar) ensure(ctx context.Context, topic string, hooks []wcclient.Webhook, setSecret bool) error {
	var best *wcclient.Webhook
	score := func(h *wcclient.Webhook) int {
		s := 0
		if sameURL(h.DeliveryURL, r.conf.DeliveryURL) {
			s += 2
		}
		if h.Status == wcclient.WebhookStatusActive {
			s++
		}
		return s
	}
	var matches []*wcclient.Webhook
	for i := range hooks {
		h := &hooks[i]
		if h.Topic != topic || (!sameURL(h.DeliveryURL, r.conf.DeliveryURL) && h.Name != r.name(topic)) {
			continue
		}
		matches = append(matches, h)
		if best == nil || score(h) > score(best) || (score(h) == score(best) && h.ID < best.ID) {
			best = h
		}
	}
	if best == nil {
		created, err := r.client.CreateWebhook(ctx, wcclient.WebhookCreate{
			Name: r.name(topic), Topic: topic, DeliveryURL: r.conf.DeliveryURL,
			Secret: r.secret, Status: wcclient.WebhookStatusActive,
		})
		if err != nil {
			return fmt.Errorf("creating webhook: %w", err)
		}
		r.log.Infof("woocommerce_webhook: created webhook %d for %s", created.ID, topic)
		if created.Status != "" && created.Status != wcclient.WebhookStatusActive {
			if _, err := r.client.UpdateWebhook(ctx, created.ID, wcclient.WebhookUpdate{Status: wcclient.WebhookStatusActive}); err != nil {
				return fmt.Errorf("activating created webhook %d: %w", created.ID, err)
			}
		}
		return nil
	}
	for _, h := range matches {
		if h != best && sameURL(h.DeliveryURL, r.conf.DeliveryURL) {
			r.log.Warnf("woocommerce_webhook: webhooks %d and %d both deliver %s here; events arrive twice (same event ids)", best.ID, h.ID, topic)
		}
	}
	var upd wcclient.WebhookUpdate
	if !sameURL(best.DeliveryURL, r.conf.DeliveryURL) {
		upd.DeliveryURL = r.conf.DeliveryURL
		r.log.Warnf("woocommerce_webhook: webhook %d for %s delivered to another URL; pointing it here", best.ID, topic)
	}
	if best.Status != wcclient.WebhookStatusActive {
		upd.Status = wcclient.WebhookStatusActive
		switch best.Status {
		case wcclient.WebhookStatusDisabled:
			r.m.reenabled.Incr(1)
			if since, err := wcevent.ParseWooTime(best.DateModifiedGMT); err == nil {
				r.log.Warnf("woocommerce_webhook: webhook %d for %s was disabled by WooCommerce after failed deliveries, probably since %s (up to %s ago); re-activating it. Changes in that window were not delivered: rely on woocommerce_poll reconciliation",
					best.ID, topic, since.Format(time.RFC3339), r.now().Sub(since).Round(time.Second))
			} else {
				r.log.Warnf("woocommerce_webhook: webhook %d for %s was disabled by WooCommerce after failed deliveries; re-activating it. Changes since were not delivered: rely on woocommerce_poll reconciliation", best.ID, topic)
			}
		default:
			r.log.Warnf("woocommerce_webhook: webhook %d for %s had status %q; re-activating it", best.ID, topic, best.Status)
		}
	}
	if setSecret {
		upd.Secret = r.secret
	}
	if upd == (wcclient.WebhookUpdate{}) {
		return nil
	}
	if _, err := r.client.UpdateWebhook(ctx, best.ID, upd); err != nil {
		return fmt.Errorf("updating webhook %d: %w", best.ID, err)
	}
	return nil
}

// deleteManaged deletes the webhooks named after this input for its topics.
func (r *registrar) deleteManaged(ctx context.Context) error {
	hooks, err := r.client.ListWebhooks(ctx, wcclient.WebhookStatusAll)
	if err != nil {
		return fmt.Errorf("listing webhooks: %w", err)
	}
	names := map[string]bool{}
	for _, t := range r.conf.Topics {
		names[r.name(t)] = true
	}
	var errs []error
	for _, h := range hooks {
		if !names[h.Name] {
			continue
		}
		if _, err := r.client.DeleteWebhook(ctx, h.ID); err != nil && !wcclient.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting webhook %d: %w", h.ID, err))
			continue
		}
		r.log.Infof("woocommerce_webhook: deleted webhook %d (%s)", h.ID, h.Topic)
	}
	return errors.Join(errs...)
}
