// Package ceimport turns the JSON body a Cloud Elements user POSTed to
// `/instances` (WooCommerce element `woocommercerest` with events) into a
// runnable wooevents pipeline: `wooevents import-cloud-elements <body.json>`.
//
// The pipeline is self-contained: it carries the envelope, signers and
// dead-letter processors of resources/ (embedded in the binary). Secrets
// (`oauth.api.key`, `oauth.api.secret`, `event.notification.signature.key`)
// are never written or printed: the pipeline reads them from environment
// variables whose names Import reports.
package ceimport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wooevents/wooevents/plugin/datefmt"
	"github.com/wooevents/wooevents/resources"
)

// Environment variables the generated pipeline reads.
const (
	EnvConsumerKey       = "WOOEVENTS_CONSUMER_KEY"
	EnvConsumerSecret    = "WOOEVENTS_CONSUMER_SECRET"
	EnvSignatureKey      = "WOOEVENTS_CALLBACK_SIGNATURE_KEY"
	EnvWebhookSecret     = "WOOEVENTS_WEBHOOK_SECRET"
	EnvStoreURL          = "WOOEVENTS_STORE_URL"
	EnvCallbackURL       = "WOOEVENTS_CALLBACK_URL"
	EnvDeliveryURL       = "WOOEVENTS_WEBHOOK_DELIVERY_URL"
	EnvWebhookAddress    = "WOOEVENTS_WEBHOOK_ADDRESS"
	EnvStandardWebhooks  = "WOOEVENTS_CALLBACK_STANDARD_WEBHOOKS_SECRETS"
	EnvDataDir           = "WOOEVENTS_DATA_DIR"
	EnvHTTPAddress       = "WOOEVENTS_HTTP_ADDRESS"
	EnvPollStartFrom     = "WOOEVENTS_POLL_START_FROM"
	EnvPollInterval      = "WOOEVENTS_POLL_INTERVAL"
	elementKey           = "woocommercerest"
	defaultIntervalMins  = 1.0
	maxJSONBody          = 1 << 20
	hubPrefix            = "/hubs/ecommerce/"
	wooRoutePrefix       = "/wp-json/wc/v3/"
	configurationPrefix  = "configuration."
	pollerConfigKey      = "event.poller.configuration"
	keyStoreURL          = "store.url"
	keyAPIKey            = "oauth.api.key"
	keyAPISecret         = "oauth.api.secret"
	keyEventsEnabled     = "event.notification.enabled"
	keyVendorType        = "event.vendor.type"
	keyCallbackURL       = "event.notification.callback.url"
	keySignatureKey      = "event.notification.signature.key"
	keyRefreshInterval   = "event.poller.refresh_interval"
	vendorPolling        = "polling"
	vendorWebhook        = "webhook"
	requireSignatureName = "require_signature_key"
)

// hubRoutes maps Cloud Elements' ecommerce hub routes to WooCommerce routes.
var hubRoutes = map[string]string{
	"customers": "customers",
	"orders":    "orders",
	"products":  "products",
	"discounts": "coupons",
}

// ceDefaultPoller is Cloud Elements' documented default WooCommerce poller
// configuration, used when a polling body has none.
var ceDefaultPoller = []pollResource{
	{Name: "contacts", Route: "customers", IDField: "id", UpdatedField: "date_modified_gmt", CreatedField: "date_created_gmt"},
	{Name: "discounts", Route: "coupons", IDField: "id"},
	{Name: "orders", Route: "orders", IDField: "id"},
	{Name: "products", Route: "products", IDField: "id"},
}

// webhookObjectTypes renames the webhook input's resource keys to Cloud
// Elements' default poller keys, so consumers keyed on those names keep working.
var webhookObjectTypes = map[string]string{"customers": "contacts", "coupons": "discounts"}

// EnvVar is an environment variable the generated pipeline reads.
type EnvVar struct {
	Name        string
	From        string // the Cloud Elements key it replaces, if any
	Secret      bool   // never printed
	Required    bool   // the pipeline does not work without it
	Value       string // non-secret value baked in as the default ("" for secrets)
	Description string
}

