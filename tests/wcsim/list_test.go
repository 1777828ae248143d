package wcsim

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPaginationHeaders(t *testing.T) {
	s := startStore(t, Options{TLS: true})
	first, last := s.Seed(Orders, 25)
	require.Equal(t, int64(24), last-first)
	base := s.URL() + "/wp-json/wc/v3/orders"

	r := basicDo(t, s, "GET", "/wp-json/wc/v3/orders", nil)
	require.Equal(t, 200, r.code)
	assert.Len(t, decodeList(t, r.body), 10) // default per_page
	assert.Equal(t, "25", r.header.Get("X-WP-Total"))
	assert.Equal(t, "3", r.header.Get("X-WP-TotalPages"))
	assert.Equal(t, "<"+base+"?status%5B0%5D=any&dp=2&context=view&page=2>; rel=\"next\"", r.header.Get("Link"))

	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?page=2&per_page=10&orderby=id&order=asc", nil)
	assert.Equal(t, "<"+base+"?page=1&per_page=10&orderby=id&order=asc&status%5B0%5D=any&dp=2&context=view>; rel=\"prev\", <"+
		base+"?page=3&per_page=10&orderby=id&order=asc&status%5B0%5D=any&dp=2&context=view>; rel=\"next\"", r.header.Get("Link"))
	ids := idsOf(t, r.body)
	require.Len(t, ids, 10)
	assert.Equal(t, first+10, ids[0])

	r = basicDo(t, s, "GET", "/wp-json/wc/v3/products?page=3&per_page=10", nil)
	assert.Equal(t, "0", r.header.Get("X-WP-Total"))
	assert.Equal(t, "0", r.header.Get("X-WP-TotalPages"))
	assert.Equal(t, "<"+s.URL()+"/wp-json/wc/v3/products?page=0&per_page=10>; rel=\"prev\"", r.header.Get("Link"))
	assert.Equal(t, "[]", string(r.body))

	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?page=3&per_page=10&orderby=id&order=asc", nil)
	assert.NotContains(t, r.header.Get("Link"), `rel="next"`)
	assert.Len(t, decodeList(t, r.body), 5)

	// offset overrides page
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?offset=23&page=1&orderby=id&order=asc", nil)
	assert.Equal(t, []int64{first + 23, first + 24}, idsOf(t, r.body))

	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?per_page=101", nil)
	assert.Equal(t, 400, r.code)
	assert.Equal(t, `{"code":"rest_invalid_param","message":"Invalid parameter(s): per_page","data":{"status":400,"params":{"per_page":"per_page must be between 1 (inclusive) and 100 (inclusive)"},"details":{"per_page":{"code":"rest_out_of_bounds","message":"per_page must be between 1 (inclusive) and 100 (inclusive)","data":null}}}}`, string(r.body))
	assert.Equal(t, "GET, POST", r.header.Get("Allow"))

	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?page=0&order=up&orderby=nope", nil)
	assert.Equal(t, 400, r.code)
	assert.Contains(t, string(r.body), `"message":"Invalid parameter(s): page, order, orderby"`)
	assert.Contains(t, string(r.body), `"orderby":"orderby is not one of date, id, include, title, slug, and modified."`)

	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?status=bogus", nil)
	assert.Contains(t, string(r.body), `"status":"status[0] is not one of any, trash, auto-draft, pending, processing, on-hold, completed, cancelled, refunded, failed, and checkout-draft."`)
}

// Rows of distinct keys come back in key order; rows sharing a key come back
// as a group, in no fixed order (ties_test.go checks that order itself).
func TestOrderingAndTieBreak(t *testing.T) {
	s := startStore(t, Options{TLS: true})
	s.SetNow(t0)
	// five orders modified in the same second, then two later
	f, _, err := s.SeedWith(Orders, 5, SeedOptions{Start: t0, SameSecond: true, Status: "processing"})
	require.NoError(t, err)
	g, _, err := s.SeedWith(Orders, 2, SeedOptions{Start: t0.Add(time.Second), Status: "processing"})
	require.NoError(t, err)
	tied := []int64{f, f + 1, f + 2, f + 3, f + 4}
	r := basicDo(t, s, "GET", "/wp-json/wc/v3/orders?orderby=modified&order=asc", nil)
	ids := idsOf(t, r.body)
	require.Len(t, ids, 7)
	assert.ElementsMatch(t, tied, ids[:5], "the tied second first, as a group")
	assert.Equal(t, []int64{g, g + 1}, ids[5:], "distinct seconds in key order")
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?orderby=modified&order=desc&per_page=3", nil)
	ids = idsOf(t, r.body)
	require.Len(t, ids, 3)
	assert.Equal(t, []int64{g + 1, g}, ids[:2])
	assert.Contains(t, tied, ids[2], "then one of the tied second")
	// an update moves the order to the end of the modified order
	s.Advance(5 * time.Second)
	require.NoError(t, s.Update(Orders, f+1, map[string]any{"customer_note": "x"}))
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?orderby=modified&order=asc&per_page=100", nil)
	ids = idsOf(t, r.body)
	assert.Equal(t, f+1, ids[len(ids)-1])
	assert.ElementsMatch(t, []int64{f, f + 2, f + 3, f + 4}, ids[:4])
	// creation order unchanged: f+1 still among the first second by date
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?orderby=date&order=asc&per_page=5", nil)
	assert.ElementsMatch(t, tied, idsOf(t, r.body))
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?orderby=date&order=desc&per_page=2", nil)
	assert.Equal(t, []int64{g + 1, g}, idsOf(t, r.body))
	// orderby=id is exact, both ways
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?orderby=id&order=asc&per_page=3", nil)
	assert.Equal(t, []int64{f, f + 1, f + 2}, idsOf(t, r.body))
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?orderby=id&order=desc&per_page=3", nil)
	assert.Equal(t, []int64{g + 1, g, f + 4}, idsOf(t, r.body))
	// include keeps the include order with orderby=include
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?include="+itoa(g)+","+itoa(f)+","+itoa(f+2)+"&orderby=include", nil)
	assert.Equal(t, []int64{g, f, f + 2}, idsOf(t, r.body))
	assert.Equal(t, "3", r.header.Get("X-WP-Total"))
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?include[]="+itoa(f)+"&include[]=999999&orderby=id", nil)
	assert.Equal(t, []int64{f}, idsOf(t, r.body))
}

