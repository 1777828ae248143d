package wcwebhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/internal/retry"
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

// deleteOnCloseBudget bounds the deletion of the managed webhooks at close.
const deleteOnCloseBudget = 30 * time.Second

// storeREST is the REST side of one store with credentials: its client,
// its delete checker (nil when confirm_deletes is off) and its registrar
// (nil without a delivery URL).
type storeREST struct {
	name   string // store label for logs
	client *wcclient.Client
	check  *deleteChecker
	reg    *registrar
}

func newStoreREST(s *storeConfig, c *inputConfig, label string, log *service.Logger, m *metrics) (*storeREST, error) {
	cc := *s.rest
	if cc.Logger == nil {
		cc.Logger = log
	}
	client, err := wcclient.New(cc)
	if err != nil {
		return nil, fmt.Errorf("store %s: %s: %w", s.label(), fieldRegister, err)
	}
	r := &storeREST{name: s.label(), client: client}
	if c.confirms(s) {
		r.check = newDeleteChecker(client, r.name, log, m)
	}
	if s.register != nil {
		r.reg = newRegistrar(client, *s.register, s.secrets[0], label, log, m)
		r.reg.store = r.name
	}
	return r, nil
}

// registrations runs the registrars of the stores and stops them.
type registrations struct {
	regs    []*registrar
	stopCh  chan struct{}      // closed to stop after the check in flight
	cancel  context.CancelFunc // cuts the check in flight
	running sync.WaitGroup
}

// startRegistrations starts a registrar per store that registers.
func startRegistrations(stores []*storeREST) *registrations {
	ctx, cancel := context.WithCancel(context.Background())
	rs := &registrations{stopCh: make(chan struct{}), cancel: cancel}
	for _, s := range stores {
		if s.reg == nil {
			continue
		}
		rs.regs = append(rs.regs, s.reg)
		rs.running.Add(1)
		go func(r *registrar) {
			defer rs.running.Done()
			r.run(ctx, rs.stopCh)
		}(s.reg)
	}
	return rs
}

// stop ends the registrars. A check in flight is let finish (a webhook it is
// creating would otherwise survive delete_on_close) unless ctx ends first;
// then the managed webhooks of stores with delete_on_close are deleted.
func (rs *registrations) stop(ctx context.Context, log *service.Logger) {
	close(rs.stopCh)
	done := make(chan struct{})
	go func() { rs.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		rs.cancel()
		<-done
		log.Warnf("woocommerce_webhook: a webhook registration check was cut short by the shutdown; a webhook it was creating may remain in the store")
	}
	rs.cancel()
	for _, r := range rs.regs {
		if !r.conf.deleteOnClose {
			continue
		}
		dctx, cancel := context.WithTimeout(context.Background(), deleteOnCloseBudget)
		if err := r.deleteManaged(dctx); err != nil {
			log.Errorf("woocommerce_webhook: delete_on_close (store %s): %v", r.store, err)
		}
		cancel()
	}
}

// registrar keeps one active webhook per topic pointing at the delivery URL.
type registrar struct {
	client *wcclient.Client
	conf   registerConfig
	store  string // store label for logs
	secret string
	prefix string // webhookNamePrefix, plus " [label]" for labelled inputs
	log    *service.Logger
	m      *metrics
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	// rejected are topics the store refused as invalid (plugins can narrow
	// the valid resources and events); they are no longer tried.
	rejected map[string]bool
}

func newRegistrar(client *wcclient.Client, conf registerConfig, secret, label string, log *service.Logger, m *metrics) *registrar {
	prefix := webhookNamePrefix
	if label != "" {
		prefix += " [" + label + "]"
	}
	return &registrar{client: client, conf: conf, secret: secret, prefix: prefix, log: log, m: m, now: time.Now,
		sleep: retry.Sleep, rejected: map[string]bool{}}
}

// name is the name given to the webhook of topic.
func (r *registrar) name(topic string) string { return r.prefix + " " + topic }

