package wcwebhook

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/wcclient"
	"github.com/wooevents/wooevents/plugin/wcevent"
)

// inputConfig is the input's configuration as the spec parsed it. Every
// default lives in the spec (Spec): nothing here fills in a zero value.
type inputConfig struct {
	address, path     string
	publicURL         string // "" when not set
	stores            []storeConfig
	topics            []string
	ack               string
	spoolDir          string
	spoolMaxBytes     int64
	timeout           time.Duration
	maxBodyBytes      int64
	maxInFlight       int // 0: unbounded
	certFile, keyFile string
	rateLimit         string
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	// confirmDeletes is nil when not set: then deletes are confirmed for
	// every store with REST credentials.
	confirmDeletes     *bool
	deleteCheckTimeout time.Duration
}

// storeConfig is one store the input accepts deliveries from, with its
// optional REST side.
type storeConfig struct {
	name    string // path segment; "" for the single-store shortcut
	url     string // "" only for the single-store shortcut without store_url
	secrets []string
	// rest holds the store's REST credentials (its register block); nil
	// without.
	rest *wcclient.Config
	// register is set when webhooks are to be registered (a delivery URL is
	// known); nil otherwise.
	register *registerConfig
}

// registerConfig enables webhook registration and healing for one store.
type registerConfig struct {
	deliveryURL   string
	topics        []string
	checkInterval time.Duration
	deleteOnClose bool
}

// confirms reports whether s's deletes are checked over REST.
func (c *inputConfig) confirms(s *storeConfig) bool {
	if s.rest == nil {
		return false
	}
	return c.confirmDeletes == nil || *c.confirmDeletes
}

