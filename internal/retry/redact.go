package retry

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
)

// Redacted replaces a hidden query value.
const Redacted = "REDACTED"

// shownParams are the query parameters whose values RedactURL keeps: the
// WooCommerce list and filter parameters that say what was asked. Every
// other parameter's value is hidden, so a token under any name (a callback
// URL's ?token=, ?sig=, consumer_key, oauth_signature, ...) never reaches a
// log.
var shownParams = map[string]bool{
	"page": true, "per_page": true, "offset": true, "order": true, "orderby": true,
	"status": true, "type": true, "role": true, "context": true, "force": true,
	"modified_after": true, "modified_before": true, "after": true, "before": true,
	"dates_are_gmt": true, "include": true, "exclude": true, "parent": true,
	"_fields": true, "search": true, "sku": true, "category": true, "tag": true,
	"product": true, "customer": true,
	"oauth_signature_method": true, "oauth_timestamp": true, "oauth_version": true,
}

// RedactURL returns raw fit for logs and errors: user info removed, the
// fragment removed, and the value of every query parameter replaced by
// REDACTED except the WooCommerce list parameters that carry no secret
// (page, per_page, status, orderby, modified_after, _fields, ...). Hidden
// for certain: consumer_key, consumer_secret, oauth_consumer_key,
// oauth_signature, oauth_nonce, oauth_token and any name a token may hide
// under. Parameters are listed sorted by name. Unparseable input becomes
// "[unparseable URL]".
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable URL]"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	u.ForceQuery = false
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery)
	}
	return u.String()
}

func redactQuery(raw string) string {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "[unparseable query]"
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(q)) {
		show := shownParams[strings.ToLower(k)]
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			if show {
				b.WriteString(url.QueryEscape(v))
			} else {
				b.WriteString(Redacted)
			}
		}
	}
	return b.String()
}

// RedactError returns err with the URL of any *url.Error in its chain
// redacted by RedactURL (net/http puts the full request URL, credentials
// included, into the error text). Other errors are returned unchanged; nil
// stays nil. errors.Is/As still reach the cause (timeouts, dial errors) but
// no longer the *url.Error itself.
func RedactError(err error) error {
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		return err
	}
	safe := &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: ue.Err}
	if error(ue) == err {
		return safe
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), ue.Error(), safe.Error()), cause: ue.Err}
}

// redactedError is an error whose text had a URL redacted.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }
