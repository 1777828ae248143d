package wcclient

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parseConnection(t *testing.T, yaml string, mgr *service.Resources) (Config, error) {
	t.Helper()
	spec := service.NewConfigSpec().Fields(ConnectionFields()...)
	conf, err := spec.ParseYAML(yaml, nil)
	require.NoError(t, err)
	return ConfigFromParsed(conf, mgr)
}

func TestConnectionFieldsDefaults(t *testing.T) {
	cfg, err := parseConnection(t, `
store_url: http://shop.test
consumer_key: ck_abc
consumer_secret: cs_def
`, service.MockResources())
	require.NoError(t, err)
	assert.Equal(t, "http://shop.test", cfg.StoreURL)
	assert.Equal(t, "ck_abc", cfg.ConsumerKey)
	assert.Equal(t, "cs_def", cfg.ConsumerSecret)
	assert.Equal(t, AuthAuto, cfg.Auth)
	assert.Equal(t, AuthOAuth1, cfg.EffectiveAuth())
	assert.Equal(t, "HMAC-SHA256", cfg.SignatureMethod)
	assert.Equal(t, 30*time.Second, cfg.Timeout)
	assert.Equal(t, 2*time.Minute, cfg.MaxRetryElapsed)
	assert.Equal(t, DefaultUserAgent, cfg.UserAgent)
	assert.Nil(t, cfg.RateLimit)
	assert.NotNil(t, cfg.Logger)

	c, err := New(cfg)
	require.NoError(t, err)
	assert.Equal(t, AuthOAuth1, c.Auth())
}

func TestConnectionFieldsAllSet(t *testing.T) {
	var accesses atomic.Int32
	mgr := service.MockResources(service.MockResourcesOptAddRateLimit("store_rl", func(context.Context) (time.Duration, error) {
		if accesses.Add(1) == 1 {
			return 5 * time.Millisecond, nil // first access: wait a little, then ask again
		}
		return 0, nil
	}))
	cfg, err := parseConnection(t, `
store_url: https://shop.test/sub
consumer_key: ck_abc
consumer_secret: cs_def
auth: query
oauth_signature_method: HMAC-SHA1
timeout: 5s
tls:
  skip_cert_verify: true
rate_limit: store_rl
max_retry_elapsed: 0s
user_agent: wooevents/9.9
`, mgr)
	require.NoError(t, err)
	assert.Equal(t, AuthQuery, cfg.Auth)
	assert.Equal(t, "HMAC-SHA1", cfg.SignatureMethod)
	assert.Equal(t, 5*time.Second, cfg.Timeout)
	require.NotNil(t, cfg.TLS)
	assert.True(t, cfg.TLS.InsecureSkipVerify)
	assert.Less(t, cfg.MaxRetryElapsed, time.Duration(0), "0s disables retries")
	assert.Equal(t, "wooevents/9.9", cfg.UserAgent)
	require.NotNil(t, cfg.RateLimit)
	require.NoError(t, cfg.RateLimit(context.Background()))
	assert.EqualValues(t, 2, accesses.Load(), "waited and asked again")
}

func TestConnectionFieldsErrors(t *testing.T) {
	_, err := parseConnection(t, `
store_url: https://shop.test
consumer_key: ck_abc
consumer_secret: cs_def
rate_limit: missing_rl
`, service.MockResources())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing_rl")

	_, err = parseConnection(t, `
store_url: https://shop.test/wp-json/wc/v3
consumer_key: ck_abc
consumer_secret: cs_super_secret
`, service.MockResources())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "without /wp-json")
	assert.NotContains(t, err.Error(), "cs_super_secret")

	_, err = parseConnection(t, `
store_url: https://shop.test
consumer_key: ck_abc
consumer_secret: cs_def
auth: digest
`, service.MockResources())
	require.Error(t, err)
}

func TestBenthosRateLimitErrorAndCancel(t *testing.T) {
	boom := errors.New("limiter broken")
	mgr := service.MockResources(
		service.MockResourcesOptAddRateLimit("bad", func(context.Context) (time.Duration, error) { return 0, boom }),
		service.MockResourcesOptAddRateLimit("slow", func(context.Context) (time.Duration, error) { return time.Hour, nil }),
	)
	assert.ErrorIs(t, benthosRateLimit(mgr, "bad")(context.Background()), boom)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	assert.ErrorIs(t, benthosRateLimit(mgr, "slow")(ctx), context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestConnectionFieldsDocumented(t *testing.T) {
	env := service.NewEmptyEnvironment()
	require.NoError(t, env.RegisterInput("wc_fields_test", service.NewConfigSpec().Fields(ConnectionFields()...),
		func(*service.ParsedConfig, *service.Resources) (service.Input, error) {
			return nil, errors.New("unused")
		}))
	var view *service.ConfigView
	env.WalkInputs(func(name string, v *service.ConfigView) {
		if name == "wc_fields_test" {
			view = v
		}
	})
	require.NotNil(t, view)
	raw, err := view.FormatJSON()
	require.NoError(t, err)
	var doc struct {
		Config struct {
			Children []struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				IsSecret    bool   `json:"is_secret"`
				IsOptional  bool   `json:"is_optional"`
				Default     *any   `json:"default"`
			} `json:"children"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal(raw, &doc))
	got := map[string]bool{}
	for _, f := range doc.Config.Children {
		got[f.Name] = true
		assert.NotEmpty(t, f.Description, f.Name)
		assert.Equal(t, f.Name == FieldConsumerKey || f.Name == FieldConsumerSecret, f.IsSecret, f.Name)
		switch f.Name {
		case FieldStoreURL, FieldConsumerKey, FieldConsumerSecret, FieldTLS:
		case FieldRateLimit:
			assert.True(t, f.IsOptional)
		default:
			assert.NotNil(t, f.Default, f.Name)
		}
	}
	for _, n := range []string{FieldStoreURL, FieldConsumerKey, FieldConsumerSecret, FieldAuth, FieldOAuthSignatureMethod,
		FieldTimeout, FieldTLS, FieldRateLimit, FieldMaxRetryElapsed, FieldUserAgent} {
		assert.True(t, got[n], n)
	}
	assert.Len(t, got, 10)
}