// Result is a converted instance.
type Result struct {
	Config []byte   // the pipeline YAML
	Mode   string   // polling or webhook
	Env    []EnvVar // variables to set (secrets) or that override baked-in values
	Notes  []string // conversions the user should know about
}

// Error is a problem with the body, naming the key.
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return "cloud elements body: " + e.Msg
	}
	return fmt.Sprintf("cloud elements body: %s: %s", e.Key, e.Msg)
}

func errKey(key, format string, args ...any) error {
	return &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
}

type pollResource struct {
	Name, Route                         string
	IDField, UpdatedField, CreatedField string
	DateFormat                          string // Go layout, "" for WooCommerce's own
	CreatedTolerance                    time.Duration
}

type instance struct {
	name        string
	tags        []string
	storeURL    string
	callbackURL string
	signed      bool
	mode        string
	interval    time.Duration
	resources   []pollResource
	notes       []string
	// The body's secrets: Import never writes them anywhere; Instance.Env
	// hands them to a host that runs the pipeline itself (wooevents serve).
	consumerKey, consumerSecret, signatureKey string
}

// Import converts a Cloud Elements /instances body.
func Import(body []byte) (*Result, error) {
	inst, err := parse(body)
	if err != nil {
		return nil, err
	}
	cfg, err := render(inst, PipelineOptions{})
	if err != nil {
		return nil, err
	}
	res := &Result{Config: cfg, Mode: inst.mode, Notes: inst.notes}
	res.Env = append(res.Env,
		EnvVar{Name: EnvConsumerKey, From: configurationPrefix + keyAPIKey, Secret: true, Required: true, Description: "the store's REST consumer key"},
		EnvVar{Name: EnvConsumerSecret, From: configurationPrefix + keyAPISecret, Secret: true, Required: true, Description: "the store's REST consumer secret"},
	)
	if inst.signed {
		res.Env = append(res.Env, EnvVar{Name: EnvSignatureKey, From: configurationPrefix + keySignatureKey, Secret: true, Required: true, Description: "the key of Elements-Webhook-Signature"})
	}
	if inst.mode == vendorWebhook {
		res.Env = append(res.Env,
			EnvVar{Name: EnvWebhookSecret, Secret: true, Required: true, Description: "a new random secret, also set on the store's WooCommerce webhooks"},
			EnvVar{Name: EnvDeliveryURL, Description: "public URL of this receiver (…/webhooks/woocommerce): set it to have the webhooks registered and kept active"},
		)
	}
	if inst.mode == vendorPolling {
		res.Env = append(res.Env, EnvVar{Name: EnvPollInterval, From: configurationPrefix + keyRefreshInterval, Value: inst.interval.String(), Description: "time between polls"})
	}
	res.Env = append(res.Env,
		EnvVar{Name: EnvStoreURL, From: configurationPrefix + keyStoreURL, Value: inst.storeURL, Description: "the store"},
		EnvVar{Name: EnvCallbackURL, From: configurationPrefix + keyCallbackURL, Value: inst.callbackURL, Description: "where notifications are POSTed"},
		EnvVar{Name: EnvStandardWebhooks, Secret: true, Description: "optional whsec_ secrets: adds Standard Webhooks signatures"},
	)
	return res, nil
}

