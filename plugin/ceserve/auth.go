package ceserve

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// Environment variables holding the API credentials.
const (
	EnvUserSecret         = "WOOEVENTS_USER_SECRET"
	EnvOrganizationSecret = "WOOEVENTS_ORGANIZATION_SECRET"
	EnvInstancesKey       = "WOOEVENTS_INSTANCES_KEY"
)

// digest is a SHA-256 of a secret: credentials are compared as digests, so
// the comparison takes the same time whatever the lengths.
type digest [sha256.Size]byte

func digestOf(s string) digest { return sha256.Sum256([]byte(s)) }

func (d digest) equal(s string) bool {
	o := digestOf(s)
	return subtle.ConstantTimeCompare(d[:], o[:]) == 1
}

// noToken is compared against when an Element token names an instance that
// does not exist, so that the answer takes as long as for one that does.
var noToken = digestOf("\x00no instance\x00")

// authHeader is a parsed `Authorization: User <secret>, Organization
// <secret>, Element <token>` header (Cloud Elements' format; any subset, in
// any order).
type authHeader struct {
	user, org, element string
	hasUser, hasOrg    bool
	hasElement         bool
}

// parseAuthorization splits the header into its parts. A part repeated or
// with an unknown scheme makes the whole header invalid.
func parseAuthorization(h string) (authHeader, bool) {
	var a authHeader
	if strings.TrimSpace(h) == "" {
		return a, false
	}
	for _, part := range strings.Split(h, ",") {
		scheme, value, ok := strings.Cut(strings.TrimSpace(part), " ")
		value = strings.TrimSpace(value)
		if !ok || value == "" {
			return a, false
		}
		switch strings.ToLower(scheme) {
		case "user":
			if a.hasUser {
				return a, false
			}
			a.user, a.hasUser = value, true
		case "organization":
			if a.hasOrg {
				return a, false
			}
			a.org, a.hasOrg = value, true
		case "element":
			if a.hasElement {
				return a, false
			}
			a.element, a.hasElement = value, true
		default:
			return a, false
		}
	}
	return a, true
}

// credentials are the API's User and Organization secrets.
type credentials struct {
	user, org digest
}

// accountOK reports whether the header carries both account secrets. Both
// are always compared.
func (c credentials) accountOK(a authHeader) bool {
	u := c.user.equal(a.user)
	o := c.org.equal(a.org)
	return a.hasUser && a.hasOrg && u && o
}

// newToken returns a random Element token (256 bits, base64url).
func newToken() string { return randomString(32) }

// newWebhookSecret returns a random secret for the store's webhooks.
func newWebhookSecret() string { return randomString(32) }

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
