package ceimport

import (
	"fmt"
	"regexp"
	"time"
)

// Cloud Elements names shared with `wooevents serve`.
const (
	// ElementKey is the WooCommerce element's key (`element.key`).
	ElementKey = elementKey
	// ModePolling and ModeWebhook are the values of event.vendor.type.
	ModePolling = vendorPolling
	ModeWebhook = vendorWebhook
	// ConfigurationKeyPrefix prefixes the configuration keys in errors
	// ("configuration.store.url").
	ConfigurationKeyPrefix = configurationPrefix
	// Configuration keys a host reading the body may need to name.
	KeyStoreURL        = keyStoreURL
	KeyAPIKey          = keyAPIKey
	KeyAPISecret       = keyAPISecret
	KeyVendorType      = keyVendorType
	KeyCallbackURL     = keyCallbackURL
	KeySignatureKey    = keySignatureKey
	KeyRefreshInterval = keyRefreshInterval
	// MaxBodyBytes is the largest body Parse accepts.
	MaxBodyBytes = maxJSONBody
)

// SecretKeys are the configuration keys whose values are secrets: never
// echoed, logged or written in clear.
var SecretKeys = []string{keyAPIKey, keyAPISecret, keySignatureKey}

// Instance is a validated Cloud Elements /instances body. It is the one
// translation behind both `import-cloud-elements` (which writes Pipeline and
// tells the user which variables to set) and `wooevents serve` (which runs
// Pipeline with Env as the stream's environment), so an instance created
// through the API runs exactly the pipeline the importer writes.
type Instance struct {
	inst *instance
}

// Parse validates a body the way Import does; errors are *Error naming the
// key.
func Parse(body []byte) (*Instance, error) {
	inst, err := parse(body)
	if err != nil {
		return nil, err
	}
	return &Instance{inst: inst}, nil
}

// Name is the body's `name` ("" when absent).
func (i *Instance) Name() string { return i.inst.name }

// Tags are the body's `tags`.
func (i *Instance) Tags() []string { return append([]string(nil), i.inst.tags...) }

// Mode is ModePolling or ModeWebhook.
func (i *Instance) Mode() string { return i.inst.mode }

// StoreURL is configuration.store.url.
func (i *Instance) StoreURL() string { return i.inst.storeURL }

// CallbackURL is configuration.event.notification.callback.url.
func (i *Instance) CallbackURL() string { return i.inst.callbackURL }

// Credentials are the store's REST API key and secret.
func (i *Instance) Credentials() (key, secret string) {
	return i.inst.consumerKey, i.inst.consumerSecret
}

// Interval is the time between polls (polling mode; 0 in webhook mode).
func (i *Instance) Interval() time.Duration { return i.inst.interval }

// PollRoutes are the WooCommerce wc/v3 routes a polling instance reads
// ("/wc/v3/orders", ...), in the pipeline's order; none in webhook mode.
func (i *Instance) PollRoutes() []string {
	var out []string
	for _, r := range i.inst.resources {
		out = append(out, "/wc/v3/"+r.Route)
	}
	return out
}

// Notes are the conversions the user should know about.
func (i *Instance) Notes() []string { return append([]string(nil), i.inst.notes...) }

// PipelineOptions change what Pipeline writes.
type PipelineOptions struct {
	// InputLabel is the input's label (default `poll` or `webhooks`). The
	// webhook input names the webhooks it registers after it
	// (`wooevents [<label>] <topic>`) and recognises them by that name, so
	// two instances registering on one store need different labels.
	// Lower-case letters, digits and underscores.
	InputLabel string
	// StateName names the poll state file (`<StateName>-poll.db`) and the
	// spool directory (`spool-<StateName>`) under the data directory
	// (default: the instance's name when it is a plain word, else
	// `cloud-elements`). A host that lets the name change sets a fixed one,
	// so that the checkpoint survives a rename. Letters, digits, '_', '-'.
	StateName string
	// CallbackMaxInFlight, when positive, replaces the callback output's
	// max_in_flight (resources/callback.yaml: 16): a host running many
	// instances trades per-instance parallelism for goroutines.
	CallbackMaxInFlight int
}

var labelOK = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{0,63}$`).MatchString

// Pipeline is the pipeline YAML, as `import-cloud-elements` writes it. Its
// store, keys, callback, signature key, interval and paths are `${…}`
// references to the variables Env lists.
func (i *Instance) Pipeline(o PipelineOptions) ([]byte, error) {
	if o.InputLabel != "" && !labelOK(o.InputLabel) {
		return nil, fmt.Errorf("input label %q: want 1-64 lower-case letters, digits or underscores", o.InputLabel)
	}
	if o.StateName != "" && !resourceNameOK(o.StateName) {
		return nil, fmt.Errorf("state name %q: want 1-64 letters, digits, '_' or '-'", o.StateName)
	}
	return render(i.inst, o)
}

// Env holds the values, taken from the body, of the variables the pipeline
// reads: store URL, keys, callback URL, signature key (when set) and poll
// interval. Secrets are included: this is for a host that runs the pipeline
// with these values as its environment (see service.StreamBuilder's
// SetEnvVarLookupFunc); never print it. The variables the body does not
// determine (EnvWebhookSecret, EnvDeliveryURL, EnvWebhookAddress,
// EnvDataDir, EnvPollStartFrom, EnvHTTPAddress) are the host's to set.
func (i *Instance) Env() map[string]string {
	in := i.inst
	env := map[string]string{
		EnvStoreURL:       in.storeURL,
		EnvConsumerKey:    in.consumerKey,
		EnvConsumerSecret: in.consumerSecret,
		EnvCallbackURL:    in.callbackURL,
	}
	if in.signed {
		env[EnvSignatureKey] = in.signatureKey
	}
	if in.mode == vendorPolling {
		env[EnvPollInterval] = in.interval.String()
	}
	return env
}
