package wcpoll

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
)

// cmpID orders object ids: numerically when both are decimal (WooCommerce
// ids are), byte-wise otherwise; decimal ids sort before other strings.
func cmpID(a, b string) int {
	da, db := isDecimal(a), isDecimal(b)
	switch {
	case da && db:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if len(a) != len(b) {
			if len(a) < len(b) {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	case da:
		return -1
	case db:
		return 1
	}
	return strings.Compare(a, b)
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// idKey is the state-store key of an id: zero-padded decimal ids sort in
// numeric order; other ids are kept as they are (after the decimal ones).
func idKey(id string) string {
	if isDecimal(id) {
		t := strings.TrimLeft(id, "0")
		return strings.Repeat("0", 20-len(t)) + t
	}
	return "~" + id
}

// keyID is the inverse of idKey.
func keyID(k string) string {
	if strings.HasPrefix(k, "~") {
		return k[1:]
	}
	t := strings.TrimLeft(k, "0")
	if t == "" {
		return "0"
	}
	return t
}

// recKey is a record's place in `orderby=modified&order=asc` order: the
// modification second, then the id (WooCommerce's tie-breaker).
type recKey struct {
	Sec int64
	ID  string
}

func cmpKey(a, b recKey) int {
	switch {
	case a.Sec < b.Sec:
		return -1
	case a.Sec > b.Sec:
		return 1
	}
	return cmpID(a.ID, b.ID)
}

// streamPos is the durable position of one modified_after walk (the main
// list or the trash list of a resource).
type streamPos struct {
	// Has is false until a position exists (start_from: beginning).
	Has bool `json:"has,omitempty"`
	// Sec/ID is the last record emitted (or passed over): everything at or
	// before it in (modified, id) order has been emitted.
	Sec int64  `json:"sec"`
	ID  string `json:"id,omitempty"`
	// Bound is the modified_after bound (Unix seconds) that N refers to;
	// nil means no bound (from the beginning, or the store ignores it).
	Bound *int64 `json:"bound,omitempty"`
	// N counts the records of the bounded result set at or before the
	// position, so that the next request starts at offset N-1 (verified).
	N int `json:"n,omitempty"`
	// NoFilter is set once the store was found ignoring modified_after:
	// the walk then filters client-side.
	NoFilter bool `json:"no_filter,omitempty"`
	// Floor is the position at which the current walk began; records
	// created after it have never been emitted and are classified created.
	FloorHas bool   `json:"floor_has,omitempty"`
	FloorSec int64  `json:"floor_sec,omitempty"`
	FloorID  string `json:"floor_id,omitempty"`
}

func (p *streamPos) key() recKey   { return recKey{p.Sec, p.ID} }
func (p *streamPos) floor() recKey { return recKey{p.FloorSec, p.FloorID} }

// after reports whether k lies after the position.
func (p *streamPos) after(k recKey) bool { return !p.Has || cmpKey(k, p.key()) > 0 }

// createdAfterFloor reports whether a record created at second created with
// id was created after the floor, i.e. has never been emitted before.
func (p *streamPos) createdAfterFloor(created int64, id string) bool {
	return !p.FloorHas || cmpKey(recKey{created, id}, p.floor()) > 0
}

func (p *streamPos) clone() streamPos {
	c := *p
	if p.Bound != nil {
		b := *p.Bound
		c.Bound = &b
	}
	return c
}

// resourceState is the durable position of one configured resource.
type resourceState struct {
	Main  streamPos `json:"main"`
	Trash streamPos `json:"trash"`
	// Scan strategy: the highest id seen, whether the first full scan (the
	// baseline) is done, and when the last full scan ended (Unix seconds).
	MaxID    string `json:"max_id,omitempty"`
	Baseline bool   `json:"baseline,omitempty"`
	LastScan int64  `json:"last_scan,omitempty"`
	// LastReconcile is when the last hard-delete reconciliation ended.
	LastReconcile int64 `json:"last_reconcile,omitempty"`
	// Started is set once start_from has been applied.
	Started bool `json:"started,omitempty"`
}

func (r *resourceState) clone() *resourceState {
	c := *r
	c.Main = r.Main.clone()
	c.Trash = r.Trash.clone()
	return &c
}

// checkpointVersion is bumped on incompatible changes of the stored JSON.
const checkpointVersion = 1

// checkpointDoc is what is stored under checkpoint_key.
type checkpointDoc struct {
	Version   int                       `json:"version"`
	Store     string                    `json:"store"`
	Resources map[string]*resourceState `json:"resources"`
}

func (c *checkpointDoc) clone() *checkpointDoc {
	out := &checkpointDoc{Version: c.Version, Store: c.Store, Resources: make(map[string]*resourceState, len(c.Resources))}
	for k, v := range maps.All(c.Resources) {
		out.Resources[k] = v.clone()
	}
	return out
}

func (c *checkpointDoc) marshal() []byte {
	b, _ := json.Marshal(c) // plain structs: cannot fail
	return b
}

func parseCheckpoint(b []byte, store string) (*checkpointDoc, error) {
	var c checkpointDoc
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("stored checkpoint is not valid JSON: %w", err)
	}
	if c.Version != checkpointVersion {
		return nil, fmt.Errorf("stored checkpoint has version %d, this build reads version %d", c.Version, checkpointVersion)
	}
	if c.Store != store {
		return nil, fmt.Errorf("stored checkpoint belongs to store %q, not %q: use another checkpoint_key", c.Store, store)
	}
	if c.Resources == nil {
		c.Resources = map[string]*resourceState{}
	}
	return &c, nil
}
