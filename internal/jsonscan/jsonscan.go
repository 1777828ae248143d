// Package jsonscan validates JSON in one pass without building a document
// and picks values on the way: the elements of a REST list answer and the
// top-level fields of each (SplitArrayFields, for the REST client), or the
// top-level fields of one object (ObjectFields, for a webhook body). It
// accepts exactly what encoding/json.Valid and gjson.Valid accept, which the
// differential fuzz tests hold it to. The scans are iterative: nesting depth
// cannot exhaust the stack.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
)

// SplitArray validates raw as JSON in one pass and, when it is an
// array, appends its elements to items (each aliasing raw: not copied).
// valid is false for anything gjson.ValidBytes rejects; isArray tells a
// valid array from another valid value.
func SplitArray(raw []byte, items []json.RawMessage) (_ []json.RawMessage, isArray, valid bool) {
	items, _, isArray, valid = SplitArrayFields(raw, items, nil)
	return items, isArray, valid
}

// SplitArrayFields is SplitArray that also picks, in the same
// pass, the values of the top-level keys named in keys from every element:
// fields[i][k] is the raw value of keys[k] in element i (nil when absent;
// the first wins when a key repeats, as with gjson). fields[i] is nil for
// an element that is not an object or has a key with an escape (it must
// be read another way). Empty keys match nothing. Without keys, fields is
// nil.
func SplitArrayFields(raw []byte, items []json.RawMessage, keys []string) (_ []json.RawMessage, fields [][]json.RawMessage, isArray, valid bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '[' {
		// Not an array: is it valid JSON?
		return items, nil, false, i < len(raw) && end(raw, skipValue(raw, i))
	}
	var flat []json.RawMessage // backing store of fields, len(keys) per element
	if i = skipSpace(raw, i+1); i < len(raw) && raw[i] == ']' {
		return items, fields, true, end(raw, i+1)
	}
	for {
		start := i
		if len(keys) > 0 && i < len(raw) && raw[i] == '{' {
			if len(flat) < len(keys) {
				flat = make([]json.RawMessage, len(keys)*max(cap(items)-len(items), 16))
			}
			cur := flat[:len(keys):len(keys)]
			var escaped bool
			if i, escaped = objectMembers(raw, i, keys, cur); i < 0 {
				return items, fields, false, false
			}
			if escaped {
				clear(cur) // left to the caller; the backing store is reused
				fields = append(fields, nil)
			} else {
				flat = flat[len(keys):]
				fields = append(fields, cur)
			}
		} else {
			if i = skipValue(raw, i); i < 0 {
				return items, fields, false, false
			}
			if len(keys) > 0 {
				fields = append(fields, nil)
			}
		}
		items = append(items, json.RawMessage(raw[start:i:i]))
		if i = skipSpace(raw, i); i >= len(raw) {
			return items, fields, false, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case ']':
			return items, fields, true, end(raw, i+1)
		default:
			return items, fields, false, false
		}
	}
}

// end reports whether a value that ended at i (-1: an invalid one) is all
// that raw holds, white space aside.
func end(raw []byte, i int) bool { return i >= 0 && skipSpace(raw, i) == len(raw) }

// objectKey reads `"key" :` at i and returns where the value starts and
// where the key string ends (after its quote); val is -1 when it is not
// valid.
func objectKey(b []byte, i int) (val, keyEnd int) {
	if i >= len(b) || b[i] != '"' {
		return -1, -1
	}
	if i = scanString(b, i); i < 0 {
		return -1, -1
	}
	keyEnd = i
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1, -1
	}
	return skipSpace(b, i+1), keyEnd
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanString validates the string whose quote is at i and returns the
// index after it, or -1: no control characters, valid escapes. Eight bytes
// at a time: the first quote, backslash or control byte of a word is found
// from the lowest flagged bit (the flags of higher bytes may be spurious,
// the borrow only runs upwards, the lowest one is exact).
func scanString(b []byte, i int) int {
	i++
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ ('"' * lsb)
			s := x ^ ('\\' * lsb)
			special := (((q - lsb) &^ q) | ((s - lsb) &^ s) | ((x - 0x20*lsb) &^ x)) & msb
			if special != 0 {
				i += bits.TrailingZeros64(special) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		default:
			i++
		}
	}
}

