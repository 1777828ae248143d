package wcsim

import (
	"fmt"
	"strconv"
	"strings"
)

// errClass decides which headers WordPress sent with an error (as captured).
type errClass uint8

const (
	ecController errClass = iota // from the handler or arg validation: Allow + no-cache headers
	ecAuth                       // rest_authentication_errors / permission callback: Vary: Origin only
	ecKeyPerm                    // WC key permission check (rest_pre_dispatch): no-cache headers
	ecNoRoute                    // rest_no_route
)

// apiError is a WordPress REST error response.
type apiError struct {
	status  int
	code    string
	message string
	data    []byte // raw "data" object; nil means {"status":N}
	class   errClass
}

func (e *apiError) Error() string {
	return fmt.Sprintf("wcsim: %d %s: %s", e.status, e.code, e.message)
}

// StatusCode is the HTTP status of the error.
func (e *apiError) StatusCode() int { return e.status }

// Code is the WordPress error code.
func (e *apiError) Code() string { return e.code }

func (e *apiError) body() []byte {
	b := []byte(`{"code":`)
	b = appendStr(b, e.code)
	b = append(b, `,"message":`...)
	b = appendStr(b, e.message)
	b = append(b, `,"data":`...)
	if e.data != nil {
		b = append(b, e.data...)
	} else {
		b = append(b, `{"status":`...)
		b = strconv.AppendInt(b, int64(e.status), 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

func invalidParams(errs []fieldErr) *apiError {
	names := make([]string, len(errs))
	params := []byte{'{'}
	details := []byte{'{'}
	for i, e := range errs {
		names[i] = e.name
		if i > 0 {
			params = append(params, ',')
			details = append(details, ',')
		}
		params = appendStr(params, e.name)
		params = append(params, ':')
		params = appendStr(params, e.msg)
		details = appendStr(details, e.name)
		details = append(details, `:{"code":`...)
		details = appendStr(details, e.code)
		details = append(details, `,"message":`...)
		details = appendStr(details, e.msg)
		details = append(details, `,"data":null}`...)
	}
	params = append(params, '}')
	details = append(details, '}')
	data := []byte(`{"status":400,"params":`)
	data = append(data, params...)
	data = append(data, `,"details":`...)
	data = append(data, details...)
	data = append(data, '}')
	return &apiError{status: 400, code: "rest_invalid_param", message: "Invalid parameter(s): " + strings.Join(names, ", "), data: data}
}

func missingParams(names ...string) *apiError {
	data := []byte(`{"status":400,"params":[`)
	for i, n := range names {
		if i > 0 {
			data = append(data, ',')
		}
		data = appendStr(data, n)
	}
	data = append(data, "]}"...)
	return &apiError{status: 400, code: "rest_missing_callback_param", message: "Missing parameter(s): " + strings.Join(names, ", "), data: data}
}

func notFound(def *resDef) *apiError {
	return &apiError{status: 404, code: def.notFoundCode, message: def.notFoundMsg}
}

func trashNotSupported(def *resDef) *apiError {
	msg := fmt.Sprintf("The %s does not support trashing.", def.postType)
	if def.users {
		msg = "Customers do not support trashing."
	}
	return &apiError{status: 501, code: "woocommerce_rest_trash_not_supported", message: msg}
}

var errNoRoute = &apiError{status: 404, code: "rest_no_route", message: "No route was found matching the URL and request method.", class: ecNoRoute}
