package wcwebhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/wooevents/wooevents/plugin/wcevent"
)

// orderCapture is a real ~2.5 KB signed order.updated delivery.
func orderCapture(b *testing.B) capture {
	return parseCapture(b, filepath.Join(capturesDir, "0016-order.updated-order-updated.http"))
}

// BenchmarkHandler measures the per-request work (body read, HMAC,
// validation, normalization) without network or pipeline.
func BenchmarkHandler(b *testing.B) {
	c := orderCapture(b)
	h := newTestHandler(discardSink{})
	b.ReportAllocs()
	b.SetBytes(int64(len(c.Body)))
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, DefaultPath, bytes.NewReader(c.Body))
		for k, v := range c.Header {
			req.Header[http.CanonicalHeaderKey(k)] = v
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

// discardSink builds the message like the delivered sink and drops it.
type discardSink struct{ testSink }

func (discardSink) accept(_ context.Context, d *delivery, f wcevent.ObjectFields) outcome {
	ev := d.event(f)
	_ = d.message(&ev, "")
	return ok200
}

// BenchmarkInputHTTP posts the order delivery over loopback HTTP to the
// input (ack: delivered) whose messages are acked at once.
func BenchmarkInputHTTP(b *testing.B) {
	c := orderCapture(b)
	in, err := newTestInput("address: 127.0.0.1:0\nsecret: " + captureSecret + "\n")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := in.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	defer in.Close(context.Background())
	go func() {
		for {
			_, ack, err := in.ReadBatch(ctx)
			if err != nil {
				return
			}
			_ = ack(ctx, nil)
		}
	}()
	url := "http://" + in.Addr().String() + DefaultPath
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr}
	b.SetBytes(int64(len(c.Body)))
	b.ResetTimer()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(c.Body))
			for k, v := range c.Header {
				switch k {
				case "Host", "Content-Length", "Connection":
					continue
				}
				req.Header[http.CanonicalHeaderKey(k)] = v
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