func sameURL(a, b string) bool {
	return strings.TrimRight(strings.TrimSpace(a), "/") == strings.TrimRight(strings.TrimSpace(b), "/")
}

// run checks at once, then every check_interval (after a failure sooner: 5s
// doubling up to check_interval), until stop is closed (after the check in
// flight) or ctx ends (cutting it short).
func (r *registrar) run(ctx context.Context, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The wait is cut by stop too, but a check in flight is not.
	sleepCtx, stopSleep := context.WithCancel(ctx)
	defer stopSleep()
	go func() {
		select {
		case <-stop:
			stopSleep()
		case <-sleepCtx.Done():
		}
	}()
	failed := retry.NewGrowing(registerRetryMin, max(r.conf.checkInterval, registerRetryMin))
	first := true
	for {
		wait := r.conf.checkInterval
		if err := r.reconcile(ctx, stop, first); err != nil {
			if ctx.Err() != nil {
				return
			}
			r.m.registerErrs.Incr(1)
			wait = min(failed.Next(), r.conf.checkInterval)
			r.log.Errorf("woocommerce_webhook: webhook registration check of store %s failed (next try in %s): %v", r.store, wait, err)
		} else {
			r.m.checks.Incr(1)
			first = false
			failed.Reset()
		}
		select {
		case <-stop:
			return
		default:
		}
		if err := r.sleep(sleepCtx, wait); err != nil {
			return
		}
	}
}

// reconcile lists every webhook (all statuses, all pages) and, per topic,
// creates a missing one, fixes its delivery URL and re-activates it. With
// setSecret (the first check after start) existing webhooks are also given
// the secret, since WooCommerce never returns it for comparison.
func (r *registrar) reconcile(ctx context.Context, stop <-chan struct{}, setSecret bool) error {
	hooks, err := r.client.ListWebhooks(ctx, wcclient.WebhookStatusAll)
	if err != nil {
		return fmt.Errorf("listing webhooks: %w", err)
	}
	var errs []error
	for _, topic := range r.conf.topics {
		select {
		case <-stop:
			return errors.Join(errs...) // the rest waits for the next run
		default:
		}
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
		if sameURL(h.DeliveryURL, r.conf.deliveryURL) {
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
		if h.Topic != topic || (!sameURL(h.DeliveryURL, r.conf.deliveryURL) && h.Name != r.name(topic)) {
			continue
		}
		matches = append(matches, h)
		if best == nil || score(h) > score(best) || (score(h) == score(best) && h.ID < best.ID) {
			best = h
		}
	}
	if best == nil {
		created, err := r.client.CreateWebhook(ctx, wcclient.WebhookCreate{
			Name: r.name(topic), Topic: topic, DeliveryURL: r.conf.deliveryURL,
			Secret: r.secret, Status: wcclient.WebhookStatusActive,
		})
		if err != nil {
			return fmt.Errorf("creating webhook: %w", err)
		}
		r.log.Infof("woocommerce_webhook: created webhook %d for %s in store %s", created.ID, topic, r.store)
		if created.Status != "" && created.Status != wcclient.WebhookStatusActive {
			if _, err := r.client.UpdateWebhook(ctx, created.ID, wcclient.WebhookUpdate{Status: wcclient.WebhookStatusActive}); err != nil {
				return fmt.Errorf("activating created webhook %d: %w", created.ID, err)
			}
		}
		return nil
	}
	for _, h := range matches {
		if h != best && sameURL(h.DeliveryURL, r.conf.deliveryURL) {
			r.log.Warnf("woocommerce_webhook: webhooks %d and %d both deliver %s here; events arrive twice (same event ids)", best.ID, h.ID, topic)
		}
	}
	var upd wcclient.WebhookUpdate
	if !sameURL(best.DeliveryURL, r.conf.deliveryURL) {
		upd.DeliveryURL = r.conf.deliveryURL
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
	for _, t := range r.conf.topics {
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
		r.log.Infof("woocommerce_webhook: deleted webhook %d (%s) in store %s", h.ID, h.Topic, r.store)
	}
	return errors.Join(errs...)
}
