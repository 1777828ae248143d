package signing

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/bloblang"
)

func init() {
	bloblang.MustRegisterMethodV2("cloud_elements_signature",
		bloblang.NewPluginSpec().
			Category("Encoding and Encryption").
			Description("Returns the Cloud Elements `Elements-Webhook-Signature` header value for the target (a string or bytes: the exact body that is sent): `sha256=` followed by the standard base64 of HMAC-SHA256 keyed with `key`.").
			Param(bloblang.NewStringParam("key").Description("The signature key (Cloud Elements' `event.notification.signature.key`).")).
			Example("", `root = content().cloud_elements_signature("example-signature-key")`,
				[2]string{`{"message":{}}`, `sha256=ZT8Lm/lXu0by6LThgaWNaj2my8qgi4O+0m1Ewep1sH4=`}),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			key, err := args.GetString("key")
			if err != nil {
				return nil, err
			}
			if key == "" {
				return nil, errors.New("cloud_elements_signature: key is empty")
			}
			k := []byte(key)
			return bloblang.BytesMethod(func(body []byte) (any, error) {
				return CloudElementsSignature(k, body), nil
			}), nil
		})

	bloblang.MustRegisterMethodV2("standard_webhooks_signature",
		bloblang.NewPluginSpec().
			Category("Encoding and Encryption").
			Description("Returns the Standard Webhooks `webhook-signature` header value for the target (a string or bytes: the exact body that is sent): `v1,<base64 HMAC-SHA256>` over `<id>.<timestamp>.<body>` for each secret, space separated. The timestamp must be the one sent in `webhook-timestamp` for this very attempt.").
			Param(bloblang.NewStringParam("id").Description("The `webhook-id` header value (stable across retries of one event; must not contain `.`).")).
			Param(bloblang.NewAnyParam("timestamp").Description("The `webhook-timestamp` header value: Unix seconds as a number, a decimal string or a timestamp.")).
			Param(bloblang.NewAnyParam("secrets").Description("One or more `whsec_<base64>` secrets: a string separated by spaces or commas, or an array of strings. Each one adds a signature, which allows rotating secrets.")).
			Example("", `root = content().standard_webhooks_signature("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")`,
				[2]string{`{"test": 2432232314}`, `v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=`}),
		func(args *bloblang.ParsedParams) (bloblang.Method, error) {
			id, err := args.GetString("id")
			if err != nil {
				return nil, err
			}
			rawTS, err := args.Get("timestamp")
			if err != nil {
				return nil, err
			}
			ts, err := unixSeconds(rawTS)
			if err != nil {
				return nil, fmt.Errorf("standard_webhooks_signature: %w", err)
			}
			rawSecrets, err := args.Get("secrets")
			if err != nil {
				return nil, err
			}
			secrets, err := secretsString(rawSecrets)
			if err != nil {
				return nil, fmt.Errorf("standard_webhooks_signature: %w", err)
			}
			keys, err := ParseStandardWebhooksSecrets(secrets)
			if err != nil {
				return nil, fmt.Errorf("standard_webhooks_signature: %w", err)
			}
			return bloblang.BytesMethod(func(body []byte) (any, error) {
				return StandardWebhooksSignature(id, ts, body, keys)
			}), nil
		})
}

func unixSeconds(v any) (int64, error) {
	switch t := v.(type) {
	case int64:
		return t, nil
	case int:
		return int64(t), nil
	case uint64:
		if t > math.MaxInt64 {
			return 0, errors.New("timestamp out of range")
		}
		return int64(t), nil
	case float64:
		if t != math.Trunc(t) || math.IsInf(t, 0) || math.IsNaN(t) {
			return 0, fmt.Errorf("timestamp %v is not whole Unix seconds", t)
		}
		return int64(t), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("timestamp %q is not Unix seconds", t)
		}
		return n, nil
	case []byte:
		return unixSeconds(string(t))
	case time.Time:
		return t.Unix(), nil
	}
	return 0, fmt.Errorf("timestamp of type %T is not Unix seconds", v)
}

func secretsString(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case []byte:
		return string(t), nil
	case []any:
		parts := make([]string, 0, len(t))
		for i, e := range t {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("secret #%d is a %T, not a string", i+1, e)
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " "), nil
	case nil:
		return "", errors.New("no Standard Webhooks secret given (null)")
	}
	return "", fmt.Errorf("secrets of type %T: want a string or an array of strings", v)
}
