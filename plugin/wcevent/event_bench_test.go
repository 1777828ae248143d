package wcevent

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// referenceID and referenceJSON are the straightforward encodings the fast
// paths of ID, AppendJSON and SetMeta must reproduce byte for byte.
func referenceID(e *Event) string {
	h := sha256.New()
	for i, part := range [...]string{e.Store, e.Resource, e.ObjectID, e.Action, e.Version()} {
		if i > 0 {
			h.Write([]byte{0x1f})
		}
		h.Write([]byte(part))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func referenceJSON(e *Event) []byte {
	dst := []byte(`{"id":"` + referenceID(e) + `","type":`)
	dst = appendJSONString(dst, e.Resource+"."+e.Action)
	for _, kv := range [][2]string{{"resource", e.Resource}, {"action", e.Action}, {"object_id", e.ObjectID}, {"store", e.Store}, {"source", e.Source}} {
		dst = append(dst, `,"`+kv[0]+`":`...)
		dst = appendJSONString(dst, kv[1])
	}
	dst = append(dst, `,"occurred_at":"`+e.OccurredAt().Format(time.RFC3339)+`","received_at":"`+
		e.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")+`","data":`...)
	if len(e.Data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, e.Data...)
	}
	return append(dst, '}')
}

func TestFastEncodingMatchesReference(t *testing.T) {
	zone := time.FixedZone("x", 2*3600+1800)
	cases := []Event{
		{Store: "https://shop.example.com", Resource: "order", ResourceKey: "orders", Action: ActionCreated, ObjectID: "123",
			Source: SourcePoll, Modified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ReceivedAt: time.Date(2026, 1, 2, 3, 4, 6, 123456789, zone), Data: []byte(`{"id":123}`)},
		{Store: "http://127.0.0.1:8480/sub dir", Resource: "custom\"res", Action: "woocommerce_\x07hook", ObjectID: "ü-7\\",
			Source: SourceWebhook, ReceivedAt: time.Date(2026, 1, 2, 3, 4, 6, 0, zone)},
		{Store: "s", Resource: "product", Action: ActionDeleted, ObjectID: "9", Source: SourcePoll,
			Modified: time.Date(2026, 7, 2, 3, 4, 5, 999, zone), Data: []byte(`{"id":9}`)},
	}
	for _, ev := range cases {
		assert.Equal(t, referenceID(&ev), ev.ID())
		assert.Equal(t, string(referenceJSON(&ev)), string(ev.AppendJSON(nil)))
		for range 2 { // the second message reuses the cached metadata template
			msg := ev.NewMessage()
			raw, err := msg.AsBytes()
			require.NoError(t, err)
			assert.Equal(t, string(referenceJSON(&ev)), string(raw))
			key := ev.ResourceKey
			if key == "" {
				key = Plural(ev.Resource)
			}
			want := map[string]string{
				MetaEventID: referenceID(&ev), MetaType: ev.Resource + "." + ev.Action, MetaResource: ev.Resource,
				MetaAction: ev.Action, MetaObjectID: ev.ObjectID, MetaStore: ev.Store, MetaSource: ev.Source,
				MetaVersionKey: ev.Store + "|" + ev.Resource + "|" + ev.ObjectID + "|" + ev.Version(),
				MetaOccurredAt: ev.OccurredAt().Format(time.RFC3339), MetaResourceKey: key,
			}
			got := map[string]string{}
			require.NoError(t, msg.MetaWalk(func(k, v string) error { got[k] = v; return nil }))
			assert.Equal(t, want, got)
		}
	}
}

func TestNewMessageMetadataIsPerMessage(t *testing.T) {
	ev := Event{Store: "https://s", Resource: "order", Action: ActionUpdated, ObjectID: "1", Source: SourcePoll,
		Modified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	a := ev.NewMessage()
	ev.ObjectID = "2"
	b := ev.NewMessage()
	a.MetaSetMut(MetaStore, "changed")
	id, _ := a.MetaGet(MetaObjectID)
	assert.Equal(t, "1", id)
	id, _ = b.MetaGet(MetaObjectID)
	assert.Equal(t, "2", id)
	st, _ := b.MetaGet(MetaStore)
	assert.Equal(t, "https://s", st)
	c := ev.NewMessage()
	st, _ = c.MetaGet(MetaStore)
	assert.Equal(t, "https://s", st)
}

func BenchmarkNewMessage(b *testing.B) {
	data := make([]byte, 2500)
	for i := range data {
		data[i] = 'a'
	}
	data[0], data[len(data)-1] = '"', '"'
	ev := Event{Store: "https://shop.example.com", Resource: "order", ResourceKey: "orders", Action: ActionCreated,
		Source: SourcePoll, Modified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ReceivedAt: time.Now(), Data: data}
	b.ReportAllocs()
	for i := range b.N {
		ev.ObjectID = strconv.Itoa(i)
		_ = ev.NewMessage()
	}
}
