package bench

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCaptureBodyIsByteExactAndSignatureMatches(t *testing.T) {
	c, err := LoadRepoCapture(OrderUpdatedFixture)
	require.NoError(t, err)
	assert.Len(t, c.Body, 2497)
	assert.True(t, bytes.HasPrefix(c.Body, []byte(`{"id":20,`)))
	assert.Equal(t, byte('}'), c.Body[len(c.Body)-1])
	// The captured signature is the store's: our signing must reproduce it.
	assert.Equal(t, c.Header.Get("X-Wc-Webhook-Signature"), Sign(FixtureSecret, c.Body))
	assert.Equal(t, "order.updated", c.Header.Get("X-WC-Webhook-Topic"))
}

func TestRequestIsAValidSignedHTTPRequest(t *testing.T) {
	c, err := LoadRepoCapture(OrderUpdatedFixture)
	require.NoError(t, err)
	raw := c.Request(DeliveryOptions{Path: WebhookPath, Host: "127.0.0.1:9", Secret: FixtureSecret,
		Header: map[string]string{"X-Wc-Webhook-Delivery-Id": "", "X-Bench": "1"}})
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	require.NoError(t, err)
	body, err := io.ReadAll(req.Body)
	require.NoError(t, err)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, WebhookPath, req.URL.Path)
	assert.Equal(t, c.Body, body)
	assert.Equal(t, Sign(FixtureSecret, c.Body), req.Header.Get("X-WC-Webhook-Signature"))
	assert.Equal(t, "http://127.0.0.1:8480/", req.Header.Get("X-WC-Webhook-Source"))
	assert.Empty(t, req.Header.Values("X-WC-Webhook-Delivery-ID"))
	assert.Equal(t, "1", req.Header.Get("X-Bench"))
	assert.False(t, req.Close)
}