func TestExclusiveBoundsAndStatus(t *testing.T) {
	s := startStore(t, Options{TLS: true})
	mk := func(sec int) int64 {
		s.SetNow(t0.Add(time.Duration(sec) * time.Second))
		id, err := s.Create(Orders, map[string]any{"status": "processing"})
		require.NoError(t, err)
		return id
	}
	a, b, c := mk(-1), mk(0), mk(1)
	T := t0.Format("2006-01-02T15:04:05")
	q := func(extra string) []int64 {
		r := basicDo(t, s, "GET", "/wp-json/wc/v3/orders?dates_are_gmt=true&orderby=id&order=asc&"+extra, nil)
		require.Equal(t, 200, r.code, string(r.body))
		return idsOf(t, r.body)
	}
	assert.Equal(t, []int64{c}, q("modified_after="+T))
	assert.Equal(t, []int64{a}, q("modified_before="+T))
	assert.Equal(t, []int64{c}, q("after="+T))
	assert.Equal(t, []int64{a}, q("before="+T))
	assert.Equal(t, []int64{b}, q("modified_after="+t0.Add(-time.Second).Format("2006-01-02T15:04:05")+"&modified_before="+t0.Add(time.Second).Format("2006-01-02T15:04:05")))
	// fractional seconds are truncated: after T.9 is still after T
	assert.Equal(t, []int64{c}, q("modified_after="+T+".900"))

	// trash: default any excludes it, status=trash lists it and trashing bumps modified
	s.SetNow(t0.Add(time.Minute))
	require.NoError(t, s.Trash(Orders, a))
	assert.Equal(t, []int64{b, c}, q(""))
	assert.Equal(t, []int64{a}, q("status=trash"))
	assert.Equal(t, []int64{a}, q("status=trash&modified_after="+t0.Add(59*time.Second).Format("2006-01-02T15:04:05")))
	assert.Equal(t, []int64{a, b, c}, q("status=any,trash"))
	assert.Equal(t, []int64{a, b}, q("status[]=trash&status[]=processing&before="+t0.Add(time.Second).Format("2006-01-02T15:04:05")+"&after=2000-01-01T00:00:00"))
	r := basicDo(t, s, "GET", "/wp-json/wc/v3/orders?status=trash", nil)
	assert.Equal(t, "1", r.header.Get("X-WP-Total"))
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?modified_after=yesterday", nil)
	assert.Equal(t, `{"code":"rest_invalid_param","message":"Invalid parameter(s): modified_after","data":{"status":400,"params":{"modified_after":"Invalid date."},"details":{"modified_after":{"code":"rest_invalid_date","message":"Invalid date.","data":null}}}}`, string(r.body))
}

