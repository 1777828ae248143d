package oauth1

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodeIsRawurlencode(t *testing.T) {
	for in, want := range map[string]string{
		"abcXYZ019-._~": "abcXYZ019-._~",
		"a b":           "a%20b",
		"a+b":           "a%2Bb",
		"id,name":       "id%2Cname",
		"*":             "%2A",
		"é":             "%C3%A9",
		"/=&%[]":        "%2F%3D%26%25%5B%5D",
	} {
		assert.Equal(t, want, Encode(in), in)
	}
}

// OAuth Core 1.0 Appendix A.5 (the "photos" example, also in RFC 5849 1.2
// with a different nonce): base string and HMAC-SHA1 signature as printed in
// the specification; the signature was re-checked with
// `printf %s "$BASE" | openssl dgst -sha1 -hmac 'kd94hf93k423kf44&pfkkdhi9sl3r4s00' -binary | base64`.
func TestSpecExampleBaseStringAndSignature(t *testing.T) {
	q := url.Values{
		"file":                   {"vacation.jpg"},
		"size":                   {"original"},
		"oauth_consumer_key":     {"dpf43f3p2l4k3l03"},
		"oauth_token":            {"nnch734d00sl2jdk"},
		"oauth_signature_method": {"HMAC-SHA1"},
		"oauth_timestamp":        {"1191242096"},
		"oauth_nonce":            {"kllo9940pd9333jh"},
		"oauth_version":          {"1.0"},
	}
	base := BaseString("get", "http://photos.example.net/photos", q)
	assert.Equal(t, "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal", base)

	sig, err := Signature(HMACSHA1, "kd94hf93k423kf44&pfkkdhi9sl3r4s00", base)
	require.NoError(t, err)
	assert.Equal(t, "tR3+Ty81lMeYAr/Fid0kMTYa/WM=", sig)
}

// A hand-worked WooCommerce request: a comma list in _fields, a space and a
// tilde in a value, an array parameter, a key starting with "_" (sorted
// byte-wise before lower-case letters). The expected base string was written
// out by hand following check_oauth_signature / join_with_equals_sign, and the
// signatures computed with openssl:
//
//	printf %s "$BASE" | openssl dgst -sha256 -hmac 'cs_test&' -binary | base64
const wooBase = "GET&http%3A%2F%2F127.0.0.1%3A8480%2Fwp-json%2Fwc%2Fv3%2Forders&" +
	"_fields%3Did%252Cdate_modified_gmt%26oauth_consumer_key%3Dck_test%26" +
	"oauth_nonce%3Dabcdefghijklmnopqrstuvwxyz012345%26oauth_signature_method%3DHMAC-SHA256%26" +
	"oauth_timestamp%3D1795824090%26per_page%3D2%26search%3Da%2520b~c%26status%255B0%255D%3Dany"

func wooQuery() url.Values {
	return url.Values{
		"per_page": {"2"},
		"_fields":  {"id,date_modified_gmt"},
		"search":   {"a b~c"},
		"status[]": {"any"},
	}
}

func TestWooCommerceKnownAnswer(t *testing.T) {
	q := wooQuery()
	q.Set(ParamConsumerKey, "ck_test")
	q.Set(ParamNonce, "abcdefghijklmnopqrstuvwxyz012345")
	q.Set(ParamSignatureMethod, HMACSHA256)
	q.Set(ParamTimestamp, "1795824090")
	q.Set(ParamSignature, "must-be-ignored")
	base := BaseString("GET", "http://127.0.0.1:8480/wp-json/wc/v3/orders", q)
	assert.Equal(t, wooBase, base)

	sig, err := Signature(HMACSHA256, Key("cs_test"), base)
	require.NoError(t, err)
	assert.Equal(t, "LymPn+eQ4YOvD5OmamAR6eMyvij2dtqqJgz/DzBuJHQ=", sig)

	// The same through AuthorizedQuery, which also places the signature
	// percent-encoded in the query.
	raw, err := AuthorizedQuery("GET", "http://127.0.0.1:8480/wp-json/wc/v3/orders", wooQuery(), Params{
		ConsumerKey: "ck_test", ConsumerSecret: "cs_test", Timestamp: 1795824090,
		Nonce: "abcdefghijklmnopqrstuvwxyz012345",
	})
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(raw, "&oauth_signature=LymPn%2BeQ4YOvD5OmamAR6eMyvij2dtqqJgz%2FDzBuJHQ%3D"), raw)
	assert.Contains(t, raw, "search=a%20b~c")
	assert.Contains(t, raw, "status%5B%5D=any")
	assert.Contains(t, raw, "_fields=id%2Cdate_modified_gmt")
	parsed, err := url.ParseQuery(raw)
	require.NoError(t, err)
	assert.Equal(t, "LymPn+eQ4YOvD5OmamAR6eMyvij2dtqqJgz/DzBuJHQ=", parsed.Get(ParamSignature))
	assert.Equal(t, "HMAC-SHA256", parsed.Get(ParamSignatureMethod))
	assert.Equal(t, "1795824090", parsed.Get(ParamTimestamp))
}

