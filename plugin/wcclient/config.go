package wcclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/internal/buildinfo"
	"github.com/wooevents/wooevents/internal/retry"
	"github.com/wooevents/wooevents/plugin/wcclient/oauth1"
)

// Names of the shared store-connection config fields.
const (
	FieldStoreURL             = "store_url"
	FieldConsumerKey          = "consumer_key"
	FieldConsumerSecret       = "consumer_secret"
	FieldAuth                 = "auth"
	FieldOAuthSignatureMethod = "oauth_signature_method"
	FieldTimeout              = "timeout"
	FieldTLS                  = "tls"
	FieldRateLimit            = "rate_limit"
	FieldMaxRetryElapsed      = "max_retry_elapsed"
	FieldUserAgent            = "user_agent"
)

// AuthMode selects how requests are authenticated.
type AuthMode string

// Authentication modes.
const (
	// AuthAuto is AuthBasic for https store URLs and AuthOAuth1 for http ones.
	AuthAuto AuthMode = "auto"
	// AuthBasic sends an Authorization: Basic header (HTTPS only).
	AuthBasic AuthMode = "basic"
	// AuthQuery sends consumer_key/consumer_secret as query parameters (HTTPS
	// only), for hosts that strip the Authorization header.
	AuthQuery AuthMode = "query"
	// AuthOAuth1 signs every request with one-legged OAuth 1.0a.
	AuthOAuth1 AuthMode = "oauth1"
)

// DefaultUserAgent is "wooevents/<version>", the version being
// buildinfo.Version (set by the Makefile with -ldflags).
var DefaultUserAgent = buildinfo.UserAgent()

// Defaults.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultMaxRetryElapsed = 2 * time.Minute
	// MaxPerPage is WooCommerce's upper bound for per_page.
	MaxPerPage = 100
)

// RequestInfo describes one HTTP attempt, passed to Config.OnRequest.
type RequestInfo struct {
	Method   string
	Path     string // the route as given with numeric segments as {id}, e.g. "/wc/v3/orders/{id}"
	Status   int    // 0 when no response was received
	Attempt  int    // 1 for the first try
	Duration time.Duration
	Err      error // the attempt's error, nil on success
}

// Config configures a Client. Build it from a benthos config with
// ConfigFromParsed or as a plain struct (zero values take the defaults).
type Config struct {
	// StoreURL is the WordPress home URL, e.g. https://shop.example.com (a
	// subdirectory install keeps its path). For oauth1 it must match the
	// WordPress "home" setting exactly: it is part of the signature.
	StoreURL       string
	ConsumerKey    string
	ConsumerSecret string
	Auth           AuthMode // AuthAuto when empty
	// SignatureMethod is oauth1.HMACSHA256 (default) or oauth1.HMACSHA1.
	SignatureMethod string
	// Timeout bounds one HTTP attempt (DefaultTimeout when zero).
	Timeout time.Duration
	// TLS is used for https store URLs unless HTTPClient is set.
	TLS *tls.Config
	// HTTPClient replaces the client built from Timeout/TLS (its own Timeout
	// is left as is; Timeout is then applied per attempt via the context).
	HTTPClient *http.Client
	// UserAgent is sent on every request (DefaultUserAgent when empty).
	UserAgent string
	// MaxRetryElapsed bounds the time spent retrying one call: zero means
	// DefaultMaxRetryElapsed, negative disables retries.
	MaxRetryElapsed time.Duration
	// RetryInitialInterval and RetryMaxInterval shape the exponential backoff
	// (defaults 500ms and 30s). Tests shorten them.
	RetryInitialInterval time.Duration
	RetryMaxInterval     time.Duration
	// RateLimit, when set, is called before every attempt and may block.
	RateLimit func(context.Context) error
	// Logger receives debug/warn lines (never credentials). May be nil.
	Logger *service.Logger
	// OnRequest, when set, is called after every attempt (metrics hook).
	OnRequest func(RequestInfo)
	// Now and Nonce override the OAuth clock and nonce source (tests).
	Now   func() time.Time
	Nonce func() string
}

// ConnectionFields returns the store-connection fields shared by the
// woocommerce inputs: store_url (required) followed by ClientFields. Parse
// them back with ConfigFromParsed.
func ConnectionFields() []*service.ConfigField {
	return append([]*service.ConfigField{
		service.NewURLField(FieldStoreURL).
			Description("The store's WordPress home URL (Settings → General → Site Address), without `/wp-json`. A subdirectory install keeps its path. With OAuth 1.0a it must match the WordPress home URL exactly (scheme, `www.`, port), because it is part of the signature.").
			Example("https://shop.example.com"),
	}, ClientFields()...)
}

// ClientFields are the connection fields other than store_url (keys, auth,
// timeouts, retries), for a block whose store URL is known otherwise; parse
// them back with ConfigFromParsedFor.
func ClientFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringField(FieldConsumerKey).
			Description("WooCommerce REST API consumer key (`ck_…`), from WooCommerce → Settings → Advanced → REST API.").
			Secret(),
		service.NewStringField(FieldConsumerSecret).
			Description("WooCommerce REST API consumer secret (`cs_…`).").
			Secret(),
		service.NewStringAnnotatedEnumField(FieldAuth, map[string]string{
			string(AuthAuto):   "`basic` for `https://` store URLs, `oauth1` for `http://` ones.",
			string(AuthBasic):  "HTTP Basic `Authorization` header. WooCommerce only honours it when WordPress believes the request is HTTPS.",
			string(AuthQuery):  "`consumer_key` and `consumer_secret` as query parameters, for hosts that strip the `Authorization` header. HTTPS only; keys end up in access logs.",
			string(AuthOAuth1): "One-legged OAuth 1.0a signature in the query string, as WooCommerce verifies it. Works over plain HTTP and when WordPress does not detect HTTPS behind a proxy.",
		}).
			Description("How requests are authenticated.").
			Default(string(AuthAuto)),
		service.NewStringEnumField(FieldOAuthSignatureMethod, oauth1.HMACSHA256, oauth1.HMACSHA1).
			Description("HMAC used for OAuth 1.0a signatures (only with `auth: oauth1` or `auto` on http).").
			Default(oauth1.HMACSHA256).
			Advanced(),
		service.NewDurationField(FieldTimeout).
			Description("Timeout of one HTTP request to the store.").
			Default(DefaultTimeout.String()),
		service.NewTLSField(FieldTLS).
			Description("TLS settings for `https://` store URLs (custom CA, client certificates, skipping verification for self-signed test stores)."),
		service.NewStringField(FieldRateLimit).
			Description("Name of a `rate_limit` resource consulted before every request to the store.").
			Optional().
			Advanced(),
		service.NewDurationField(FieldMaxRetryElapsed).
			Description("Longest time spent retrying one call after network errors, 429, 500, 502, 503, 504 or a truncated/non-JSON success body, with exponential backoff and jitter honouring `Retry-After`. 400, 401, 403 and 404 are never retried; POST (webhook creation) is retried only on 429, 503 and refused connections, where the store cannot have acted. `0s` disables retries.").
			Default(DefaultMaxRetryElapsed.String()).
			Advanced(),
		service.NewStringField(FieldUserAgent).
			Description("`User-Agent` header sent to the store.").
			Default(DefaultUserAgent).
			Advanced(),
	}
}

// ConfigFromParsed reads the fields of ConnectionFields from conf. mgr
// provides the optional rate_limit resource (may be nil when unused).
func ConfigFromParsed(conf *service.ParsedConfig, mgr *service.Resources) (Config, error) {
	return ConfigFromParsedFor(conf, mgr, "")
}

