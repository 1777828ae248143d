package doctor

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"gopkg.in/yaml.v3"

	"github.com/wooevents/wooevents/plugin/cliopts"
	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
	"github.com/wooevents/wooevents/plugin/wcwebhook"
)

// Defaults of the woocommerce_poll and woocommerce_webhook fields the
// doctor reads (see their specs).
const (
	defaultInterval     = time.Minute
	defaultScanInterval = 0 // woocommerce_poll's default: a new pass as soon as the last ended
	defaultScanMaxPages = 100
	defaultPageSize     = wcclient.MaxPerPage
	defaultWebhookPath  = "/webhooks/woocommerce"
)

// DefaultResources are checked when neither a config nor --resources names
// any (the woocommerce_poll default).
var DefaultResources = []string{"orders", "products", "customers", "coupons"}

// Target is one store to check and what the config wants from it.
type Target struct {
	// Client holds the store URL and, when known, the REST keys and how to
	// use them. Keys may be empty (a webhook receiver without register).
	Client wcclient.Config
	// From says where a config names the store ("pipeline.yaml: input poll
	// (woocommerce_poll)"); empty for --store-url.
	From []string
	// ConfigProblem, when set, is why the config's connection settings do
	// not parse (reported as a failed check).
	ConfigProblem string
	// Poll is set when a woocommerce_poll input reads the store.
	Poll *PollSettings
	// Webhooks is set when a woocommerce_webhook input receives from it.
	Webhooks *WebhookSettings
}

// PollSettings are the woocommerce_poll fields the cost and filter checks use.
type PollSettings struct {
	Resources    []PollResource
	Interval     time.Duration
	ScanInterval time.Duration
	ScanMaxPages int
	PageSize     int
	StartFrom    string
}

// PollResource is one polled list route.
type PollResource struct {
	Name     string
	Route    string // as wcclient takes it: /wp-json/wc/v3/orders
	Scan     bool   // strategy scan (customers): no date filter
	Strategy string
}

// WebhookSettings describe the webhooks this config expects on the store.
type WebhookSettings struct {
	// DeliveryURLs are this config's receivers for the store (register
	// delivery_url, or the --delivery-url flag).
	DeliveryURLs []string
	// Topics are the topics the config keeps a webhook for (register.topics).
	Topics []string
	// Register is true when the input registers and re-enables them itself.
	Register bool
}

// pollResource builds a resource from its name and optional path/strategy.
func pollResource(name, path, strategy string) PollResource {
	if path == "" {
		path = "/wp-json/wc/v3/" + name
	} else if !strings.HasPrefix(path, "/wp-json/") {
		path = "/wp-json" + "/" + strings.TrimLeft(path, "/")
	}
	last := path[strings.LastIndexByte(path, '/')+1:]
	if strategy == "" || strategy == "auto" {
		strategy = "modified_after"
		if last == "customers" || name == "customers" {
			strategy = "scan"
		}
	}
	return PollResource{Name: name, Route: path, Scan: strategy == "scan", Strategy: strategy}
}

// ResourcesFromNames turns --resources into poll resources.
func ResourcesFromNames(names []string) []PollResource {
	var out []PollResource
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, pollResource(n, "", ""))
		}
	}
	return out
}

// TargetsFromConfig reads a pipeline config (environment variables
// interpolated as wooevents does) and returns every store its
// woocommerce_poll and woocommerce_webhook inputs name, merged per store and
// key. missing lists the ${VAR}s without defaults that are unset.
func TargetsFromConfig(path string, lookup func(string) (string, bool)) (targets []*Target, missing []string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	expanded, missing := cliopts.ExpandEnv(raw, lookup)
	var doc yaml.Node
	if err := yaml.Unmarshal(expanded, &doc); err != nil {
		return nil, missing, fmt.Errorf("%s: %w", path, err)
	}
	var found []*Target
	var walkErr error
	walkInputs(&doc, "root", func(name, label, at string, conf *yaml.Node) {
		var m map[string]any
		if err := conf.Decode(&m); err != nil {
			walkErr = fmt.Errorf("%s: %s: %w", path, at, err)
			return
		}
		from := fmt.Sprintf("%s: %s input at %s", path, name, at)
		if label != "" {
			from = fmt.Sprintf("%s: %s input %q (%s)", path, name, label, at)
		}
		if name == "woocommerce_poll" {
			found = append(found, pollTarget(m, from))
		} else {
			found = append(found, webhookTargets(m, from)...)
		}
	})
	if walkErr != nil {
		return nil, missing, walkErr
	}
	return mergeTargets(found), missing, nil
}

