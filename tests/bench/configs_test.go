package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"

	"github.com/wooevents/wooevents/plugin/wcevent"
)

func captureMessage(t *testing.T, c *Capture, signature string) *service.Message {
	t.Helper()
	msg := service.NewMessage(c.Body)
	for k, vs := range c.Header {
		msg.MetaSetMut(k, vs[0])
	}
	msg.MetaSetMut("X-Wc-Webhook-Signature", signature)
	return msg
}

// The Bloblang baseline must do the same work as woocommerce_webhook: same
// id, type, store, occurred_at and metadata as plugin/wcevent computes.
func TestBloblangBaselineMatchesNormalizedEvent(t *testing.T) {
	t.Setenv("WC_WEBHOOK_SECRET", FixtureSecret)
	c, err := LoadRepoCapture(OrderUpdatedFixture)
	require.NoError(t, err)
	exec, err := bloblang.Parse(BloblangNormalizeMapping)
	require.NoError(t, err)

	out, err := captureMessage(t, c, Sign(FixtureSecret, c.Body)).BloblangQuery(exec)
	require.NoError(t, err)
	raw, err := out.AsBytes()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(raw, &got))

	fields, err := wcevent.ExtractFields(c.Body)
	require.NoError(t, err)
	modified, err := wcevent.ParseWooTime(fields.DateModifiedGMT)
	require.NoError(t, err)
	ev := wcevent.Event{
		Store: wcevent.NormalizeStore(c.Header.Get("X-Wc-Webhook-Source")), Resource: "order", Action: "updated",
		ObjectID: fields.ID, Source: "webhook", Modified: modified, ReceivedAt: time.Now(), Data: c.Body,
	}
	assert.Equal(t, ev.ID(), got["id"])
	assert.Equal(t, "order.updated", got["type"])
	assert.Equal(t, "http://127.0.0.1:8480", got["store"])
	assert.Equal(t, "20", got["object_id"])
	assert.Equal(t, ev.OccurredAt().Format(time.RFC3339), got["occurred_at"])
	assert.Equal(t, float64(20), got["data"].(map[string]any)["id"])
	receivedAt, err := time.Parse(time.RFC3339, got["received_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), receivedAt, time.Minute)

	meta := map[string]string{}
	require.NoError(t, out.MetaWalk(func(k, v string) error { meta[k] = v; return nil }))
	assert.Equal(t, ev.ID(), meta[wcevent.MetaEventID])
	assert.Equal(t, ev.VersionKey(), meta[wcevent.MetaVersionKey])
	assert.Equal(t, "orders", meta[wcevent.MetaResourceKey])
	assert.Equal(t, ev.OccurredAt().Format(time.RFC3339), meta[wcevent.MetaOccurredAt])
}

// A forged signature makes the mapping fail; in a pipeline that only flags
// the message (the documented caveat of this baseline).
func TestBloblangBaselineRejectsForgedSignature(t *testing.T) {
	t.Setenv("WC_WEBHOOK_SECRET", FixtureSecret)
	c, err := LoadRepoCapture(OrderUpdatedFixture)
	require.NoError(t, err)
	exec, err := bloblang.Parse(BloblangNormalizeMapping)
	require.NoError(t, err)
	_, err = captureMessage(t, c, Sign("not-the-secret", c.Body)).BloblangQuery(exec)
	require.ErrorContains(t, err, "invalid webhook signature")
}

func TestConfigsParse(t *testing.T) {
	t.Setenv("WC_WEBHOOK_SECRET", FixtureSecret)
	for name, conf := range map[string]string{
		"ceiling":  CeilingConfig("127.0.0.1:1", "127.0.0.1:2"),
		"bloblang": BloblangBaselineConfig("127.0.0.1:1", "127.0.0.1:2"),
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, service.NewStreamBuilder().SetYAML(conf), conf)
		})
	}
}