// ConfigFromParsedFor is ConfigFromParsed for a block whose store_url may be
// absent or empty: storeURL is used then.
func ConfigFromParsedFor(conf *service.ParsedConfig, mgr *service.Resources, storeURL string) (Config, error) {
	var c Config
	var err error
	c.StoreURL = storeURL
	if conf.Contains(FieldStoreURL) {
		s, err := conf.FieldString(FieldStoreURL)
		if err != nil {
			return c, err
		}
		if s != "" {
			c.StoreURL = s
		}
	}
	if c.ConsumerKey, err = conf.FieldString(FieldConsumerKey); err != nil {
		return c, err
	}
	if c.ConsumerSecret, err = conf.FieldString(FieldConsumerSecret); err != nil {
		return c, err
	}
	auth, err := conf.FieldString(FieldAuth)
	if err != nil {
		return c, err
	}
	c.Auth = AuthMode(auth)
	if c.SignatureMethod, err = conf.FieldString(FieldOAuthSignatureMethod); err != nil {
		return c, err
	}
	if c.Timeout, err = conf.FieldDuration(FieldTimeout); err != nil {
		return c, err
	}
	if c.TLS, err = conf.FieldTLS(FieldTLS); err != nil {
		return c, err
	}
	if c.MaxRetryElapsed, err = conf.FieldDuration(FieldMaxRetryElapsed); err != nil {
		return c, err
	}
	if c.MaxRetryElapsed == 0 {
		c.MaxRetryElapsed = -1 // "0s" in YAML means no retries
	}
	if c.UserAgent, err = conf.FieldString(FieldUserAgent); err != nil {
		return c, err
	}
	if conf.Contains(FieldRateLimit) {
		name, err := conf.FieldString(FieldRateLimit)
		if err != nil {
			return c, err
		}
		if name != "" {
			if mgr == nil || !mgr.HasRateLimit(name) {
				return c, fmt.Errorf("%s: rate limit resource %q not found", FieldRateLimit, name)
			}
			c.RateLimit = benthosRateLimit(mgr, name)
		}
	}
	if mgr != nil {
		c.Logger = mgr.Logger()
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}

// benthosRateLimit waits on a benthos rate_limit resource.
func benthosRateLimit(mgr *service.Resources, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		for {
			var wait time.Duration
			var accessErr error
			if err := mgr.AccessRateLimit(ctx, name, func(r service.RateLimit) {
				wait, accessErr = r.Access(ctx)
			}); err != nil {
				return fmt.Errorf("rate limit %q: %w", name, err)
			}
			if accessErr != nil {
				return fmt.Errorf("rate limit %q: %w", name, accessErr)
			}
			if wait <= 0 {
				return nil
			}
			if err := retry.Sleep(ctx, wait); err != nil {
				return err
			}
		}
	}
}

// validate checks the fields that New needs and resolves AuthAuto.
func (c *Config) validate() error {
	if c.StoreURL == "" {
		return fmt.Errorf("%s is required", FieldStoreURL)
	}
	u, err := url.Parse(c.StoreURL)
	if err != nil {
		return fmt.Errorf("%s: %v", FieldStoreURL, retry.RedactError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s must start with http:// or https:// (got scheme %q)", FieldStoreURL, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%s has no host", FieldStoreURL)
	}
	if u.User != nil {
		return fmt.Errorf("%s must not contain credentials; use %s and %s", FieldStoreURL, FieldConsumerKey, FieldConsumerSecret)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s must not contain a query or fragment", FieldStoreURL)
	}
	if strings.Contains(u.Path, "/wp-json") {
		return fmt.Errorf("%s is the site URL without /wp-json (got path %q)", FieldStoreURL, u.Path)
	}
	if c.ConsumerKey == "" || c.ConsumerSecret == "" {
		return fmt.Errorf("%s and %s are required", FieldConsumerKey, FieldConsumerSecret)
	}
	switch c.Auth {
	case "", AuthAuto, AuthBasic, AuthQuery, AuthOAuth1:
	default:
		return fmt.Errorf("%s: unknown mode %q (want auto, basic, query or oauth1)", FieldAuth, c.Auth)
	}
	switch c.SignatureMethod {
	case "", oauth1.HMACSHA256, oauth1.HMACSHA1:
	default:
		return fmt.Errorf("%s: unknown method %q (want %s or %s)", FieldOAuthSignatureMethod, c.SignatureMethod, oauth1.HMACSHA256, oauth1.HMACSHA1)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%s must not be negative", FieldTimeout)
	}
	return nil
}

// EffectiveAuth resolves AuthAuto against the store URL's scheme.
func (c Config) EffectiveAuth() AuthMode {
	switch c.Auth {
	case "", AuthAuto:
		if strings.HasPrefix(strings.ToLower(c.StoreURL), "https://") {
			return AuthBasic
		}
		return AuthOAuth1
	}
	return c.Auth
}

// String describes the config without secrets.
func (c Config) String() string {
	return fmt.Sprintf("wcclient.Config{StoreURL: %q, Auth: %q, ConsumerKey: [redacted], ConsumerSecret: [redacted]}", c.StoreURL, c.EffectiveAuth())
}

// GoString keeps %#v from printing secrets.
func (c Config) GoString() string { return c.String() }