// parseConfig reads the spec's fields.
func parseConfig(conf *service.ParsedConfig, mgr *service.Resources) (inputConfig, error) {
	var (
		c   inputConfig
		err error
		n   int
	)
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{fieldAddress, &c.address}, {fieldPath, &c.path}, {fieldPublicURL, &c.publicURL}, {fieldAck, &c.ack},
		{fieldSpoolDir, &c.spoolDir}, {fieldCertFile, &c.certFile}, {fieldKeyFile, &c.keyFile},
		{fieldRateLimit, &c.rateLimit},
	} {
		if *f.dst, err = conf.FieldString(f.name); err != nil {
			return c, err
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{
		{fieldTimeout, &c.timeout}, {fieldReadHeaderTimeout, &c.readHeaderTimeout}, {fieldIdleTimeout, &c.idleTimeout},
		{fieldDeleteCheckTimeout, &c.deleteCheckTimeout},
	} {
		if *f.dst, err = conf.FieldDuration(f.name); err != nil {
			return c, err
		}
	}
	if n, err = conf.FieldInt(fieldSpoolMaxBytes); err != nil {
		return c, err
	}
	c.spoolMaxBytes = int64(n)
	if n, err = conf.FieldInt(fieldMaxBodyBytes); err != nil {
		return c, err
	}
	c.maxBodyBytes = int64(n)
	if c.maxInFlight, err = conf.FieldInt(fieldMaxInFlight); err != nil {
		return c, err
	}
	if c.topics, err = conf.FieldStringList(fieldTopics); err != nil {
		return c, err
	}
	if conf.Contains(fieldConfirmDeletes) {
		b, err := conf.FieldBool(fieldConfirmDeletes)
		if err != nil {
			return c, err
		}
		c.confirmDeletes = &b
	}

	// The single-store shortcut.
	storeURL, err := conf.FieldString(fieldStoreURL)
	if err != nil {
		return c, err
	}
	secret, err := conf.FieldString(fieldSecret)
	if err != nil {
		return c, err
	}
	secrets, err := conf.FieldStringList(fieldSecrets)
	if err != nil {
		return c, err
	}
	if secret != "" {
		secrets = append([]string{secret}, secrets...)
	}
	if storeURL != "" || len(secrets) > 0 || conf.Contains(fieldRegister) {
		s := storeConfig{url: storeURL, secrets: secrets}
		if conf.Contains(fieldRegister) {
			if err := c.parseRegister(conf.Namespace(fieldRegister), mgr, &s, ""); err != nil {
				return c, fmt.Errorf("%s: %w", fieldRegister, err)
			}
		}
		c.stores = append(c.stores, s)
	}

	list, err := conf.FieldObjectList(fieldStores)
	if err != nil {
		return c, err
	}
	if len(list) > 0 && len(c.stores) > 0 {
		return c, errStoresMixed
	}
	for i, sc := range list {
		var s storeConfig
		if s.name, err = sc.FieldString(fieldStoreName); err != nil {
			return c, fmt.Errorf("%s[%d]: %w", fieldStores, i, err)
		}
		if s.url, err = sc.FieldString(fieldStoreURLItem); err != nil {
			return c, fmt.Errorf("%s[%d]: %w", fieldStores, i, err)
		}
		if s.secrets, err = sc.FieldStringList(fieldStoreSecrets); err != nil {
			return c, fmt.Errorf("%s[%d]: %w", fieldStores, i, err)
		}
		if sc.Contains(fieldRegister) {
			if err := c.parseRegister(sc.Namespace(fieldRegister), mgr, &s, s.url); err != nil {
				return c, fmt.Errorf("%s[%d] (%q).%s: %w", fieldStores, i, s.name, fieldRegister, err)
			}
		}
		c.stores = append(c.stores, s)
	}
	return c, c.validate()
}

var errStoresMixed = fmt.Errorf("%s replaces the single-store fields %s, %s, %s and %s: give each store its own url, secrets and register",
	fieldStores, fieldStoreURL, fieldSecret, fieldSecrets, fieldRegister)

// parseRegister reads a register block into s. defaultStoreURL is the REST
// store URL when the block names none (the store's own url).
func (c *inputConfig) parseRegister(rc *service.ParsedConfig, mgr *service.Resources, s *storeConfig, defaultStoreURL string) error {
	cc, err := wcclient.ConfigFromParsedFor(rc, mgr, defaultStoreURL)
	if err != nil {
		return err
	}
	s.rest = &cc
	var r registerConfig
	if r.deliveryURL, err = rc.FieldString(fieldDeliveryURL); err != nil {
		return err
	}
	if r.topics, err = rc.FieldStringList(fieldRegisterTopics); err != nil {
		return err
	}
	if r.checkInterval, err = rc.FieldDuration(fieldCheckInterval); err != nil {
		return err
	}
	if r.deleteOnClose, err = rc.FieldBool(fieldDeleteOnClose); err != nil {
		return err
	}
	if r.deliveryURL == "" && c.publicURL != "" {
		r.deliveryURL = strings.TrimRight(c.publicURL, "/") + "/" + strings.Trim(c.path, "/")
		if s.name != "" {
			r.deliveryURL += "/" + url.PathEscape(s.name)
		}
	}
	if r.deliveryURL != "" {
		s.register = &r
	}
	return nil
}

// validate checks what the spec's lint rule checks too (for values that
// come from environment variables) and what it cannot.
func (c *inputConfig) validate() error {
	if !strings.HasPrefix(c.path, "/") {
		return fmt.Errorf("%s must start with /", fieldPath)
	}
	if len(c.stores) == 0 {
		return fmt.Errorf("no store configured: set %s (or %s) or %s", fieldSecret, fieldSecrets, fieldStores)
	}
	names := map[string]bool{}
	registers := map[string]int{} // normalized REST store URL -> stores index
	for i, s := range c.stores {
		if len(s.secrets) == 0 {
			return fmt.Errorf("store %d (%q) has no secret: unsigned deliveries are never accepted", i, s.name)
		}
		for _, sec := range s.secrets {
			if sec == "" {
				return fmt.Errorf("store %d (%q) has an empty secret", i, s.name)
			}
		}
		if s.name == "" && len(c.stores) > 1 {
			return fmt.Errorf("%s[%d]: %s is required", fieldStores, i, fieldStoreName)
		}
		if strings.Contains(s.name, "/") {
			return fmt.Errorf("%s[%d]: %s must not contain /", fieldStores, i, fieldStoreName)
		}
		if s.name != "" && s.url == "" {
			return fmt.Errorf("%s[%d]: %s is required", fieldStores, i, fieldStoreURLItem)
		}
		if names[s.name] {
			return fmt.Errorf("%s: store name %q used twice", fieldStores, s.name)
		}
		names[s.name] = true
		if s.register != nil && s.rest != nil {
			// Registrars recognise their hooks by name and topic: two
			// entries registering on one store would take each other's.
			key := wcevent.NormalizeStore(s.rest.StoreURL)
			if j, dup := registers[key]; dup {
				return fmt.Errorf("%s[%d] and %s[%d] both register webhooks on %s: each would take over the other's webhooks; use one entry per store (several secrets go in its secrets list)",
					fieldStores, j, fieldStores, i, key)
			}
			registers[key] = i
		}
	}
	switch c.ack {
	case AckDelivered:
	case AckSpooled:
		if c.spoolDir == "" {
			return fmt.Errorf("%s: %s needs %s", fieldAck, AckSpooled, fieldSpoolDir)
		}
	default:
		return fmt.Errorf("%s: unknown mode %q (want %s or %s)", fieldAck, c.ack, AckDelivered, AckSpooled)
	}
	if c.spoolMaxBytes <= 0 {
		return fmt.Errorf("%s must be positive (got %d)", fieldSpoolMaxBytes, c.spoolMaxBytes)
	}
	if c.maxInFlight < 0 {
		return fmt.Errorf("%s must be 0 (unbounded) or positive (got %d)", fieldMaxInFlight, c.maxInFlight)
	}
	if c.maxBodyBytes <= 0 {
		return fmt.Errorf("%s must be positive (got %d)", fieldMaxBodyBytes, c.maxBodyBytes)
	}
	for name, d := range map[string]time.Duration{fieldTimeout: c.timeout, fieldReadHeaderTimeout: c.readHeaderTimeout,
		fieldIdleTimeout: c.idleTimeout, fieldDeleteCheckTimeout: c.deleteCheckTimeout} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive (got %s)", name, d)
		}
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return fmt.Errorf("%s and %s go together", fieldCertFile, fieldKeyFile)
	}
	if c.confirmDeletes != nil && *c.confirmDeletes {
		withREST := false
		for i := range c.stores {
			withREST = withREST || c.stores[i].rest != nil
		}
		if !withREST {
			return fmt.Errorf("%s needs REST credentials in %s", fieldConfirmDeletes, fieldRegister)
		}
	}
	if c.publicURL != "" {
		u, err := url.Parse(c.publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s must be an http:// or https:// URL (got %q)", fieldPublicURL, c.publicURL)
		}
	}
	for _, s := range c.stores {
		if s.register != nil && len(s.register.topics) == 0 {
			return fmt.Errorf("store %q: %s.%s is empty", s.name, fieldRegister, fieldRegisterTopics)
		}
		if s.register != nil && s.register.checkInterval <= 0 {
			return fmt.Errorf("store %q: %s.%s must be positive", s.name, fieldRegister, fieldCheckInterval)
		}
	}
	return nil
}

// label names a store in logs: its name, or its URL for the single store.
func (s *storeConfig) label() string {
	if s.name != "" {
		return s.name
	}
	if s.url != "" {
		return wcevent.NormalizeStore(s.url)
	}
	return "(single store)"
}
