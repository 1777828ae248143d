package wcevent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// capturedBody returns the raw body of a captured webhook delivery.
func capturedBody(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "tests", "fixtures", "woocommerce", "webhooks", name))
	require.NoError(t, err)
	s := strings.ReplaceAll(string(raw), "\r\n", "\n")
	i := strings.Index(s, "\n\n")
	require.Positive(t, i, "no header/body separator in %s", name)
	return []byte(s[i+2:])
}

func TestEventJSONShapeAndMetadata(t *testing.T) {
	body := capturedBody(t, "0016-order.updated-order-updated.http")
	f, err := ExtractFields(body)
	require.NoError(t, err)
	assert.Equal(t, "20", f.ID)
	assert.Equal(t, "processing", f.Status)
	mod, err := ParseWooTime(f.DateModifiedGMT)
	require.NoError(t, err)

	ev := Event{
		Store: NormalizeStore("http://127.0.0.1:8480/"), Resource: "order", Action: ActionUpdated,
		ObjectID: f.ID, Source: SourceWebhook, Modified: mod,
		ReceivedAt: time.Date(2026, 11, 28, 1, 2, 3, 123456789, time.UTC), Data: body,
	}
	msg := ev.NewMessage()
	out, err := msg.AsBytes()
	require.NoError(t, err)

	var got map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	assert.Equal(t, ev.ID(), got["id"])
	assert.Len(t, got["id"], 32)
	assert.Equal(t, "order.updated", got["type"])
	assert.Equal(t, "order", got["resource"])
	assert.Equal(t, "updated", got["action"])
	assert.Equal(t, "20", got["object_id"])
	assert.Equal(t, "http://127.0.0.1:8480", got["store"])
	assert.Equal(t, "webhook", got["source"])
	assert.Equal(t, f.DateModifiedGMT+"Z", got["occurred_at"])
	assert.Equal(t, "2026-11-28T01:02:03.123Z", got["received_at"])
	data := got["data"].(map[string]any)
	assert.Equal(t, float64(20), data["id"])

	// The body is embedded byte for byte, not re-encoded (PHP escapes "\/").
	assert.Contains(t, string(out), `"data":`+string(body)+`}`)

	for k, want := range map[string]string{
		MetaEventID: ev.ID(), MetaType: "order.updated", MetaResource: "order", MetaAction: "updated",
		MetaObjectID: "20", MetaStore: "http://127.0.0.1:8480", MetaSource: "webhook",
		MetaVersionKey:  "http://127.0.0.1:8480|order|20|" + f.DateModifiedGMT + "Z",
		MetaOccurredAt:  f.DateModifiedGMT + "Z",
		MetaResourceKey: "orders",
	} {
		v, ok := msg.MetaGet(k)
		assert.True(t, ok, k)
		assert.Equal(t, want, v, k)
	}
}

func TestIDIsDeterministicAndDiscriminating(t *testing.T) {
	mod := time.Date(2026, 11, 27, 23, 48, 19, 0, time.UTC)
	base := Event{Store: "https://shop", Resource: "order", Action: ActionUpdated, ObjectID: "20", Modified: mod}

	// Same change seen by another source, at another time, with another body: same id.
	seen := base
	seen.Source, seen.ReceivedAt, seen.Data = SourcePoll, time.Now(), []byte(`{"id":20}`)
	assert.Equal(t, base.ID(), seen.ID())
	assert.Equal(t, base.VersionKey(), seen.VersionKey())

	// The version key ignores the action: created and updated carrying one state collapse.
	created := base
	created.Action = ActionCreated
	assert.NotEqual(t, base.ID(), created.ID())
	assert.Equal(t, base.VersionKey(), created.VersionKey())

	for name, mutate := range map[string]func(*Event){
		"store":    func(e *Event) { e.Store = "https://other" },
		"resource": func(e *Event) { e.Resource = "product" },
		"object":   func(e *Event) { e.ObjectID = "21" },
		"action":   func(e *Event) { e.Action = ActionDeleted },
		"modified": func(e *Event) { e.Modified = mod.Add(time.Second) },
		"unknown":  func(e *Event) { e.Modified = time.Time{} },
	} {
		e := base
		mutate(&e)
		assert.NotEqual(t, base.ID(), e.ID(), name)
	}

	// Separators keep adjacent fields from running together.
	a := Event{Store: "s", Resource: "ab", ObjectID: "c", Action: "x"}
	b := Event{Store: "s", Resource: "a", ObjectID: "bc", Action: "x"}
	assert.NotEqual(t, a.ID(), b.ID())
}

