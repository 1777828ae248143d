package wcevent

import "github.com/tidwall/gjson"

// A validating JSON scanner for the top level of one object (RFC 8259, the
// grammar encoding/json.Valid accepts), which notes where the values of the
// keys ExtractFields reads are while it validates. A differential fuzz test
// holds it to encoding/json.Valid and to gjson.Get.

type scanResult int

const (
	scanOK         scanResult = iota
	scanInvalid               // not JSON
	scanNotObject             // the first value is not an object (may or may not be JSON)
	scanEscapedKey            // valid, but a top-level key has escapes: spans are not filled
)

// Kinds of value a span holds.
const (
	kindAbsent = iota
	kindString
	kindEscapedString
	kindLiteral // number, true or false: its raw text is its scalar form
	kindOther   // null, object, array: no scalar form
)

// span is one top-level value: body[start:end], quotes included for strings.
type span struct {
	start, end int
	kind       uint8
}

// scalar is the value as Scalar would give it for the same gjson.Result,
// as a view of body except for strings with escapes.
func (s span) scalar(body []byte) []byte {
	switch s.kind {
	case kindString:
		return body[s.start+1 : s.end-1]
	case kindEscapedString:
		return []byte(gjson.ParseBytes(body[s.start:s.end]).Str)
	case kindLiteral:
		return body[s.start:s.end]
	}
	return nil
}

// strPlain marks the bytes that can appear in a JSON string as they are: not
// a control character, quote or backslash.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanObject validates body, which must hold one object and nothing else
// but white space, and records in vals the first value of each key that
// fieldIndex knows.
func scanObject(b []byte, vals *[4]span) scanResult {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return scanNotObject
	}
	escapedKey := false
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return scanInvalid
			}
			keyStart := i + 1
			end, esc, ok := scanString(b, i)
			if !ok {
				return scanInvalid
			}
			field := -1
			if esc {
				escapedKey = true
			} else {
				field = fieldIndex(b[keyStart : end-1])
			}
			i = skipWS(b, end)
			if i >= len(b) || b[i] != ':' {
				return scanInvalid
			}
			i = skipWS(b, i+1)
			start := i
			var kind uint8
			if i, kind, ok = scanValue(b, i); !ok {
				return scanInvalid
			}
			if field >= 0 && vals[field].kind == kindAbsent {
				vals[field] = span{start: start, end: i, kind: kind}
			}
			i = skipWS(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return scanInvalid
		}
	}
	if skipWS(b, i) != len(b) {
		return scanInvalid
	}
	if escapedKey {
		return scanEscapedKey
	}
	return scanOK
}

// scanValue validates the value at b[i] and returns the index after it.
func scanValue(b []byte, i int) (int, uint8, bool) {
	if i >= len(b) {
		return i, 0, false
	}
	switch b[i] {
	case '"':
		end, esc, ok := scanString(b, i)
		if esc {
			return end, kindEscapedString, ok
		}
		return end, kindString, ok
	case '{', '[':
		end, ok := scanContainer(b, i)
		return end, kindOther, ok
	case 't':
		return literal(b, i, "true", kindLiteral)
	case 'f':
		return literal(b, i, "false", kindLiteral)
	case 'n':
		return literal(b, i, "null", kindOther)
	default:
		end, ok := scanNumber(b, i)
		return end, kindLiteral, ok
	}
}

func literal(b []byte, i int, word string, kind uint8) (int, uint8, bool) {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return i, 0, false
	}
	return i + len(word), kind, true
}

// scanString validates the string whose opening quote is b[i]; it returns
// the index after the closing quote and whether the string has escapes.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	i++
	for {
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, escaped, false
		}
		switch b[i] {
		case '"':
			return i + 1, escaped, true
		case '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, escaped, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, escaped, false
				}
				i += 6
			default:
				return i, escaped, false
			}
		default: // a control character
			return i, escaped, false
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// scanNumber validates the number at b[i]: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

// scanContainer validates the object or array that opens at b[i], nested
// to any depth (an explicit stack, no recursion), and returns the index
// after it.
func scanContainer(b []byte, i int) (int, bool) {
	const (
		first  = iota // just opened: a value (a key in an object) or the close
		member        // after a comma: a value (a key in an object)
		after         // after a value: a comma or the close
	)
	var base [64]byte
	stack := append(base[:0], b[i])
	i++
	state := first
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return i, false
		}
		top := stack[len(stack)-1]
		closer := byte(']')
		if top == '{' {
			closer = '}'
		}
		if state == after || state == first {
			if b[i] == closer {
				i++
				stack = stack[:len(stack)-1]
				if len(stack) == 0 {
					return i, true
				}
				state = after
				continue
			}
			if state == after {
				if b[i] != ',' {
					return i, false
				}
				i++
				state = member
				continue
			}
		}
		if top == '{' {
			if b[i] != '"' {
				return i, false
			}
			end, _, ok := scanString(b, i)
			if !ok {
				return end, false
			}
			i = skipWS(b, end)
			if i >= len(b) || b[i] != ':' {
				return i, false
			}
			if i = skipWS(b, i+1); i >= len(b) {
				return i, false
			}
		}
		if c := b[i]; c == '{' || c == '[' {
			stack = append(stack, c)
			i++
			state = first
			continue
		}
		end, _, ok := scanValue(b, i)
		if !ok {
			return end, false
		}
		i = end
		state = after
	}
}