func parse(body []byte) (*instance, error) {
	if len(body) > maxJSONBody {
		return nil, &Error{Msg: fmt.Sprintf("body is larger than %d bytes", maxJSONBody)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return nil, &Error{Msg: "not a JSON object: " + err.Error()}
	}
	if dec.More() {
		return nil, &Error{Msg: "trailing data after the JSON object"}
	}
	if top == nil {
		return nil, &Error{Msg: "not a JSON object"}
	}
	inst := &instance{}
	for _, k := range sortedKeys(top) {
		switch k {
		case "element", "configuration", "name", "tags":
		default:
			return nil, errKey(k, "unknown key (expected element, configuration, name, tags)")
		}
	}

	el, ok := top["element"].(map[string]any)
	if !ok {
		return nil, errKey("element", "required object with key %q", elementKey)
	}
	for _, k := range sortedKeys(el) {
		if k != "key" {
			return nil, errKey("element."+k, "unknown key")
		}
	}
	if key, _ := el["key"].(string); key != elementKey {
		return nil, errKey("element.key", "must be %q (the WooCommerce element), got %s", elementKey, describe(el["key"]))
	}

	if v, present := top["name"]; present {
		s, ok := v.(string)
		if !ok {
			return nil, errKey("name", "must be a string")
		}
		inst.name = s
	}
	if v, present := top["tags"]; present {
		arr, ok := v.([]any)
		if !ok {
			return nil, errKey("tags", "must be an array of strings")
		}
		for i, t := range arr {
			s, ok := t.(string)
			if !ok {
				return nil, errKey(fmt.Sprintf("tags[%d]", i), "must be a string")
			}
			inst.tags = append(inst.tags, s)
		}
	}

	conf, ok := top["configuration"].(map[string]any)
	if !ok {
		return nil, errKey("configuration", "required object")
	}
	return inst, parseConfiguration(inst, conf)
}

func parseConfiguration(inst *instance, conf map[string]any) error {
	for _, k := range sortedKeys(conf) {
		switch k {
		case keyStoreURL, keyAPIKey, keyAPISecret, keyEventsEnabled, keyVendorType, keyCallbackURL,
			keySignatureKey, keyRefreshInterval, pollerConfigKey:
		default:
			return errKey(configurationPrefix+k, "unknown key")
		}
	}
	var err error
	if inst.storeURL, err = httpURL(conf, keyStoreURL); err != nil {
		return err
	}
	for _, k := range []string{keyAPIKey, keyAPISecret} {
		s, ok := conf[k].(string)
		if !ok || strings.TrimSpace(s) == "" {
			return errKey(configurationPrefix+k, "required non-empty string")
		}
		if !credentialOK(s) {
			return errKey(configurationPrefix+k, "must be a WooCommerce REST API key: up to %d letters, digits and _ - . ~ + / = (no spaces)", maxCredentialLen)
		}
	}
	inst.consumerKey, inst.consumerSecret = conf[keyAPIKey].(string), conf[keyAPISecret].(string)

	enabled, present := conf[keyEventsEnabled]
	if !present {
		return errKey(configurationPrefix+keyEventsEnabled, "required: the instance must have events enabled to be imported")
	}
	on, err := boolValue(enabled)
	if err != nil {
		return errKey(configurationPrefix+keyEventsEnabled, "%v", err)
	}
	if !on {
		return errKey(configurationPrefix+keyEventsEnabled, "is false: this instance has no events, nothing to import")
	}

	mode, _ := conf[keyVendorType].(string)
	switch mode {
	case vendorPolling, vendorWebhook:
	default:
		return errKey(configurationPrefix+keyVendorType, "must be %q or %q, got %s", vendorPolling, vendorWebhook, describe(conf[keyVendorType]))
	}
	inst.mode = mode

	if inst.callbackURL, err = httpURL(conf, keyCallbackURL); err != nil {
		return err
	}
	if v, present := conf[keySignatureKey]; present && v != nil {
		s, ok := v.(string)
		if !ok {
			return errKey(configurationPrefix+keySignatureKey, "must be a string")
		}
		inst.signed = s != ""
		inst.signatureKey = s
	}

	if mode == vendorWebhook {
		for _, k := range []string{keyRefreshInterval, pollerConfigKey} {
			if _, present := conf[k]; present {
				return errKey(configurationPrefix+k, "contradicts %s: %q (polling settings in a webhook instance)", keyVendorType, vendorWebhook)
			}
		}
		inst.notes = append(inst.notes, "objectType keeps Cloud Elements' names for webhook events: customers → contacts, coupons → discounts.")
		return nil
	}

	inst.interval = time.Duration(defaultIntervalMins * float64(time.Minute))
	if v, present := conf[keyRefreshInterval]; present {
		mins, err := minutes(v)
		if err != nil {
			return errKey(configurationPrefix+keyRefreshInterval, "%v", err)
		}
		inst.interval = time.Duration(mins * float64(time.Minute))
	} else {
		inst.notes = append(inst.notes, fmt.Sprintf("%s not set: polling every %v.", keyRefreshInterval, inst.interval))
	}

	pc, present := conf[pollerConfigKey]
	if !present {
		inst.resources = append(inst.resources, ceDefaultPoller...)
		inst.notes = append(inst.notes, pollerConfigKey+" not set: Cloud Elements' default resources (contacts, discounts, orders, products).")
		return nil
	}
	pcm, ok := pc.(map[string]any)
	if !ok {
		return errKey(configurationPrefix+pollerConfigKey, "must be an object keyed by resource name")
	}
	if len(pcm) == 0 {
		return errKey(configurationPrefix+pollerConfigKey, "has no resources")
	}
	routes := map[string]string{}
	for _, name := range sortedKeys(pcm) {
		r, err := parseResource(inst, name, pcm[name])
		if err != nil {
			return err
		}
		if other, dup := routes[r.Route]; dup {
			return errKey(configurationPrefix+pollerConfigKey+"."+name+".url", "polls %s%s like %q: each WooCommerce route may be polled once", hubPrefix, hubName(r.Route), other)
		}
		routes[r.Route] = name
		inst.resources = append(inst.resources, r)
	}
	return nil
}

func hubName(route string) string {
	for h, r := range hubRoutes {
		if r == route {
			return h
		}
	}
	return route
}

var resourceNameOK = func(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func parseResource(inst *instance, name string, v any) (pollResource, error) {
	base := configurationPrefix + pollerConfigKey + "." + name
	r := pollResource{Name: name, IDField: "id"}
	if !resourceNameOK(name) {
		return r, errKey(base, "resource name must be 1-64 letters, digits, '_' or '-'")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return r, errKey(base, "must be an object")
	}
	for _, k := range sortedKeys(m) {
		switch k {
		case "url", "idField", "datesConfiguration", "createdCheckTolerance":
		default:
			return r, errKey(base+"."+k, "unsupported key (supported: url, idField, datesConfiguration, createdCheckTolerance)")
		}
	}
	u, ok := m["url"].(string)
	if !ok {
		return r, errKey(base+".url", "required string, a Cloud Elements hub route such as %scustomers", hubPrefix)
	}
	p := "/" + strings.Trim(strings.TrimSpace(u), "/")
	if strings.ContainsAny(p, "?#$") {
		return r, errKey(base+".url", "query strings and ${…} templates are not supported: use a plain hub route such as %sorders", hubPrefix)
	}
	route, ok := hubRoutes[strings.TrimPrefix(p, hubPrefix)]
	if !strings.HasPrefix(p, hubPrefix) || !ok {
		return r, errKey(base+".url", "%q is not a supported route (supported: %scustomers, %sorders, %sproducts, %sdiscounts)", u, hubPrefix, hubPrefix, hubPrefix, hubPrefix)
	}
	r.Route = route

	if v, present := m["idField"]; present {
		s, ok := v.(string)
		if !ok || !fieldPathOK(s) {
			return r, errKey(base+".idField", "must be a field path such as \"id\"")
		}
		r.IDField = s
	}
	if v, present := m["createdCheckTolerance"]; present {
		secs, err := number(v)
		if err != nil || secs < 0 || secs > 86400 {
			return r, errKey(base+".createdCheckTolerance", "must be seconds between 0 and 86400")
		}
		r.CreatedTolerance = time.Duration(secs * float64(time.Second))
	}
	if v, present := m["datesConfiguration"]; present && v != nil {
		dc, ok := v.(map[string]any)
		if !ok {
			return r, errKey(base+".datesConfiguration", "must be an object")
		}
		if err := parseDates(inst, base+".datesConfiguration", dc, &r); err != nil {
			return r, err
		}
	}
	return r, nil
}

// maxCredentialLen bounds a consumer key or secret (WooCommerce's are 43
// characters: ck_/cs_ and 40 hex digits).
const maxCredentialLen = 256

// credentialOK accepts what WooCommerce and its key plugins generate. The
// pipeline reads the keys through ${…} interpolation, which pastes them into
// the YAML as they are, so characters YAML gives a meaning to are refused.
func credentialOK(s string) bool {
	if s == "" || len(s) > maxCredentialLen {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-.~+/=", c)) {
			return false
		}
	}
	return true
}

func fieldPathOK(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func parseDates(inst *instance, base string, dc map[string]any, r *pollResource) error {
	str := func(k string) (string, error) {
		v, present := dc[k]
		if !present || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", errKey(base+"."+k, "must be a string")
		}
		return s, nil
	}
	for _, k := range sortedKeys(dc) {
		switch k {
		case "updatedDateField", "updatedDateFormat", "updatedDateTimezone", "createdDateField", "createdDateFormat", "createdDateTimezone":
		default:
			return errKey(base+"."+k, "unknown key")
		}
	}
	for _, k := range []string{"updatedDateTimezone", "createdDateTimezone"} {
		tz, err := str(k)
		if err != nil {
			return err
		}
		switch strings.ToUpper(tz) {
		case "", "UTC", "GMT", "Z", "ETC/UTC":
		default:
			return errKey(base+"."+k, "%q is not supported: wooevents reads WooCommerce's UTC (_gmt) dates", tz)
		}
	}
	var formats [2]string
	for i, kind := range []string{"updated", "created"} {
		field, err := str(kind + "DateField")
		if err != nil {
			return err
		}
		if field != "" {
			if !fieldPathOK(field) {
				return errKey(base+"."+kind+"DateField", "must be a field path such as \"date_modified_gmt\"")
			}
			switch field {
			case "date_modified", "date_created":
				inst.notes = append(inst.notes, fmt.Sprintf("%s.%sDateField: %s is site-local time in WooCommerce; reading %s_gmt instead (UTC).", base, kind, field, field))
				field += "_gmt"
			}
		}
		if kind == "updated" {
			r.UpdatedField = field
		} else {
			r.CreatedField = field
		}
		f, err := str(kind + "DateFormat")
		if err != nil {
			return err
		}
		if f != "" {
			layout, err := datefmt.JavaDateLayout(f)
			if err != nil {
				return errKey(base+"."+kind+"DateFormat", "%v", err)
			}
			formats[i] = layout
		}
	}
	if formats[0] != "" && formats[1] != "" && formats[0] != formats[1] {
		return errKey(base+".createdDateFormat", "differs from updatedDateFormat: one format per resource is supported")
	}
	r.DateFormat = formats[0]
	if r.DateFormat == "" {
		r.DateFormat = formats[1]
	}
	if r.DateFormat == "2006-01-02T15:04:05" {
		r.DateFormat = "" // WooCommerce's own format: the input's default, which also accepts fractions and zones
	}
	return nil
}

func httpURL(conf map[string]any, key string) (string, error) {
	s, ok := conf[key].(string)
	if !ok || strings.TrimSpace(s) == "" {
		return "", errKey(configurationPrefix+key, "required URL")
	}
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errKey(configurationPrefix+key, "must be an http:// or https:// URL")
	}
	if u.User != nil {
		return "", errKey(configurationPrefix+key, "must not contain credentials")
	}
	if strings.ContainsAny(s, "${}\"'\\ \t\r\n") {
		return "", errKey(configurationPrefix+key, "contains characters that are not allowed in a URL here ($, {, }, quotes, backslash, spaces)")
	}
	return s, nil
}

