package signing

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_" + "c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tMTIzNDU2" // "second-secret-for-rotation-123456"
)

func TestCloudElementsSignatureMatchesOpenSSL(t *testing.T) {
	// printf '{"message":{}}' | openssl dgst -sha256 -hmac example-signature-key -binary | base64
	assert.Equal(t, "sha256=ZT8Lm/lXu0by6LThgaWNaj2my8qgi4O+0m1Ewep1sH4=",
		CloudElementsSignature([]byte("example-signature-key"), []byte(`{"message":{}}`)))
}

func swHeaders(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", sig)
	return h
}

func TestStandardWebhooksSignatureVerifiesWithLibrary(t *testing.T) {
	keys, err := ParseStandardWebhooksSecrets(secretA + " " + secretB)
	require.NoError(t, err)
	require.Len(t, keys, 2)

	body := []byte(`{"message":{"eventId":"abc"}}`)
	now := time.Now().Unix()
	sig, err := StandardWebhooksSignature("0123456789abcdef0123456789abcdef", now, body, keys)
	require.NoError(t, err)
	parts := strings.Split(sig, " ")
	require.Len(t, parts, 2)
	for _, p := range parts {
		assert.True(t, strings.HasPrefix(p, "v1,"), p)
	}

	// Each secret alone verifies the header holding both signatures.
	for _, s := range []string{secretA, secretB} {
		wh, err := standardwebhooks.NewWebhook(s)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(body, swHeaders("0123456789abcdef0123456789abcdef", now, sig)))
		// A different body or id fails.
		require.Error(t, wh.Verify([]byte(`{"message":{"eventId":"abd"}}`), swHeaders("0123456789abcdef0123456789abcdef", now, sig)))
		require.Error(t, wh.Verify(body, swHeaders("0123456789abcdef0123456789abcdee", now, sig)))
	}
	other, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("not-the-secret-at-all-xx")))
	require.NoError(t, err)
	require.Error(t, other.Verify(body, swHeaders("0123456789abcdef0123456789abcdef", now, sig)))

	// The spec's published test vector.
	keys, err = ParseStandardWebhooksSecrets(secretA)
	require.NoError(t, err)
	sig, err = StandardWebhooksSignature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`), keys)
	require.NoError(t, err)
	assert.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)
}

func TestParseStandardWebhooksSecretsErrorsHideSecret(t *testing.T) {
	_, err := ParseStandardWebhooksSecrets(secretA + ",whsec_not*base64!")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "#2")
	assert.NotContains(t, err.Error(), "not*base64")
	assert.NotContains(t, err.Error(), "MfKQ9r8")

	_, err = ParseStandardWebhooksSecrets("  ")
	require.Error(t, err)

	keys, err := ParseStandardWebhooksSecrets("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") // prefix optional
	require.NoError(t, err)
	require.Len(t, keys, 1)

	_, err = StandardWebhooksSignature("a.b", 1, nil, keys)
	require.ErrorContains(t, err, "contains '.'")
}

func TestBloblangMethods(t *testing.T) {
	exe, err := bloblang.Parse(`
root.ce = this.cloud_elements_signature("example-signature-key")
root.sw = this.standard_webhooks_signature(id: "evt1", timestamp: "1614265330", secrets: ["` + secretA + `", "` + secretB + `"])
root.sw_num = this.standard_webhooks_signature("evt1", 1614265330, "` + secretA + `")
`)
	require.NoError(t, err)
	body := []byte(`{"message":{}}`)
	res, err := exe.Query(string(body))
	require.NoError(t, err)
	m := res.(map[string]any)
	assert.Equal(t, "sha256=ZT8Lm/lXu0by6LThgaWNaj2my8qgi4O+0m1Ewep1sH4=", m["ce"])

	wh, err := standardwebhooks.NewWebhook(secretB)
	require.NoError(t, err)
	require.NoError(t, wh.VerifyIgnoringTimestamp(body, swHeaders("evt1", 1614265330, m["sw"].(string))))
	assert.True(t, strings.HasPrefix(m["sw"].(string), m["sw_num"].(string)+" "), "first signature is secret A's")

	_, err = bloblang.Parse(`root = content().standard_webhooks_signature("evt1", 1, "whsec_%%%")`)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "%%%")

	exe, err = bloblang.Parse(`root = content().standard_webhooks_signature("evt1", this.ts, "` + secretA + `")`)
	require.NoError(t, err)
	_, err = exe.Query(map[string]any{"ts": "yesterday"})
	require.ErrorContains(t, err, "not Unix seconds")
}