// walkInputs calls fn for every woocommerce_poll and woocommerce_webhook
// component in a config document (the input, broker inputs, input
// resources, anywhere): a mapping with one of those keys whose value is a
// mapping. at is the component's path (root.input.broker.inputs.0).
func walkInputs(n *yaml.Node, at string, fn func(name, label, at string, conf *yaml.Node)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			walkInputs(c, at, fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkInputs(c, fmt.Sprintf("%s.%d", at, i), fn)
		}
	case yaml.MappingNode:
		label := ""
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "label" {
				label = n.Content[i+1].Value
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			if (k == "woocommerce_poll" || k == "woocommerce_webhook") && v.Kind == yaml.MappingNode {
				fn(k, label, at, v)
				continue
			}
			walkInputs(v, at+"."+k, fn)
		}
	}
}

// connection parses the store-connection fields of m (store_url defaulting
// to storeURL) with wcclient's own spec and parser.
func connection(m map[string]any, storeURL string) (wcclient.Config, string) {
	fields := wcclient.ConnectionFields()
	keep := map[string]any{}
	for _, k := range []string{wcclient.FieldStoreURL, wcclient.FieldConsumerKey, wcclient.FieldConsumerSecret,
		wcclient.FieldAuth, wcclient.FieldOAuthSignatureMethod, wcclient.FieldTimeout, wcclient.FieldTLS,
		wcclient.FieldUserAgent} {
		if v, ok := m[k]; ok && v != nil {
			keep[k] = v
		}
	}
	// `consumer_key: ${WOOEVENTS_CONSUMER_KEY:}` with the variable unset is
	// an empty value, not a missing field.
	keep[wcclient.FieldConsumerKey] = str(m, wcclient.FieldConsumerKey)
	keep[wcclient.FieldConsumerSecret] = str(m, wcclient.FieldConsumerSecret)
	if s, _ := keep[wcclient.FieldStoreURL].(string); s == "" {
		keep[wcclient.FieldStoreURL] = storeURL
	}
	fallback := wcclient.Config{StoreURL: fmt.Sprint(keep[wcclient.FieldStoreURL])}
	fallback.ConsumerKey, _ = keep[wcclient.FieldConsumerKey].(string)
	fallback.ConsumerSecret, _ = keep[wcclient.FieldConsumerSecret].(string)
	if a, ok := keep[wcclient.FieldAuth].(string); ok {
		fallback.Auth = wcclient.AuthMode(a)
	}
	b, err := yaml.Marshal(keep)
	if err != nil {
		return fallback, err.Error()
	}
	pc, err := service.NewConfigSpec().Fields(fields...).ParseYAML(string(b), nil)
	if err != nil {
		return fallback, err.Error()
	}
	cc, err := wcclient.ConfigFromParsed(pc, nil)
	if err != nil {
		return fallback, err.Error()
	}
	return cc, ""
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func duration(m map[string]any, k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(str(m, k)); err == nil {
		return d
	}
	return def
}

func strList(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func pollTarget(m map[string]any, from string) *Target {
	t := &Target{From: []string{from}}
	t.Client, t.ConfigProblem = connection(m, "")
	ps := &PollSettings{
		Interval:     duration(m, "interval", defaultInterval),
		ScanInterval: duration(m, "scan_interval", defaultScanInterval),
		ScanMaxPages: defaultScanMaxPages,
		PageSize:     defaultPageSize,
		StartFrom:    str(m, "start_from"),
	}
	if ps.StartFrom == "" {
		ps.StartFrom = "now"
	}
	if n, ok := m["page_size"].(int); ok && n > 0 && n <= wcclient.MaxPerPage {
		ps.PageSize = n
	}
	if n, ok := m["scan_max_pages"].(int); ok && n > 0 {
		ps.ScanMaxPages = n
	}
	if list, ok := m["resources"].([]any); ok {
		for _, e := range list {
			rm, _ := e.(map[string]any)
			if name := str(rm, "name"); name != "" {
				ps.Resources = append(ps.Resources, pollResource(name, str(rm, "path"), str(rm, "strategy")))
			}
		}
	} else {
		ps.Resources = ResourcesFromNames(DefaultResources)
	}
	t.Poll = ps
	return t
}

// webhookTargets returns the stores of a woocommerce_webhook input: the
// single-store fields (store_url, register) or each entry of `stores`.
func webhookTargets(m map[string]any, from string) []*Target {
	path := str(m, "path")
	if path == "" {
		path = defaultWebhookPath
	}
	publicURL := str(m, "public_url")
	one := func(storeURL, name string, reg map[string]any, from string) *Target {
		t := &Target{From: []string{from}, Webhooks: &WebhookSettings{}}
		t.Client = wcclient.Config{StoreURL: storeURL}
		if reg == nil {
			return t
		}
		t.Client, t.ConfigProblem = connection(reg, storeURL)
		wh := t.Webhooks
		wh.Topics = strList(reg["topics"])
		if _, set := reg["topics"]; !set {
			wh.Topics = append([]string(nil), wcwebhook.DefaultRegisterTopics...)
		}
		delivery := str(reg, "delivery_url")
		if delivery == "" && publicURL != "" {
			delivery = strings.TrimRight(publicURL, "/") + "/" + strings.Trim(path, "/")
			if name != "" {
				delivery += "/" + url.PathEscape(name)
			}
		}
		if delivery != "" {
			wh.DeliveryURLs = []string{delivery}
			wh.Register = true
		}
		return t
	}
	var out []*Target
	reg, _ := m["register"].(map[string]any)
	if s := str(m, "store_url"); s != "" || reg != nil {
		out = append(out, one(s, "", reg, from))
	}
	if stores, ok := m["stores"].([]any); ok {
		for i, e := range stores {
			sm, _ := e.(map[string]any)
			r, _ := sm["register"].(map[string]any)
			name := str(sm, "name")
			out = append(out, one(str(sm, "url"), name, r, fmt.Sprintf("%s, stores[%d] %q", from, i, name)))
		}
	}
	if len(out) == 0 {
		out = append(out, &Target{From: []string{from}, Webhooks: &WebhookSettings{}})
	}
	return out
}

// mergeTargets joins the targets that name the same store with the same
// key (a hybrid pipeline's webhook register block and poll input).
func mergeTargets(in []*Target) []*Target {
	var out []*Target
	index := map[string]*Target{}
	for _, t := range in {
		key := ""
		if t.Client.StoreURL != "" {
			key = wcevent.NormalizeStore(t.Client.StoreURL) + "\x1f" + t.Client.ConsumerKey
		}
		prev, ok := index[key]
		if key == "" || !ok {
			if key != "" {
				index[key] = t
			}
			out = append(out, t)
			continue
		}
		prev.From = append(prev.From, t.From...)
		if prev.ConfigProblem == "" {
			prev.ConfigProblem = t.ConfigProblem
		}
		if prev.Client.ConsumerKey == "" && t.Client.ConsumerKey != "" {
			prev.Client = t.Client
		}
		if prev.Poll == nil {
			prev.Poll = t.Poll
		}
		switch {
		case prev.Webhooks == nil:
			prev.Webhooks = t.Webhooks
		case t.Webhooks != nil:
			prev.Webhooks.DeliveryURLs = append(prev.Webhooks.DeliveryURLs, t.Webhooks.DeliveryURLs...)
			prev.Webhooks.Topics = union(prev.Webhooks.Topics, t.Webhooks.Topics)
			prev.Webhooks.Register = prev.Webhooks.Register || t.Webhooks.Register
		}
	}
	// A receiver with keys of its own but no register block still benefits
	// from the poll input's keys when they point at the same store.
	for _, t := range out {
		if t.Client.ConsumerKey != "" || t.Client.StoreURL == "" {
			continue
		}
		for _, o := range out {
			if o != t && o.Client.ConsumerKey != "" && wcevent.NormalizeStore(o.Client.StoreURL) == wcevent.NormalizeStore(t.Client.StoreURL) {
				o.From = append(o.From, t.From...)
				if o.Webhooks == nil {
					o.Webhooks = t.Webhooks
				}
				t.From = nil
				break
			}
		}
	}
	var kept []*Target
	for _, t := range out {
		if len(t.From) > 0 {
			kept = append(kept, t)
		}
	}
	return kept
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