func boolValue(v any) (bool, error) {
	switch t := v.(type) {
	case bool:
		return t, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("must be true or false, got %s", describe(v))
}

func number(v any) (float64, error) {
	var f float64
	var err error
	switch t := v.(type) {
	case json.Number:
		f, err = t.Float64()
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(t), 64)
	default:
		return 0, fmt.Errorf("must be a number, got %s", describe(v))
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("must be a number, got %s", describe(v))
	}
	return f, nil
}

func minutes(v any) (float64, error) {
	f, err := number(v)
	if err != nil {
		return 0, fmt.Errorf("minutes between polls: %w", err)
	}
	if f < 1.0/60 || f > 7*24*60 {
		return 0, fmt.Errorf("minutes between polls must be between 1 second and 7 days, got %v", f)
	}
	return f, nil
}

func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "nothing"
	case string:
		if len(t) > 40 {
			t = t[:40] + "…"
		}
		return strconv.Quote(t)
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return t.String()
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---------------------------------------------------------------------------
// Rendering

// node helpers build an ordered YAML document.
func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

func quoted(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Style: yaml.SingleQuotedStyle}
}

func literal(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Style: yaml.LiteralStyle}
}

func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		var vn *yaml.Node
		switch t := v.(type) {
		case *yaml.Node:
			vn = t
		case string:
			vn = scalar(t)
		default:
			panic(fmt.Sprintf("ceimport: unsupported node value %T", v))
		}
		n.Content = append(n.Content, scalar(kv[i].(string)), vn)
	}
	return n
}

