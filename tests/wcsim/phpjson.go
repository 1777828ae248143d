package wcsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const hexLower = "0123456789abcdef"

// appendStr appends s as a JSON string the way PHP's json_encode does with
// WordPress' default flags: "/" becomes "\/", every non-ASCII rune becomes a
// lower-case \uXXXX escape (surrogate pairs above the BMP), and <, >, &, '
// stay literal.
func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '/' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		if c < 0x80 {
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '/':
				b = append(b, '\\', '/')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexLower[c>>4], hexLower[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= 0x10000 {
			r -= 0x10000
			b = appendU(b, 0xd800+(r>>10))
			b = appendU(b, 0xdc00+(r&0x3ff))
		} else {
			b = appendU(b, r) // utf8.RuneError for invalid bytes: \ufffd
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexLower[(r>>12)&0xf], hexLower[(r>>8)&0xf], hexLower[(r>>4)&0xf], hexLower[r&0xf])
}

// appendPHPFloat formats a number as PHP's json_encode prints an int or a
// float produced by arithmetic on numeric strings: integral values have no
// fraction ("99"), others use the shortest representation ("24.5").
func appendPHPFloat(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(b, int64(f), 10)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

const wooLayout = "2006-01-02T15:04:05"

// appendDate appends a WooCommerce date: t is unix seconds (UTC); off is the
// site offset added for the site-local variant (0 for _gmt). Zero t is null.
func appendDate(b []byte, t int64, off int64) []byte {
	if t == 0 {
		return append(b, "null"...)
	}
	y, mo, d := time.Unix(t+off, 0).UTC().Date()
	sec := (t + off) % 86400
	if sec < 0 {
		sec += 86400
	}
	hh, mm, ss := sec/3600, sec/60%60, sec%60
	b = append(b, '"',
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+hh/10), byte('0'+hh%10), ':', byte('0'+mm/10), byte('0'+mm%10), ':',
		byte('0'+ss/10), byte('0'+ss%10), '"')
	return b
}

// phpJSON transcodes raw JSON into PHP json_encode bytes, keeping object key
// order. Numbers are kept as written.
func phpJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out []byte
	type frame struct {
		obj   bool
		n     int
		isKey bool
	}
	var stack []frame
	sep := func() {
		if len(stack) == 0 {
			return
		}
		f := &stack[len(stack)-1]
		if f.obj {
			if f.isKey {
				if f.n > 0 {
					out = append(out, ',')
				}
			} else {
				out = append(out, ':')
			}
		} else if f.n > 0 {
			out = append(out, ',')
		}
	}
	after := func() {
		if len(stack) == 0 {
			return
		}
		f := &stack[len(stack)-1]
		if f.obj {
			if f.isKey {
				f.isKey = false
			} else {
				f.isKey = true
				f.n++
			}
		} else {
			f.n++
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				sep()
				out = append(out, byte(v))
				stack = append(stack, frame{obj: v == '{', isKey: v == '{'})
			case '}', ']':
				stack = stack[:len(stack)-1]
				out = append(out, byte(v))
				after()
			}
			continue
		case string:
			sep()
			out = appendStr(out, v)
		case json.Number:
			sep()
			out = append(out, v.String()...)
		case bool:
			sep()
			out = strconv.AppendBool(out, v)
		case nil:
			sep()
			out = append(out, "null"...)
		}
		after()
	}
	if len(out) == 0 {
		return nil, errors.New("empty JSON value")
	}
	return out, nil
}

// skipValue returns the index just past the JSON value starting at b[i]
// (whitespace-free input, as produced by this package).
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			i++
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i
			}
		case ',', ':':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// fieldMask is WordPress' _fields: a set of top-level names, each either
// wanted whole (nil) or with a nested mask.
type fieldMask map[string]fieldMask

func parseFields(list []string) fieldMask {
	m := fieldMask{}
	for _, f := range list {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		parts := strings.Split(f, ".")
		cur := m
		for i, p := range parts {
			sub, ok := cur[p]
			if ok && sub == nil {
				break // whole field already wanted
			}
			if i == len(parts)-1 {
				cur[p] = nil
				break
			}
			if !ok {
				sub = fieldMask{}
				cur[p] = sub
			}
			cur = sub
		}
	}
	return m
}

// filterObject keeps only the masked keys of a JSON object (recursively).
func filterObject(b []byte, m fieldMask) []byte {
	if len(b) == 0 || b[0] != '{' {
		return b
	}
	out := []byte{'{'}
	i := 1
	n := 0
	for i < len(b) && b[i] != '}' {
		ks := i
		ke := skipValue(b, i)
		key, _ := unquotePHP(b[ks:ke])
		vs := ke + 1
		ve := skipValue(b, vs)
		if sub, ok := m[key]; ok {
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, b[ks:vs]...)
			if sub == nil {
				out = append(out, b[vs:ve]...)
			} else {
				out = append(out, filterObject(b[vs:ve], sub)...)
			}
			n++
		}
		i = ve
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
	return append(out, '}')
}

func unquotePHP(q []byte) (string, error) {
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}

// objw writes one JSON object field by field, honouring a field mask and
// per-field raw overrides.
type objw struct {
	b      []byte
	n      int
	mask   fieldMask
	ov     map[string][]byte
	nested fieldMask // pending nested filter for the value being written
	vstart int
}

func (w *objw) open() { w.b = append(w.b, '{') }

func (w *objw) flushNested() {
	if w.nested != nil {
		val := filterObject(w.b[w.vstart:], w.nested)
		w.b = append(w.b[:w.vstart], val...)
		w.nested = nil
	}
}

// key starts field name. It returns false when the field is masked out or
// was written from an override; the caller writes the value only on true.
// dates writes date_created, date_created_gmt, date_modified and
// date_modified_gmt (those the mask keeps), in WooCommerce's order: the plain
// fields in site-local time (offset off, seconds), the _gmt ones in UTC.
func (w *objw) dates(created, modified, off int64) {
	if w.key("date_created") {
		w.b = appendDate(w.b, created, off)
	}
	if w.key("date_created_gmt") {
		w.b = appendDate(w.b, created, 0)
	}
	if w.key("date_modified") {
		w.b = appendDate(w.b, modified, off)
	}
	if w.key("date_modified_gmt") {
		w.b = appendDate(w.b, modified, 0)
	}
}

func (w *objw) key(name string) bool {
	w.flushNested()
	var sub fieldMask
	if w.mask != nil {
		var ok bool
		sub, ok = w.mask[name]
		if !ok {
			return false
		}
	}
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
	w.b = append(w.b, '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '"', ':')
	w.vstart = len(w.b)
	w.nested = sub
	if w.ov != nil {
		if v, ok := w.ov[name]; ok {
			w.b = append(w.b, v...)
			return false
		}
	}
	return true
}

func (w *objw) close() []byte {
	w.flushNested()
	return append(w.b, '}')
}