func TestWooCommerceKnownAnswerSHA1(t *testing.T) {
	raw, err := AuthorizedQuery("GET", "http://127.0.0.1:8480/wp-json/wc/v3/orders", wooQuery(), Params{
		ConsumerKey: "ck_test", ConsumerSecret: "cs_test", SignatureMethod: HMACSHA1,
		Timestamp: 1795824090, Nonce: "abcdefghijklmnopqrstuvwxyz012345",
	})
	require.NoError(t, err)
	parsed, err := url.ParseQuery(raw)
	require.NoError(t, err)
	assert.Equal(t, "K/4CoNOalID4WgRTVxmCyl2Ig+k=", parsed.Get(ParamSignature))
	assert.Equal(t, HMACSHA1, parsed.Get(ParamSignatureMethod))
}

func TestArrayAndRepeatedParamsFollowPHP(t *testing.T) {
	q := url.Values{
		"include[]":  {"3", "1", "2"},
		"meta[key]":  {"x"},
		"status":     {"first", "last"},
		"statusfoo":  {"z"},
		"status_all": {"y"},
	}
	// PHP: include => [0=>3,1=>1,2=>2], meta => [key=>x], status => "last".
	// Sorted by the bare keys: include, meta, status, status_all, statusfoo.
	want := "include%255B0%255D%3D3%26include%255B1%255D%3D1%26include%255B2%255D%3D2%26" +
		"meta%255Bkey%255D%3Dx%26status%3Dlast%26status_all%3Dy%26statusfoo%3Dz"
	assert.Equal(t, want, ParamString(q))

	raw, err := AuthorizedQuery("GET", "http://x.test/wp-json/wc/v3/orders", q, Params{
		ConsumerKey: "ck", ConsumerSecret: "cs", Timestamp: 1, Nonce: "n",
	})
	require.NoError(t, err)
	parsed, err := url.ParseQuery(raw)
	require.NoError(t, err)
	assert.Equal(t, []string{"last"}, parsed["status"], "a repeated plain key is sent once, as PHP would keep it")
	assert.Equal(t, []string{"3", "1", "2"}, parsed["include[]"], "array values keep their order")
}

func TestAuthorizedQueryReplacesCallerOAuthParams(t *testing.T) {
	q := url.Values{"oauth_nonce": {"old"}, "oauth_signature": {"old"}, "page": {"2"}}
	raw, err := AuthorizedQuery("GET", "http://x.test/p", q, Params{ConsumerKey: "ck", ConsumerSecret: "cs", Timestamp: 5, Nonce: "fresh"})
	require.NoError(t, err)
	parsed, err := url.ParseQuery(raw)
	require.NoError(t, err)
	assert.Equal(t, []string{"fresh"}, parsed["oauth_nonce"])
	assert.Len(t, parsed["oauth_signature"], 1)
	assert.NotEqual(t, "old", parsed.Get("oauth_signature"))
	assert.Equal(t, "2", parsed.Get("page"))
	assert.Equal(t, []string{"2"}, q["page"], "caller's values are not modified")
	assert.Equal(t, []string{"old"}, q["oauth_nonce"], "caller's values are not modified")
}

func TestAuthorizedQueryErrors(t *testing.T) {
	_, err := AuthorizedQuery("GET", "http://x.test/p", nil, Params{ConsumerKey: "ck", Nonce: "n"})
	assert.Error(t, err)
	_, err = AuthorizedQuery("GET", "http://x.test/p", nil, Params{ConsumerKey: "ck", ConsumerSecret: "cs"})
	assert.Error(t, err)
	_, err = AuthorizedQuery("GET", "http://x.test/p", nil, Params{ConsumerKey: "ck", ConsumerSecret: "cs", Nonce: "n", SignatureMethod: "PLAINTEXT"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "PLAINTEXT")
	assert.NotContains(t, err.Error(), "cs")
}

func TestBaseURLDropsQueryAndFragment(t *testing.T) {
	u, err := url.Parse("HTTP://shop.test:8080/sub/wp-json/wc/v3/orders?x=1#frag")
	require.NoError(t, err)
	assert.Equal(t, "http://shop.test:8080/sub/wp-json/wc/v3/orders", BaseURL(u))
}

func TestNewNonce(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		n := NewNonce()
		require.Len(t, n, 32)
		require.False(t, seen[n])
		seen[n] = true
	}
}
