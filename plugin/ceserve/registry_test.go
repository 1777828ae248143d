package ceserve

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wooevents/wooevents/tests/wcsim"
)

func TestParseInstancesKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	for _, enc := range []string{
		hex.EncodeToString(key),
		base64.StdEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
		" " + base64.StdEncoding.EncodeToString(key) + "\n",
	} {
		got, err := ParseInstancesKey(enc)
		require.NoError(t, err, enc)
		assert.Equal(t, key, got)
	}
	got, err := ParseInstancesKey(base64.StdEncoding.EncodeToString(key[:16]))
	require.NoError(t, err)
	assert.Len(t, got, 16)
	for _, bad := range []string{"", "short", base64.StdEncoding.EncodeToString(key[:20]), "a passphrase of words"} {
		_, err := ParseInstancesKey(bad)
		assert.ErrorContains(t, err, "16, 24 or 32", bad)
	}
}

// With WOOEVENTS_INSTANCES_KEY the registry holds no secret in clear; it
// opens only with that key; instances come back with it.
func TestRecordsSealed(t *testing.T) {
	sim := startSim(t)
	cb := newCallback(t, fixtureSigKey)
	dir := t.TempDir()
	key := bytes.Repeat([]byte{7}, 32)
	ts := newTestServer(t, dir, func(o *Options) { o.InstancesKey = key })
	in := ts.create(t, pollingBody(t, sim, cb.URL()))
	hook := ts.create(t, webhookBody(t, sim, cb.URL()))
	require.NoError(t, ts.Close(t.Context()))

	raw, err := os.ReadFile(filepath.Join(dir, registryFile))
	require.NoError(t, err)
	for _, secret := range []string{wcsim.DefaultReadOnlyConsumerSecret, wcsim.DefaultConsumerSecret, wcsim.DefaultConsumerKey,
		fixtureSigKey, in.Token, hook.Token, "my-woocommerce-instance"} {
		assert.False(t, bytes.Contains(raw, []byte(secret)), "%q is in the registry file in clear", secret)
	}

	for name, k := range map[string][]byte{"no key": nil, "another key": bytes.Repeat([]byte{8}, 32)} {
		t.Run(name, func(t *testing.T) {
			srv, err := New(Options{Address: "127.0.0.1:0", DataDir: dir, UserSecret: testUser, OrganizationSecret: testOrg, InstancesKey: k})
			require.NoError(t, err)
			err = srv.Start()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "WOOEVENTS_INSTANCES_KEY")
			require.NoError(t, srv.Close(t.Context()))
		})
	}

	ts2 := newTestServer(t, dir, func(o *Options) { o.InstancesKey = key })
	got := ts2.instance(t, in.ID)
	assert.Equal(t, in.Token, got.Token)
	assert.Equal(t, "my-woocommerce-instance", got.Name)
}

// Without a key the records are JSON; setting a key later seals them.
func TestRecordsSealedWhenKeyIsSet(t *testing.T) {
	dir := t.TempDir()
	reg, err := openRegistry(filepath.Join(dir, registryFile), nil)
	require.NoError(t, err)
	id, err := reg.nextID()
	require.NoError(t, err)
	rec := &Record{ID: id, Token: "tok-123", Body: []byte(`{"configuration":{"oauth.api.secret":"cs_clear"}}`)}
	require.NoError(t, reg.put(rec))
	require.NoError(t, reg.close())

	reg, err = openRegistry(filepath.Join(dir, registryFile), bytes.Repeat([]byte{1}, 16))
	require.NoError(t, err)
	recs, err := reg.load()
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "tok-123", recs[0].Token)
	var sealed []byte
	require.NoError(t, reg.store.ForEach(func(_ string, v []byte) error { sealed = v; return nil }))
	assert.Equal(t, byte(sealedPrefix), sealed[0])
	assert.False(t, strings.Contains(string(sealed), "cs_clear"))
	id2, err := reg.nextID()
	require.NoError(t, err)
	assert.Greater(t, id2, id, "ids are never reused")
	require.NoError(t, reg.close())
}

func TestParseAuthorization(t *testing.T) {
	for h, want := range map[string]*authHeader{
		"User u, Organization o":            {user: "u", org: "o", hasUser: true, hasOrg: true},
		"Organization o,User u":             {user: "u", org: "o", hasUser: true, hasOrg: true},
		"user u, organization o, element e": {user: "u", org: "o", element: "e", hasUser: true, hasOrg: true, hasElement: true},
		"Element tok":                       {element: "tok", hasElement: true},
		"":                                  nil,
		"User":                              nil,
		"User u, Organization":              nil,
		"User u, User v":                    nil,
		"Basic dTpv":                        nil,
		"User u,, Organization o":           nil,
	} {
		got, ok := parseAuthorization(h)
		if want == nil {
			assert.False(t, ok, "%q", h)
			continue
		}
		require.True(t, ok, "%q", h)
		assert.Equal(t, *want, got, "%q", h)
	}
	c := credentials{user: digestOf("u"), org: digestOf("o")}
	a, _ := parseAuthorization("User u, Organization o")
	assert.True(t, c.accountOK(a))
	a, _ = parseAuthorization("User u, Organization x")
	assert.False(t, c.accountOK(a))
	a, _ = parseAuthorization("Element u")
	assert.False(t, c.accountOK(a))
}
