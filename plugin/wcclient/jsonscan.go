package wcclient

import (
	"encoding/binary"
	"encoding/json"
)

// splitValidArray validates raw as JSON in one pass and, when it is an
// array, appends its elements to items (each aliasing raw: not copied).
// valid is false for anything gjson.ValidBytes rejects; isArray tells a
// valid array from another valid value. The scan is iterative, so nesting
// depth cannot exhaust the stack.
func splitValidArray(raw []byte, items []json.RawMessage) (_ []json.RawMessage, isArray, valid bool) {
	var stack []byte // open containers: '{' or '['
	i := skipSpace(raw, 0)
	if i < len(raw) && raw[i] == '[' {
		isArray = true
	}
	elemStart := -1
	for {
		// a value starts at i
		if len(stack) == 1 && isArray {
			elemStart = i
		}
		if i >= len(raw) {
			return items, false, false
		}
		switch c := raw[i]; c {
		case '{', '[':
			stack = append(stack, c)
			i = skipSpace(raw, i+1)
			if i < len(raw) && (raw[i] == '}' && c == '{' || raw[i] == ']' && c == '[') {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if i = objectKey(raw, i); i < 0 {
					return items, false, false
				}
			}
			continue
		case '"':
			if i = scanString(raw, i); i < 0 {
				return items, false, false
			}
		case 't':
			if i = literal(raw, i, "true"); i < 0 {
				return items, false, false
			}
		case 'f':
			if i = literal(raw, i, "false"); i < 0 {
				return items, false, false
			}
		case 'n':
			if i = literal(raw, i, "null"); i < 0 {
				return items, false, false
			}
		default:
			if i = scanNumber(raw, i); i < 0 {
				return items, false, false
			}
		}
		// a value ended at i: close containers, or find the next value
		for {
			if len(stack) == 1 && isArray && elemStart >= 0 {
				items = append(items, json.RawMessage(raw[elemStart:i:i]))
				elemStart = -1
			}
			i = skipSpace(raw, i)
			if len(stack) == 0 {
				return items, isArray, i == len(raw)
			}
			if i >= len(raw) {
				return items, false, false
			}
			top := stack[len(stack)-1]
			switch {
			case raw[i] == ',':
				i = skipSpace(raw, i+1)
				if top == '{' {
					if i = objectKey(raw, i); i < 0 {
						return items, false, false
					}
				}
			case top == '{' && raw[i] == '}', top == '[' && raw[i] == ']':
				stack = stack[:len(stack)-1]
				i++
				continue
			default:
				return items, false, false
			}
			break
		}
	}
}

// objectKey reads `"key" :` at i and returns where the value starts, or -1.
func objectKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = scanString(b, i); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
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
// at a time while none of them is a quote, a backslash or a control byte.
func scanString(b []byte, i int) int {
	i++
	for {
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ ('"' * lsb)
			s := x ^ ('\\' * lsb)
			special := ((q - lsb) &^ q) | ((s - lsb) &^ s) | ((x - 0x20*lsb) &^ x)
			if special&msb != 0 {
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