func literal(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func scanNumber(b []byte, i int) int {
	digits := func(i int) (int, bool) {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i, i > s
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return -1
	}
	if b[i] == '0' {
		i++
	} else {
		var ok bool
		if i, ok = digits(i); !ok {
			return -1
		}
	}
	if i < len(b) && b[i] == '.' {
		var ok bool
		if i, ok = digits(i + 1); !ok {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		var ok bool
		if i, ok = digits(i); !ok {
			return -1
		}
	}
	return i
}

// ObjectResult is what ObjectFields found.
type ObjectResult int

// ObjectFields results.
const (
	Object     ObjectResult = iota // a valid object: vals are filled
	Invalid                        // not valid JSON
	NotObject                      // valid JSON, not an object
	EscapedKey                     // a valid object with a top-level key written with escapes: vals are not filled
)

// ObjectFields validates raw, which must be one object (white space around
// it allowed), and sets vals[k] to the raw value of its first top-level
// member named keys[k] (nil when absent; aliasing raw; an empty key matches
// nothing). len(vals) must be len(keys). Keys with escapes are not decoded:
// EscapedKey says to read the fields another way (WooCommerce never sends
// them).
func ObjectFields(raw []byte, keys []string, vals []json.RawMessage) ObjectResult {
	clear(vals)
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		if i < len(raw) && end(raw, skipValue(raw, i)) {
			return NotObject
		}
		return Invalid
	}
	i, escaped := objectMembers(raw, i, keys, vals)
	switch {
	case !end(raw, i):
		clear(vals)
		return Invalid
	case escaped:
		clear(vals)
		return EscapedKey
	}
	return Object
}

// objectMembers validates the object that opens at raw[i] and returns the
// index after it (-1 when invalid). It sets vals[k] to the raw value of
// the first member named keys[k]; escaped reports a key with escapes, which
// is never compared.
func objectMembers(raw []byte, i int, keys []string, vals []json.RawMessage) (_ int, escaped bool) {
	if i = skipSpace(raw, i+1); i < len(raw) && raw[i] == '}' {
		return i + 1, false
	}
	for {
		ks := i
		var ke int
		if i, ke = objectKey(raw, i); i < 0 {
			return -1, escaped
		}
		key := raw[ks+1 : ke-1]
		field := -1
		if bytes.IndexByte(key, '\\') >= 0 {
			escaped = true
		} else {
			for n, k := range keys {
				if len(k) == len(key) && k != "" && vals[n] == nil && string(key) == k {
					field = n
					break
				}
			}
		}
		start := i
		if i = skipValue(raw, i); i < 0 {
			return -1, escaped
		}
		if field >= 0 {
			vals[field] = json.RawMessage(raw[start:i:i])
		}
		if i = skipSpace(raw, i); i >= len(raw) {
			return -1, escaped
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return i + 1, escaped
		default:
			return -1, escaped
		}
	}
}

// skipValue validates the value that starts at i (objects and arrays with
// an explicit stack) and returns the index after it, or -1.
func skipValue(b []byte, i int) int {
	var base [64]byte
	stack := base[:0] // open containers: '{' or '['
	for {
		// a value starts at i
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; c {
		case '{', '[':
			stack = append(stack, c)
			i = skipSpace(b, i+1)
			if i < len(b) && (b[i] == '}' && c == '{' || b[i] == ']' && c == '[') {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if i, _ = objectKey(b, i); i < 0 {
					return -1
				}
			}
			continue
		case '"':
			i = scanString(b, i)
		case 't':
			i = literal(b, i, "true")
		case 'f':
			i = literal(b, i, "false")
		case 'n':
			i = literal(b, i, "null")
		default:
			i = scanNumber(b, i)
		}
		if i < 0 {
			return -1
		}
		// a value ended at i: close containers, or find the next value
		for {
			if len(stack) == 0 {
				return i
			}
			if i = skipSpace(b, i); i >= len(b) {
				return -1
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				i = skipSpace(b, i+1)
				if top == '{' {
					if i, _ = objectKey(b, i); i < 0 {
						return -1
					}
				}
				break
			}
			if top == '{' && b[i] == '}' || top == '[' && b[i] == ']' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			return -1
		}
	}
}
