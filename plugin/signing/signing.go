// Package signing signs outbound callbacks: the Cloud Elements
// `Elements-Webhook-Signature` header and Standard Webhooks (`webhook-id`,
// `webhook-timestamp`, `webhook-signature`). It registers the Bloblang methods
// `cloud_elements_signature` and `standard_webhooks_signature`; the
// `http_callback` output (plugin/httpcallback) runs them once per attempt.
package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// StandardWebhooksSecretPrefix prefixes a Standard Webhooks symmetric secret.
const StandardWebhooksSecretPrefix = "whsec_"

// CloudElementsSignature is the value of Cloud Elements' `Elements-Webhook-Signature`
// header: "sha256=" followed by the standard base64 of HMAC-SHA256(key, body).
// body must be the exact bytes sent.
func CloudElementsSignature(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return "sha256=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ParseStandardWebhooksSecrets parses one or more Standard Webhooks secrets
// separated by spaces or commas (several secrets sign with each of them, for
// rotation). Each secret is `whsec_` + base64 of the key bytes; the prefix is
// optional. Errors name the position of a bad secret, never its value.
func ParseStandardWebhooksSecrets(secrets string) ([][]byte, error) {
	fields := strings.FieldsFunc(secrets, func(r rune) bool { return r == ' ' || r == ',' || r == '\n' || r == '\t' })
	if len(fields) == 0 {
		return nil, errors.New("no Standard Webhooks secret given")
	}
	keys := make([][]byte, 0, len(fields))
	for i, f := range fields {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(f, StandardWebhooksSecretPrefix))
		if err != nil {
			return nil, fmt.Errorf("standard webhooks secret #%d is not %s followed by standard base64", i+1, StandardWebhooksSecretPrefix)
		}
		if len(key) == 0 {
			return nil, fmt.Errorf("standard webhooks secret #%d is empty", i+1)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// StandardWebhooksSignature is the `webhook-signature` header value: one
// `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>` per key, space separated.
// id must not contain a '.'.
func StandardWebhooksSignature(id string, timestamp int64, body []byte, keys [][]byte) (string, error) {
	if id == "" {
		return "", errors.New("standard webhooks id is empty")
	}
	if strings.Contains(id, ".") {
		return "", fmt.Errorf("standard webhooks id %q contains '.'", id)
	}
	if len(keys) == 0 {
		return "", errors.New("no Standard Webhooks secret given")
	}
	prefix := make([]byte, 0, len(id)+24)
	prefix = append(prefix, id...)
	prefix = append(prefix, '.')
	prefix = strconv.AppendInt(prefix, timestamp, 10)
	prefix = append(prefix, '.')

	var sb strings.Builder
	for i, key := range keys {
		mac := hmac.New(sha256.New, key)
		mac.Write(prefix)
		mac.Write(body)
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString("v1,")
		sb.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return sb.String(), nil
}
