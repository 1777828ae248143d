package wcwebhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"
)

// verifier checks X-WC-Webhook-Signature against one store's secrets. HMAC
// states are pooled per secret so a request costs no allocation.
type verifier struct {
	pools []*sync.Pool
}

func newVerifier(secrets []string) *verifier {
	v := &verifier{}
	for _, s := range secrets {
		key := []byte(s)
		v.pools = append(v.pools, &sync.Pool{New: func() any { return hmac.New(sha256.New, key) }})
	}
	return v
}

// maxSignatureLen is the longest base64 header worth decoding: a SHA-256
// digest is 44 characters; longer values cannot match.
const maxSignatureLen = 64

// verify reports whether sig is base64(HMAC-SHA256(secret, body)) for one of
// the secrets. Each secret is compared in constant time.
func (v *verifier) verify(body []byte, sig string) bool {
	if len(sig) == 0 || len(sig) > maxSignatureLen {
		return false
	}
	var raw [maxSignatureLen]byte
	copy(raw[:], sig)
	var got [48]byte
	n, err := base64.StdEncoding.Strict().Decode(got[:], raw[:len(sig)])
	if err != nil || n != sha256.Size {
		return false
	}
	ok := false
	var sum [sha256.Size]byte
	for _, p := range v.pools {
		h := p.Get().(hash.Hash)
		h.Reset()
		h.Write(body)
		mac := h.Sum(sum[:0])
		p.Put(h)
		if hmac.Equal(mac, got[:n]) {
			ok = true
		}
	}
	return ok
}

// Sign returns the X-WC-Webhook-Signature WooCommerce sends for body with
// secret: base64(HMAC-SHA256(secret, body)). Tests and benchmarks use it to
// build deliveries.
func Sign(secret string, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write(body)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
