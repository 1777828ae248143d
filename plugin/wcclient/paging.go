package wcclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/wooevents/wooevents/internal/jsonscan"
)

// Page is one page of a list route.
type Page struct {
	Items   []json.RawMessage // the page's objects, raw
	Page    int               // 1-based page number requested
	PerPage int
	// Total and TotalPages come from X-WP-Total / X-WP-TotalPages; -1 when
	// the header was missing or unparseable (a proxy may strip them).
	Total      int
	TotalPages int
	Header     http.Header
	URL        string // redacted request URL
	// Fields is set by ListPageFields: Fields[i][k] is the raw value of
	// the k-th requested top-level key of Items[i] (nil when absent).
	// Fields[i] is nil for an item that is not an object or has a key
	// with an escape sequence: read such an item yourself.
	Fields [][]json.RawMessage

	client *Client
	buf    *[]byte // the body, for Release
}

// Release hands the page's body buffer back to the client that read it,
// for a later ListPage to read into: Items, Fields and everything sliced
// from them must not be used afterwards. Optional (without it the buffer
// is garbage collected as usual); a no-op after the first call.
func (p *Page) Release() {
	if p == nil || p.buf == nil {
		return
	}
	p.client.bufs.Put(p.buf)
	p.buf, p.Items, p.Fields = nil, nil, nil
}

// Last reports whether no further page is expected after p: the totals say
// so, or (totals unknown) the page came back short.
func (p *Page) Last() bool {
	if p.TotalPages >= 0 {
		return p.Page >= p.TotalPages || len(p.Items) == 0
	}
	return len(p.Items) < p.PerPage
}

// ErrStopWalk may be returned by a Walk callback to end the walk early
// without an error.
var ErrStopWalk = errors.New("stop walk")

// ListPage fetches one page of a list route (GET). route is
// "/wc/v3/orders", "/wp-json/wc/v3/orders" or "orders" (short for
// /wc/v3/orders). query holds any filters (status, modified_after,
// orderby, _fields, ...); its page/per_page entries are overridden.
// perPage must be 1..MaxPerPage; 0 means MaxPerPage.
func (c *Client) ListPage(ctx context.Context, route string, query url.Values, page, perPage int) (*Page, error) {
	return c.ListPageFields(ctx, route, query, page, perPage, nil)
}

// ListPageFields is ListPage that also reads the values of the top-level
// keys named in keys from every item, in the pass that validates the
// answer (see Page.Fields): cheaper than looking them up afterwards.
func (c *Client) ListPageFields(ctx context.Context, route string, query url.Values, page, perPage int, keys []string) (*Page, error) {
	if perPage == 0 {
		perPage = MaxPerPage
	}
	if perPage < 1 || perPage > MaxPerPage {
		return nil, fmt.Errorf("per_page must be between 1 and %d, got %d", MaxPerPage, perPage)
	}
	if page < 1 {
		return nil, fmt.Errorf("page must be 1 or more, got %d", page)
	}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("page", strconv.Itoa(page))
	q.Set("per_page", strconv.Itoa(perPage))

	// One pass validates the body and finds its elements.
	var items []json.RawMessage
	var fields [][]json.RawMessage
	isArray := false
	valid := func(raw []byte) bool {
		var ok bool
		items, fields, isArray, ok = jsonscan.SplitArrayFields(raw, make([]json.RawMessage, 0, perPage), keys)
		return ok
	}
	buf, _ := c.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	resp, raw, err := c.do(ctx, http.MethodGet, route, q, nil, true, valid, buf)
	if err != nil {
		return nil, err
	}
	p := &Page{client: c, buf: buf, Page: page, PerPage: perPage, Header: resp.Header, URL: resp.URL,
		Total: headerInt(resp.Header, "X-WP-Total"), TotalPages: headerInt(resp.Header, "X-WP-TotalPages")}
	if !isArray {
		return nil, &BodyError{Status: resp.Status, URL: resp.URL, ContentType: resp.ContentType,
			Snippet: snippet(raw, 200), Reason: "list answer is not a JSON array"}
	}
	p.Items = items
	if len(keys) > 0 {
		p.Fields = fields
	}
	return p, nil
}

// Walk fetches pages 1, 2, ... of a list route and hands each to fn as soon
// as it arrives; pages are not kept, so memory does not grow with the store.
// Each page request is built and signed afresh (the Link header is not
// followed: WooCommerce repeats the used OAuth nonce in it). The walk ends
// after the last page (see Page.Last), when fn returns an error (returned,
// except ErrStopWalk which ends it cleanly) or when ctx is done.
//
// Page walking over a changing data set can skip or repeat items; for change
// detection sort ascending on the filtered field and move a watermark.
func (c *Client) Walk(ctx context.Context, route string, query url.Values, perPage int, fn func(*Page) error) error {
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := c.ListPage(ctx, route, query, page, perPage)
		if err != nil {
			return err
		}
		if err := fn(p); err != nil {
			if errors.Is(err, ErrStopWalk) {
				return nil
			}
			return err
		}
		if p.Last() {
			return nil
		}
	}
}

func headerInt(h http.Header, name string) int {
	v := h.Get(name)
	if v == "" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
