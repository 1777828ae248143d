package wcclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Error is a WooCommerce/WordPress REST error: a non-2xx answer whose body is
// JSON, usually {"code","message","data":{"status"}}. Use errors.As.
type Error struct {
	Status      int    // HTTP status
	Code        string // e.g. woocommerce_rest_cannot_view ("" if the JSON had none)
	Message     string
	URL         string // request URL with credentials and OAuth parameters redacted
	ContentType string
	// Data is the raw "data" member (params/details of validation errors).
	Data json.RawMessage
	// Hint explains likely causes (set on 401).
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "woocommerce: %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	fmt.Fprintf(&b, " (%s)", e.URL)
	if e.Hint != "" {
		fmt.Fprintf(&b, "; %s", e.Hint)
	}
	return b.String()
}

// BodyError is an answer whose body is not the JSON expected: an HTML page
// (WAF, maintenance mode, login redirect), plain text, or JSON cut short —
// on an error status or on a 2xx. Use errors.As.
type BodyError struct {
	Status      int
	URL         string // redacted
	ContentType string
	Snippet     string // start of the body, for diagnosis
	Reason      string // what was wrong, e.g. "body is not JSON"
}

func (e *BodyError) Error() string {
	ct := e.ContentType
	if ct == "" {
		ct = "no content type"
	}
	return fmt.Sprintf("woocommerce: %s: %d %s from %s (content type %q); body starts %q",
		e.Reason, e.Status, http.StatusText(e.Status), e.URL, ct, e.Snippet)
}

// StatusCode returns the HTTP status carried by err (an *Error or *BodyError
// anywhere in its chain), or 0.
func StatusCode(err error) int {
	var we *Error
	if errors.As(err, &we) {
		return we.Status
	}
	var be *BodyError
	if errors.As(err, &be) {
		return be.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404 (e.g. a permanently deleted object).
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// hint401 explains the usual causes of a 401 for the auth mode in use.
func hint401(auth AuthMode, storeURL string) string {
	switch auth {
	case AuthOAuth1:
		return "check consumer_key/consumer_secret, that the key exists with read (or read/write for writes) permission, " +
			"that store_url is exactly the WordPress home URL (scheme, www., port — it is part of the OAuth signature), " +
			"and that this machine's clock is within 15 minutes of the store's"
	default:
		h := "check consumer_key/consumer_secret and the key's permission (read, or read/write for writes); " +
			"WooCommerce ignores Basic and query-string keys unless WordPress sees the request as HTTPS — "
		if strings.HasPrefix(strings.ToLower(storeURL), "http://") {
			h += "this store_url is plain http, use auth: oauth1 (or auto); "
		} else {
			h += "if TLS ends at a proxy WordPress does not recognise, use auth: oauth1; "
		}
		if auth == AuthBasic {
			h += "if the host strips the Authorization header, use auth: query"
		} else {
			h = strings.TrimSuffix(h, "; ")
		}
		return h
	}
}

// wpErrorBody is the WordPress REST error shape.
type wpErrorBody struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// snippet returns up to n bytes of body as valid UTF-8 with whitespace folded.
func snippet(body []byte, n int) string {
	if len(body) > n {
		body = body[:n]
		for len(body) > 0 && !utf8.Valid(body) {
			body = body[:len(body)-1]
		}
	}
	return strings.Join(strings.Fields(string(body)), " ")
}