func TestDeleteWithoutDatesUsesReceiveTime(t *testing.T) {
	body := capturedBody(t, "0022-order.deleted-order-deleted.http")
	f, err := ExtractFields(body)
	require.NoError(t, err)
	assert.Equal(t, "24", f.ID)
	assert.Empty(t, f.DateModifiedGMT)

	recv := time.Date(2026, 11, 28, 0, 0, 1, 500e6, time.UTC)
	ev := Event{Store: "http://127.0.0.1:8480", Resource: "order", Action: ActionDeleted, ObjectID: f.ID, ReceivedAt: recv, Data: body}
	assert.Equal(t, "", ev.Version())
	assert.Equal(t, recv.Truncate(time.Second), ev.OccurredAt().Truncate(time.Second))
	assert.Equal(t, "http://127.0.0.1:8480|order|24|", ev.VersionKey())
	out, err := ev.MarshalJSON()
	require.NoError(t, err)
	assert.True(t, json.Valid(out))
	assert.Contains(t, string(out), `"data":{"id":24}}`)
}

func TestNormalizeStore(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8480/":         "http://127.0.0.1:8480",
		"HTTPS://Shop.Example.com":       "https://shop.example.com",
		"https://shop.example.com/wp/":   "https://shop.example.com/wp",
		"https://user:pw@shop.test/?x#y": "https://shop.test",
		" https://shop.test ":            "https://shop.test",
	} {
		assert.Equal(t, want, NormalizeStore(in), in)
	}
}

func TestSingularPlural(t *testing.T) {
	for plural, single := range map[string]string{"orders": "order", "products": "product", "customers": "customer", "coupons": "coupon"} {
		assert.Equal(t, single, Singular(plural))
		assert.Equal(t, plural, Plural(single))
	}
	assert.Equal(t, "subscriptions", Singular("subscriptions"))
	assert.Equal(t, "subscription", Plural("subscription"))
}

func TestParseWooTime(t *testing.T) {
	want := time.Date(2026, 11, 27, 23, 48, 19, 0, time.UTC)
	for _, in := range []string{"2026-11-27T23:48:19", "2026-11-27T23:48:19Z", "2026-11-28T09:48:19+10:00", "2026-11-27T16:48:19-07:00"} {
		got, err := ParseWooTime(in)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%s → %s", in, got)
		assert.Equal(t, time.UTC, got.Location(), in)
	}
	got, err := ParseWooTime("2026-11-27T23:48:19.250")
	require.NoError(t, err)
	assert.Equal(t, 250*time.Millisecond, got.Sub(want))

	_, err = ParseWooTime("")
	assert.ErrorIs(t, err, ErrNoTime)
	_, err = ParseWooTime("null")
	assert.ErrorIs(t, err, ErrNoTime)
	_, err = ParseWooTime("27/11/2026")
	assert.ErrorContains(t, err, `"27/11/2026"`)

	assert.Equal(t, "2026-11-27T23:48:19", FormatWooTime(want.In(time.FixedZone("x", 3600))))
}

func TestExtractFieldsRejectsBadBodies(t *testing.T) {
	for name, body := range map[string]string{
		"html":      "<html><body>Service Unavailable</body></html>",
		"truncated": `{"id":20,"status":"proc`,
		"empty":     "",
		"form":      "webhook_id=1",
	} {
		_, err := ExtractFields([]byte(body))
		assert.ErrorIs(t, err, ErrNotJSON, name)
	}
	_, err := ExtractFields([]byte(`[{"id":1}]`))
	assert.ErrorIs(t, err, ErrNotObject)

	f, err := ExtractFields([]byte(`{"meta":{"id":99},"id":"abc","date_modified_gmt":null}`))
	require.NoError(t, err)
	assert.Equal(t, "abc", f.ID, "nested ids are not the object id")
	assert.Empty(t, f.DateModifiedGMT)
}

func FuzzParseWooTime(f *testing.F) {
	for _, s := range []string{"2026-11-27T23:48:19", "2026-11-27T23:48:19Z", "2026-11-28T09:48:19+10:00", "", "null", "2026-13-40T99:99:99", "2026-11-27T23:48:19.999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseWooTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("%q parsed to non-UTC %v", s, got)
		}
		// A naive UTC date survives a round trip through FormatWooTime.
		back, err := ParseWooTime(FormatWooTime(got))
		if err != nil || !back.Equal(got.Truncate(time.Second)) {
			t.Fatalf("round trip of %q: %v, %v", s, back, err)
		}
	})
}

func TestJSONEscapesHostileStrings(t *testing.T) {
	ev := Event{Store: "https://shop", Resource: "ord\"er\\", Action: "x\x00\x1f\x7f", ObjectID: "\xff\xfe1\u2028", Source: SourcePoll, Data: []byte(`{}`)}
	out, err := ev.MarshalJSON()
	require.NoError(t, err)
	require.True(t, json.Valid(out), "%s", out)
	var got map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	assert.Equal(t, "ord\"er\\", got["resource"])
	assert.Equal(t, "x\x00\x1f\x7f", got["action"])
	assert.Equal(t, "\ufffd\ufffd1\u2028", got["object_id"])
}
