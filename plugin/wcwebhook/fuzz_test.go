package wcwebhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/wooevents/wooevents/plugin/wcevent"
)

// testSink is the pipeline side of a sink that tests drive through the
// handler only.
type testSink struct{}

func (testSink) read(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	<-ctx.Done()
	return nil, nil, ctx.Err()
}
func (testSink) stop()        {}
func (testSink) close() error { return nil }

// recordSink keeps what the handler accepted.
type recordSink struct {
	testSink
	got []delivery
}

func (s *recordSink) accept(_ context.Context, d *delivery, f wcevent.ObjectFields) outcome {
	c := *d
	c.Body = bytes.Clone(d.Body)
	s.got = append(s.got, c)
	return ok200
}

// newTestHandler is the single-store handler of the captures' secret (and a
// rotated one) in front of sk.
func newTestHandler(sk sink) *handler {
	res := service.MockResources()
	return newHandler(handlerConfig{
		path:    DefaultPath,
		stores:  []storeConfig{{secrets: []string{captureSecret, "rotated-secret"}}},
		maxBody: 64 << 10,
	}, sk, res.Logger(), newMetrics(res.Metrics()))
}

func newFuzzHandler() (*handler, *recordSink) {
	s := &recordSink{}
	return newTestHandler(s), s
}

// FuzzWebhookHandler drives request handling (ping detection, signature
// check, topic parsing, JSON validation, normalization) with arbitrary
// bodies and headers. sign=true replaces the signature with a valid one so
// the fuzzer reaches the code behind the HMAC.
func FuzzWebhookHandler(f *testing.F) {
	for _, c := range loadCaptures(f) {
		f.Add(c.Body, c.Header.Get("X-WC-Webhook-Signature"), c.Header.Get("X-WC-Webhook-Topic"), c.Header.Get("X-WC-Webhook-Source"), false)
	}
	f.Add([]byte(`{"action":"woocommerce_payment_complete","arg":42}`), "", "action.woocommerce_payment_complete", "https://shop.example.com/", true)
	f.Add([]byte(`{"id":"abc","date_modified_gmt":"2026-13-45T99:99:99"}`), "", "order.updated", "", true)

	h, sink := newFuzzHandler()
	f.Fuzz(func(t *testing.T, body []byte, sig, topic, source string, sign bool) {
		if sign {
			sig = Sign(captureSecret, body)
		}
		req := httptest.NewRequest(http.MethodPost, DefaultPath, bytes.NewReader(body))
		// Header values with control characters cannot come over the wire.
		for k, v := range map[string]string{HeaderSignature: sig, HeaderTopic: topic, HeaderSource: source} {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				req.Header[k] = []string{v}
			}
		}
		sink.got = sink.got[:0]
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("unexpected status %d", rec.Code)
		}
		validSig := req.Header.Get(HeaderSignature) != "" &&
			(req.Header.Get(HeaderSignature) == Sign(captureSecret, body) || req.Header.Get(HeaderSignature) == Sign("rotated-secret", body))
		if !validSig && rec.Code == http.StatusOK && !(req.Header.Get(HeaderSignature) == "" && req.Header.Get(HeaderTopic) == "" && isPing(body)) {
			t.Fatalf("unsigned or wrongly signed request answered 200")
		}
		if len(sink.got) == 0 {
			return
		}
		if len(sink.got) != 1 || rec.Code != http.StatusOK || !validSig {
			t.Fatalf("accepted %d deliveries with status %d (valid signature %v)", len(sink.got), rec.Code, validSig)
		}
		d := sink.got[0]
		if !bytes.Equal(d.Body, body) {
			t.Fatal("accepted body differs from the request body")
		}
		fields, err := wcevent.ExtractFields(d.Body)
		if err != nil {
			t.Fatalf("accepted a body ExtractFields rejects: %v", err)
		}
		if d.Resource == "" || d.Action == "" || d.Topic == "" {
			t.Fatalf("empty resource/action/topic: %+v", d)
		}
		ev := d.event(fields)
		if ev.ObjectID == "" && ev.Resource != ResourceAction {
			t.Fatal("event without object id")
		}
		out := ev.AppendJSON(nil)
		if !json.Valid(out) {
			t.Fatalf("event is not JSON: %s", out)
		}
		// The spool round trip keeps every field.
		back, err := decodeRecord(d.appendRecord(nil))
		if err != nil || back.Topic != d.Topic || back.Store != d.Store || !bytes.Equal(back.Body, d.Body) ||
			!back.ReceivedAt.Equal(d.ReceivedAt.Truncate(time.Nanosecond)) {
			t.Fatalf("spool record round trip: %v %+v", err, back)
		}
	})
}