// WordPress converts a bound carrying Z or an offset to the site's wall
// clock before comparing, so with dates_are_gmt=true it is shifted.
func TestDatesAreGMTWithSiteOffsets(t *testing.T) {
	for _, off := range []time.Duration{10 * time.Hour, -7 * time.Hour} {
		t.Run(off.String(), func(t *testing.T) {
			s := startStore(t, Options{TLS: true, UTCOffset: off})
			modGMT := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			s.SetNow(modGMT)
			id, err := s.Create(Orders, map[string]any{})
			require.NoError(t, err)
			o := decodeObj(t, basicDo(t, s, "GET", "/wp-json/wc/v3/orders/"+itoa(id), nil).body)
			local := modGMT.Add(off)
			assert.Equal(t, modGMT.Format(wooLayout), o["date_modified_gmt"])
			assert.Equal(t, local.Format(wooLayout), o["date_modified"])
			found := func(q string) bool {
				r := basicDo(t, s, "GET", "/wp-json/wc/v3/orders?"+q, nil)
				require.Equal(t, 200, r.code, string(r.body))
				return len(idsOf(t, r.body)) == 1
			}
			f := func(t time.Time) string { return t.Format(wooLayout) }
			justBefore := modGMT.Add(-time.Second)
			// naive bounds: GMT columns with dates_are_gmt=true, local otherwise
			assert.True(t, found("dates_are_gmt=true&modified_after="+f(justBefore)))
			assert.False(t, found("dates_are_gmt=true&modified_after="+f(modGMT)))
			assert.True(t, found("dates_are_gmt=false&modified_after="+f(justBefore.Add(off))))
			assert.False(t, found("dates_are_gmt=false&modified_after="+f(local)))
			assert.True(t, found("modified_after="+f(justBefore.Add(off)))) // default is false
			// Z bound with dates_are_gmt=false: converted to local, correct
			assert.True(t, found("dates_are_gmt=false&modified_after="+f(justBefore)+"Z"))
			assert.False(t, found("dates_are_gmt=false&modified_after="+f(modGMT)+"Z"))
			// Z bound with dates_are_gmt=true: shifted by the site offset (the bug)
			shifted := found("dates_are_gmt=true&modified_after=" + f(justBefore) + "Z")
			assert.Equal(t, off < 0, shifted)
			assert.True(t, found("dates_are_gmt=true&modified_after="+f(justBefore.Add(-off))+"Z"))
			assert.False(t, found("dates_are_gmt=true&modified_after="+f(modGMT.Add(-off))+"Z"))
			// an explicit +HH:MM offset is converted the same way
			plus := justBefore.In(time.FixedZone("x", 3*3600)).Format("2006-01-02T15:04:05-07:00")
			assert.True(t, found("dates_are_gmt=false&modified_after="+strings.Replace(plus, "+", "%2B", 1)))
		})
	}
}

func TestFieldsTrimming(t *testing.T) {
	s := startStore(t, Options{TLS: true})
	s.Seed(Orders, 2)
	r := basicDo(t, s, "GET", "/wp-json/wc/v3/orders?_fields=date_modified_gmt,id,status", nil)
	for _, o := range decodeList(t, r.body) {
		assert.Len(t, o, 3)
	}
	assert.Equal(t, []string{"id", "status", "date_modified_gmt"}, topKeys(t, firstElem(t, r.body)))
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/orders?_fields=id,billing.email,_links.self", nil)
	assert.Regexp(t, `^\[\{"id":\d+,"billing":\{"email":"buyer\d+@example.test"\},"_links":\{"self":\[\{"href":"[^"]+","targetHints":\{[^}]+\}\}\]\}\}`, string(r.body))
}

func TestCustomersListing(t *testing.T) {
	s := startStore(t, Options{TLS: true})
	s.SetNow(t0)
	zed, _ := s.Create(Customers, map[string]any{"email": "zed@example.test", "username": "zed"})
	amy, _ := s.Create(Customers, map[string]any{"email": "amy@example.test", "username": "amy"})
	sub, err := s.Create(Customers, map[string]any{"email": "sub@example.test", "username": "mia", "role": "subscriber"})
	require.NoError(t, err)
	r := basicDo(t, s, "GET", "/wp-json/wc/v3/customers", nil)
	assert.Equal(t, []int64{amy, zed}, idsOf(t, r.body)) // role=customer, orderby name asc by default
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/customers?role=all&orderby=id&order=desc", nil)
	assert.Equal(t, []int64{sub, amy, zed}, idsOf(t, r.body))
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/customers?modified_after=2099-01-01T00:00:00", nil)
	assert.Equal(t, []int64{amy, zed}, idsOf(t, r.body), "customers ignore date filters")
	r = basicDo(t, s, "GET", "/wp-json/wc/v3/customers?email=ZED@example.test", nil)
	assert.Equal(t, []int64{zed}, idsOf(t, r.body))
	r = basicDo(t, s, "POST", "/wp-json/wc/v3/customers", []byte(`{"first_name":"x"}`))
	assert.Equal(t, `{"code":"rest_missing_callback_param","message":"Missing parameter(s): email","data":{"status":400,"params":["email"]}}`, string(r.body))
	r = basicDo(t, s, "POST", "/wp-json/wc/v3/customers", []byte(`{"email":"amy@example.test"}`))
	assert.Equal(t, 400, r.code)
	assert.Contains(t, string(r.body), "registration-error-email-exists")
	c := decodeObj(t, basicDo(t, s, "GET", "/wp-json/wc/v3/customers/"+itoa(amy), nil).body)
	assert.Equal(t, avatarURL("amy@example.test"), c["avatar_url"])
	// same hash as the captured alice@example.test avatar
	assert.Equal(t, "https://secure.gravatar.com/avatar/69b1145a03334875161ea18c1373b5703aeeff144990a9f847867ff83ed5aaad?s=96&d=mm&r=g", avatarURL("alice@example.test"))
}