func seq(items ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.SequenceNode, Content: items}
}

func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// embeddedResources reads a resource file of resources/.
func embeddedResources(file string) (*yaml.Node, error) {
	b, err := resources.FS.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("resources/%s: %w", file, err)
	}
	if len(doc.Content) != 1 {
		return nil, fmt.Errorf("resources/%s: not a YAML document", file)
	}
	return doc.Content[0], nil
}

func blobString(s string) string { return strconv.Quote(s) }

func render(inst *instance, opts PipelineOptions) ([]byte, error) {
	var procResources []*yaml.Node
	for _, f := range []string{"cloud_elements.yaml", "standard_webhooks.yaml", "callback.yaml"} {
		root, err := embeddedResources(f)
		if err != nil {
			return nil, err
		}
		if pr := lookup(root, "processor_resources"); pr != nil {
			for _, p := range pr.Content {
				p.HeadComment, p.LineComment, p.FootComment = "", "", ""
				procResources = append(procResources, p)
			}
		}
	}
	cbRoot, err := embeddedResources("callback.yaml")
	if err != nil {
		return nil, err
	}
	var callback *yaml.Node
	if ors := lookup(cbRoot, "output_resources"); ors != nil {
		for _, o := range ors.Content {
			if lookup(o, "label") != nil && lookup(o, "label").Value == "callback" {
				callback = lookup(o, "http_callback")
			}
		}
	}
	if callback == nil {
		return nil, errors.New("resources/callback.yaml: no callback output")
	}
	if u := lookup(callback, "url"); u != nil {
		u.Value = "${" + EnvCallbackURL + ":" + inst.callbackURL + "}"
		u.Style = 0
	}
	if opts.CallbackMaxInFlight > 0 {
		if n := lookup(callback, "max_in_flight"); n != nil {
			n.Value, n.Style, n.Tag = strconv.Itoa(opts.CallbackMaxInFlight), 0, ""
		} else {
			callback.Content = append(callback.Content, scalar("max_in_flight"), scalar(strconv.Itoa(opts.CallbackMaxInFlight)))
		}
	}
	if inst.signed {
		procResources = append(procResources, mapping(
			"label", requireSignatureName,
			"mapping", literal(fmt.Sprintf(
				"root = if env(%q).or(\"\") == \"\" { throw(%s) } else { content() }\n",
				EnvSignatureKey,
				blobString(EnvSignatureKey+" is not set: this instance signs its notifications (event.notification.signature.key)"))),
		))
		if ap := lookup(callback, "attempt_processors"); ap != nil {
			ap.Content = append([]*yaml.Node{mapping("resource", requireSignatureName)}, ap.Content...)
		}
	}

	var input *yaml.Node
	dataDir := "${" + EnvDataDir + ":./data}"
	stateName := "cloud-elements"
	switch {
	case opts.StateName != "":
		stateName = opts.StateName
	case resourceNameOK(inst.name):
		stateName = inst.name
	}
	inputLabel := opts.InputLabel
	if inputLabel == "" {
		inputLabel = map[string]string{vendorWebhook: "webhooks", vendorPolling: "poll"}[inst.mode]
	}
	if inst.mode == vendorWebhook {
		input = mapping("label", inputLabel, "woocommerce_webhook", mapping(
			"address", "${"+EnvWebhookAddress+":0.0.0.0:8080}",
			"path", "/webhooks/woocommerce",
			"store_url", "${"+EnvStoreURL+":"+inst.storeURL+"}",
			"secret", "${"+EnvWebhookSecret+":}",
			"ack", "spooled",
			"spool_dir", dataDir+"/spool-"+stateName,
			"register", mapping(
				"store_url", "${"+EnvStoreURL+":"+inst.storeURL+"}",
				"consumer_key", "${"+EnvConsumerKey+":}",
				"consumer_secret", "${"+EnvConsumerSecret+":}",
				"delivery_url", "${"+EnvDeliveryURL+":}",
			),
		))
	} else {
		var res []*yaml.Node
		for _, r := range inst.resources {
			kv := []any{"name", r.Name, "path", wooRoutePrefix + r.Route}
			if r.IDField != "id" {
				kv = append(kv, "id_field", r.IDField)
			}
			if r.UpdatedField != "" && r.UpdatedField != "date_modified_gmt" {
				kv = append(kv, "updated_field", r.UpdatedField)
			}
			if r.CreatedField != "" && r.CreatedField != "date_created_gmt" {
				kv = append(kv, "created_field", r.CreatedField)
			}
			if r.DateFormat != "" {
				kv = append(kv, "date_format", quoted(r.DateFormat))
			}
			if r.CreatedTolerance > 0 {
				kv = append(kv, "created_tolerance", r.CreatedTolerance.String())
			}
			res = append(res, mapping(kv...))
		}
		input = mapping("label", inputLabel, "woocommerce_poll", mapping(
			"store_url", "${"+EnvStoreURL+":"+inst.storeURL+"}",
			"consumer_key", "${"+EnvConsumerKey+":}",
			"consumer_secret", "${"+EnvConsumerSecret+":}",
			"interval", "${"+EnvPollInterval+":"+inst.interval.String()+"}",
			"start_from", "${"+EnvPollStartFrom+":now}",
			"state_path", dataDir+"/"+stateName+"-poll.db",
			"resources", seq(res...),
		))
	}

	var instMap strings.Builder
	instMap.WriteString("root = this\n")
	if inst.name != "" {
		fmt.Fprintf(&instMap, "root.message.instanceName = %s\n", blobString(inst.name))
	}
	if len(inst.tags) > 0 {
		q := make([]string, len(inst.tags))
		for i, t := range inst.tags {
			q[i] = blobString(t)
		}
		fmt.Fprintf(&instMap, "root.message.instanceTags = [%s]\n", strings.Join(q, ", "))
	}
	if inst.mode == vendorWebhook {
		var pairs []string
		for _, k := range sortedKeys(webhookObjectTypes) {
			pairs = append(pairs, fmt.Sprintf("%s: %s", blobString(k), blobString(webhookObjectTypes[k])))
		}
		fmt.Fprintf(&instMap, "let renames = {%s}\n", strings.Join(pairs, ", "))
		instMap.WriteString("let object_type = $renames.get(this.message.events.index(0).objectType).or(this.message.events.index(0).objectType)\n")
		instMap.WriteString("root.message.events = this.message.events.map_each(e -> e.assign({\"objectType\": $object_type}))\n")
		instMap.WriteString("root.message.raw.objectType = if this.message.raw.type() == \"object\" { $object_type } else { deleted() }\n")
	}

	processors := []*yaml.Node{mapping("resource", "cloud_elements_envelope")}
	if instMap.Len() > len("root = this\n") {
		processors = append(processors, mapping("label", "cloud_elements_instance", "mapping", literal(instMap.String())))
	}

	dlq := mapping(
		"label", "dead_letter",
		"file", mapping(
			"path", quoted(dataDir+`/dead-letter/callback-${! now().ts_format("2006-01-02", "UTC") }.jsonl`),
			"codec", "lines",
		),
		"processors", seq(mapping("resource", "dead_letter_record")),
	)

	pipeline := mapping("processors", seq(processors...))
	output := mapping("fallback", seq(mapping("label", "callback", "http_callback", callback), dlq))
	// Only the processor resources the pipeline uses (the resource files
	// also hold dead_letter_restore, which only a redrive needs).
	used := map[string]bool{}
	for _, n := range []*yaml.Node{pipeline, output} {
		resourceRefs(n, used)
	}
	kept := procResources[:0]
	for _, p := range procResources {
		if l := lookup(p, "label"); l != nil && used[l.Value] {
			kept = append(kept, p)
		}
	}
	root := mapping(
		"http", mapping("address", "${"+EnvHTTPAddress+":127.0.0.1:4195}"),
		"input", input,
		"pipeline", pipeline,
		"output", output,
		"processor_resources", seq(kept...),
	)
	root.HeadComment = header(inst)

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// resourceRefs adds the labels of the `resource: <label>` references under
// n to used.
func resourceRefs(n *yaml.Node, used map[string]bool) {
	if n == nil {
		return
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "resource" && n.Content[i+1].Kind == yaml.ScalarNode {
				used[n.Content[i+1].Value] = true
			}
		}
	}
	for _, c := range n.Content {
		resourceRefs(c, used)
	}
}

