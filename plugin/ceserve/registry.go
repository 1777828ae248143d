package ceserve

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wooevents/wooevents/plugin/boltcache"
)

// Record is one instance as the registry keeps it. Body is the accepted
// /instances body with its secrets; Token and WebhookSecret are the
// credentials the server generated.
type Record struct {
	ID            int64           `json:"id"`
	Token         string          `json:"token"`
	Body          json.RawMessage `json:"body"`
	WebhookSecret string          `json:"webhook_secret,omitempty"`
	Created       time.Time       `json:"created"`
	Updated       time.Time       `json:"updated"`
}

// registryBucket holds the records, keyed by fixed-width id.
const registryBucket = "instances"

// sealedPrefix starts a sealed record: 1 version byte, then the 12-byte
// GCM nonce, then the ciphertext. Clear records are JSON objects ('{').
const sealedPrefix = 0x01

// registry is the instances' durable store: one bbolt file (the project's
// boltcache Store) under the data directory. With a key, every record is
// sealed with AES-GCM, the record id being the additional data, so a sealed
// value copied under another id does not open.
type registry struct {
	store *boltcache.Store
	aead  cipher.AEAD // nil: records are stored in clear
}

// ParseInstancesKey reads WOOEVENTS_INSTANCES_KEY: 16, 24 or 32 bytes
// (AES-128/192/256) written in hex or base64 (standard or URL alphabet,
// padded or not), e.g. the output of `openssl rand -base64 32`.
func ParseInstancesKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	decoders := []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString,
		base64.RawURLEncoding.DecodeString,
	}
	for _, dec := range decoders {
		if b, err := dec(s); err == nil {
			switch len(b) {
			case 16, 24, 32:
				return b, nil
			}
		}
	}
	return nil, errors.New("must be 16, 24 or 32 random bytes written in hex or base64 (for example the output of `openssl rand -base64 32`)")
}

func openRegistry(path string, key []byte) (*registry, error) {
	r := &registry{}
	if key != nil {
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("instances key: %w", err)
		}
		if r.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("instances key: %w", err)
		}
	}
	st, err := boltcache.Open(path, registryBucket, boltcache.Options{OpenTimeout: 2 * time.Second, SweepInterval: -1})
	if err != nil {
		return nil, err
	}
	r.store = st
	return r, nil
}

func (r *registry) close() error { return r.store.Close() }

func recordKey(id int64) string { return fmt.Sprintf("%020d", id) }

// nextID allocates an instance id (never reused, also after a delete).
func (r *registry) nextID() (int64, error) {
	n, err := r.store.NextSequence()
	return int64(n), err
}

func (r *registry) put(rec *Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if r.aead != nil {
		b = r.seal(rec.ID, b)
	}
	return r.store.Set(recordKey(rec.ID), b, nil)
}

func (r *registry) delete(id int64) error {
	err := r.store.Delete(recordKey(id))
	if errors.Is(err, boltcache.ErrNotFound) {
		return nil
	}
	return err
}

func aad(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

func (r *registry) seal(id int64, plain []byte) []byte {
	nonce := make([]byte, r.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	out := append([]byte{sealedPrefix}, nonce...)
	return r.aead.Seal(out, nonce, plain, aad(id))
}

// errSealed is a sealed record read without the key it was written with.
var errSealed = errors.New("the instance records are encrypted: set WOOEVENTS_INSTANCES_KEY to the key they were written with")

func (r *registry) open(id int64, v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != sealedPrefix {
		return v, nil
	}
	if r.aead == nil {
		return nil, errSealed
	}
	ns := r.aead.NonceSize()
	if len(v) < 1+ns {
		return nil, fmt.Errorf("instance %d: sealed record is truncated", id)
	}
	plain, err := r.aead.Open(nil, v[1:1+ns], v[1+ns:], aad(id))
	if err != nil {
		return nil, fmt.Errorf("instance %d: WOOEVENTS_INSTANCES_KEY is not the key this record was written with", id)
	}
	return plain, nil
}

// load reads every record, in id order. With a key, records written in
// clear (before the key was set) are sealed on the way.
func (r *registry) load() ([]*Record, error) {
	var out []*Record
	var clear []*Record
	err := r.store.ForEach(func(k string, v []byte) error {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return fmt.Errorf("registry key %q is not an instance id", k)
		}
		plain, err := r.open(id, v)
		if err != nil {
			return err
		}
		rec := &Record{}
		if err := json.Unmarshal(plain, rec); err != nil {
			return fmt.Errorf("instance %d: record does not decode: %w", id, err)
		}
		if rec.ID != id {
			return fmt.Errorf("instance %d: record holds id %d", id, rec.ID)
		}
		out = append(out, rec)
		if r.aead != nil && v[0] != sealedPrefix {
			clear = append(clear, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, rec := range clear {
		if err := r.put(rec); err != nil {
			return nil, fmt.Errorf("instance %d: sealing the record: %w", rec.ID, err)
		}
	}
	return out, nil
}