func header(inst *instance) string {
	var b strings.Builder
	b.WriteString("Generated by `wooevents import-cloud-elements` from a Cloud Elements /instances body.\n")
	if inst.name != "" {
		fmt.Fprintf(&b, "Instance: %s", oneLine(inst.name))
		if len(inst.tags) > 0 {
			fmt.Fprintf(&b, " (tags: %s)", oneLine(strings.Join(inst.tags, ", ")))
		}
		b.WriteString("\n")
	}
	if inst.mode == vendorWebhook {
		b.WriteString("Mode: webhook. WooCommerce webhooks (0.0.0.0:8080/webhooks/woocommerce) → Cloud Elements notifications.\n")
	} else {
		fmt.Fprintf(&b, "Mode: polling every %v. Resources (objectType): ", inst.interval)
		names := make([]string, len(inst.resources))
		for i, r := range inst.resources {
			names[i] = r.Name + " ← " + wooRoutePrefix + r.Route
		}
		b.WriteString(strings.Join(names, ", ") + ".\n")
	}
	b.WriteString("Notifications: POST to $" + EnvCallbackURL + " (default: the instance's callback URL), Elements-Webhook-Id")
	if inst.signed {
		b.WriteString(" and Elements-Webhook-Signature")
	}
	b.WriteString(",\nretried with backoff; what still fails goes to $" + EnvDataDir + "/dead-letter/ (see config/redrive_dlq.yaml).\n")
	b.WriteString("Secrets come from the environment, never from this file: " + EnvConsumerKey + ", " + EnvConsumerSecret)
	if inst.signed {
		b.WriteString(", " + EnvSignatureKey)
	}
	if inst.mode == vendorWebhook {
		b.WriteString(", " + EnvWebhookSecret)
	}
	b.WriteString(".\nRun: wooevents -c <this file>")
	return b.String()
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
