package cachedimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The plugin hashes `jq -r FILTER FILE`'s output for a `file.json#FILTER`
// entry. jq keeps the order of an object's keys as written in the file and
// prints numbers as doubles in its own format, so the output is reproduced
// here byte for byte (the reference is Debian bookworm's jq 1.6):
//
//   - Path filters (`.`, `.a.b`, `."a"`, `.["a"]`, `.[0]`, `.[-1]`, `.[]`,
//     `.[1:3]`, `..`, `?`, `|`, `,`, parentheses) and the builtins keys,
//     keys_unsorted, length, type, tostring, tojson and to_entries are
//     evaluated here on values that keep key order: exact.
//   - Any other filter is evaluated with gojq (package jqeval, linked only
//     into dockhand-cloud: its start-up cost is too much for the job-path
//     binary), which sorts object keys. Its output is used only when that
//     cannot matter: the filter builds no object, iterates or serialises none
//     (see orderRisk), and no output holds an object of two keys or more.
//     Otherwise the filter is refused with an error that says why.

// JQFunc evaluates a jq filter over plain JSON values (nil, bool, float64,
// string, []any, map[string]any) and returns the outputs, such as
// jqeval.Eval does with gojq.
type JQFunc func(filter string, inputs []any) ([]any, error)

// ErrFullJQ is returned when a filter needs the full jq language and no
// JQFunc was given: dockhand then lets dockhand-cloud compute the tag.
var ErrFullJQ = errors.New("this jq filter needs the full jq language (dockhand-cloud)")

// jqObject is a JSON object that keeps its keys in the order jq does: first
// appearance (a repeated key keeps its place and takes the last value).
type jqObject struct {
	keys []string
	vals map[string]any
}

func (o *jqObject) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// jqRaw runs `jq -r filter` over data (one or more JSON texts) and returns
// what it prints; full evaluates filters outside the exact subset.
func jqRaw(filter string, data []byte, full JQFunc) (string, error) {
	inputs, err := decodeJSONStream(data)
	if err != nil {
		return "", err
	}
	var outs []any
	if q, perr := parseJQ(filter); perr == nil {
		for _, in := range inputs {
			vs, err := q.eval(in)
			outs = append(outs, vs...)
			if err != nil {
				return "", err
			}
		}
	} else {
		if outs, err = fullEval(filter, inputs, full); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	for _, v := range outs {
		if s, ok := v.(string); ok {
			b.WriteString(s)
		} else {
			writeJQ(&b, v, 0, true)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// decodeJSONStream decodes every JSON text in data, keeping key order;
// numbers become float64 as in jq 1.6.
func decodeJSONStream(data []byte) ([]any, error) {
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.UseNumber()
	var out []any
	for {
		v, err := decodeValue(d)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

func decodeValue(d *json.Decoder) (any, error) {
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '[':
			arr := []any{}
			for d.More() {
				v, err := decodeValue(d)
				if err != nil {
					return nil, noEOF(err)
				}
				arr = append(arr, v)
			}
			_, err := d.Token()
			return arr, noEOF(err)
		case '{':
			o := &jqObject{vals: map[string]any{}}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, noEOF(err)
				}
				v, err := decodeValue(d)
				if err != nil {
					return nil, noEOF(err)
				}
				o.set(kt.(string), v)
			}
			_, err := d.Token()
			return o, noEOF(err)
		}
		return nil, fmt.Errorf("unexpected %q", t)
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, err
		}
		return f, nil
	default: // string, bool, nil
		return t, nil
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeJQ prints v as jq 1.6 does: pretty with two spaces, or compact
// (tojson, tostring).
func writeJQ(b *strings.Builder, v any, depth int, pretty bool) {
	nl := func(d int) {
		if pretty {
			b.WriteByte('\n')
			b.WriteString(strings.Repeat("  ", d))
		}
	}
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case float64:
		b.WriteString(formatJQNumber(v))
	case string:
		writeJQString(b, v)
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			writeJQ(b, e, depth+1, pretty)
		}
		nl(depth)
		b.WriteByte(']')
	case *jqObject:
		if len(v.keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			writeJQString(b, k)
			b.WriteByte(':')
			if pretty {
				b.WriteByte(' ')
			}
			writeJQ(b, v.vals[k], depth+1, pretty)
		}
		nl(depth)
		b.WriteByte('}')
	}
}

func writeJQString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// formatJQNumber prints a double as jq 1.6 does (David Gay's g_fmt with the
// shortest round-trip digits): exponent form when the decimal point would
// sit four or more places left of the first digit, or more than fifteen
// places right of the last one; the exponent is signed and at least two
// digits; NaN is null and infinities are the largest double.
func formatJQNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "null"
	case math.IsInf(f, 1):
		f = math.MaxFloat64
	case math.IsInf(f, -1):
		f = -math.MaxFloat64
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0"
		}
		return "0"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, exp, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	decpt := x + 1 // value = 0.DIGITS × 10^decpt
	n := len(digits)
	if decpt <= -4 || decpt > n+15 {
		var b strings.Builder
		b.WriteString(sign)
		b.WriteByte(digits[0])
		if n > 1 {
			b.WriteByte('.')
			b.WriteString(digits[1:])
		}
		b.WriteByte('e')
		if x < 0 {
			b.WriteByte('-')
			x = -x
		} else {
			b.WriteByte('+')
		}
		if x < 10 {
			b.WriteByte('0')
		}
		b.WriteString(strconv.Itoa(x))
		return b.String()
	}
	switch {
	case decpt <= 0:
		return sign + "0." + strings.Repeat("0", -decpt) + digits
	case decpt >= n:
		return sign + digits + strings.Repeat("0", decpt-n)
	}
	return sign + digits[:decpt] + "." + digits[decpt:]
}

func jqType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return "object"
}

// jqQuery is a parsed filter of the exact subset.
type jqQuery interface {
	eval(in any) ([]any, error)
}

type (
	jqIdentity struct{}
	jqRecurse  struct{}
	jqPipe     struct{ l, r jqQuery }
	jqComma    struct{ l, r jqQuery }
	jqTry      struct{ q jqQuery }
	jqBuiltin  struct{ name string }
	// The steps below take an optional flag: `?` after a step suppresses
	// that step's errors only, not those of what it applies to.
	jqIndex struct {
		on       jqQuery
		key      any // string or float64
		optional bool
	}
	jqIter struct {
		on       jqQuery
		optional bool
	}
	jqSlice struct {
		on       jqQuery
		lo, hi   *float64
		optional bool
	}
)

func (jqIdentity) eval(in any) ([]any, error) { return []any{in}, nil }

func (jqRecurse) eval(in any) ([]any, error) {
	out := []any{in}
	switch v := in.(type) {
	case []any:
		for _, e := range v {
			sub, _ := jqRecurse{}.eval(e)
			out = append(out, sub...)
		}
	case *jqObject:
		for _, k := range v.keys {
			sub, _ := jqRecurse{}.eval(v.vals[k])
			out = append(out, sub...)
		}
	}
	return out, nil
}

func (p jqPipe) eval(in any) ([]any, error) {
	ls, err := p.l.eval(in)
	var out []any
	for _, l := range ls {
		rs, rerr := p.r.eval(l)
		out = append(out, rs...)
		if rerr != nil {
			return out, rerr
		}
	}
	return out, err
}

func (c jqComma) eval(in any) ([]any, error) {
	ls, err := c.l.eval(in)
	if err != nil {
		return ls, err
	}
	rs, err := c.r.eval(in)
	return append(ls, rs...), err
}

func (t jqTry) eval(in any) ([]any, error) {
	out, _ := t.q.eval(in)
	return out, nil
}

func (x jqIndex) eval(in any) ([]any, error) {
	ons, err := x.on.eval(in)
	var out []any
	for _, v := range ons {
		r, ierr := indexValue(v, x.key)
		if ierr != nil {
			if x.optional {
				continue
			}
			return out, ierr
		}
		out = append(out, r)
	}
	return out, err
}

func indexValue(v, key any) (any, error) {
	switch k := key.(type) {
	case string:
		switch v := v.(type) {
		case nil:
			return nil, nil
		case *jqObject:
			return v.vals[k], nil
		}
		return nil, fmt.Errorf("cannot index %s with %q", jqType(v), k)
	case float64:
		switch v := v.(type) {
		case nil:
			return nil, nil
		case []any:
			i := int(math.Floor(k))
			if i < 0 {
				i += len(v)
			}
			if i < 0 || i >= len(v) {
				return nil, nil
			}
			return v[i], nil
		}
		return nil, fmt.Errorf("cannot index %s with number", jqType(v))
	}
	return nil, errors.New("bad index")
}

func (x jqIter) eval(in any) ([]any, error) {
	ons, err := x.on.eval(in)
	var out []any
	for _, v := range ons {
		switch v := v.(type) {
		case []any:
			out = append(out, v...)
		case *jqObject:
			for _, k := range v.keys {
				out = append(out, v.vals[k])
			}
		default:
			if x.optional {
				continue
			}
			return out, fmt.Errorf("cannot iterate over %s", jqType(v))
		}
	}
	return out, err
}

func (x jqSlice) eval(in any) ([]any, error) {
	ons, err := x.on.eval(in)
	var out []any
	for _, v := range ons {
		var n int
		switch v := v.(type) {
		case nil:
			out = append(out, nil)
			continue
		case []any:
			n = len(v)
		case string:
			n = utf8.RuneCountInString(v)
		default:
			if x.optional {
				continue
			}
			return out, fmt.Errorf("cannot index %s with object", jqType(v))
		}
		lo, hi := 0, n
		if x.lo != nil {
			lo = clampIndex(*x.lo, n)
		}
		if x.hi != nil {
			hi = clampIndex(*x.hi, n)
		}
		hi = max(hi, lo)
		switch v := v.(type) {
		case []any:
			out = append(out, slices.Clone(v[lo:hi]))
		case string:
			r := []rune(v)
			out = append(out, string(r[lo:hi]))
		}
	}
	return out, err
}

func clampIndex(f float64, n int) int {
	i := int(f)
	if i < 0 {
		i += n
	}
	return min(max(i, 0), n)
}

func (x jqBuiltin) eval(in any) ([]any, error) {
	switch x.name {
	case "length":
		switch v := in.(type) {
		case nil:
			return []any{0.0}, nil
		case float64:
			return []any{math.Abs(v)}, nil
		case string:
			return []any{float64(utf8.RuneCountInString(v))}, nil
		case []any:
			return []any{float64(len(v))}, nil
		case *jqObject:
			return []any{float64(len(v.keys))}, nil
		}
		return nil, fmt.Errorf("%s has no length", jqType(in))
	case "type":
		return []any{jqType(in)}, nil
	case "keys", "keys_unsorted":
		switch v := in.(type) {
		case []any:
			ks := make([]any, len(v))
			for i := range v {
				ks[i] = float64(i)
			}
			return []any{ks}, nil
		case *jqObject:
			names := slices.Clone(v.keys)
			if x.name == "keys" {
				slices.Sort(names)
			}
			ks := make([]any, len(names))
			for i, k := range names {
				ks[i] = k
			}
			return []any{ks}, nil
		}
		return nil, fmt.Errorf("%s has no keys", jqType(in))
	case "to_entries":
		o, ok := in.(*jqObject)
		if !ok {
			return nil, fmt.Errorf("%s has no keys", jqType(in))
		}
		out := make([]any, 0, len(o.keys))
		for _, k := range o.keys {
			e := &jqObject{vals: map[string]any{}}
			e.set("key", k)
			e.set("value", o.vals[k])
			out = append(out, e)
		}
		return []any{out}, nil
	case "tojson", "tostring":
		if s, ok := in.(string); ok && x.name == "tostring" {
			return []any{s}, nil
		}
		var b strings.Builder
		writeJQ(&b, in, 0, false)
		return []any{b.String()}, nil
	}
	return nil, fmt.Errorf("unknown builtin %s", x.name)
}

var jqBuiltins = map[string]bool{
	"length": true, "type": true, "keys": true, "keys_unsorted": true,
	"to_entries": true, "tojson": true, "tostring": true,
}

// parseJQ parses a filter of the exact subset; any other filter is an error
// (and goes to gojq).
func parseJQ(src string) (jqQuery, error) {
	p := &jqParser{s: src}
	q, err := p.pipe()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unsupported at offset %d", p.i)
	}
	return q, nil
}

type jqParser struct {
	s string
	i int
}

var errJQSubset = errors.New("outside the exact subset")

func (p *jqParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\n\r", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *jqParser) peek(tok string) bool {
	p.space()
	return strings.HasPrefix(p.s[p.i:], tok)
}

func (p *jqParser) pipe() (jqQuery, error) {
	l, err := p.comma()
	if err != nil {
		return nil, err
	}
	for p.peek("|") && !p.peek("|=") {
		p.i++
		r, err := p.comma()
		if err != nil {
			return nil, err
		}
		l = jqPipe{l, r}
	}
	return l, nil
}

func (p *jqParser) comma() (jqQuery, error) {
	l, err := p.postfix()
	if err != nil {
		return nil, err
	}
	for p.peek(",") {
		p.i++
		r, err := p.postfix()
		if err != nil {
			return nil, err
		}
		l = jqComma{l, r}
	}
	return l, nil
}

func (p *jqParser) postfix() (jqQuery, error) {
	q, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.peek("?"):
			p.i++
			switch step := q.(type) {
			case jqIndex:
				step.optional = true
				q = step
			case jqIter:
				step.optional = true
				q = step
			case jqSlice:
				step.optional = true
				q = step
			default:
				q = jqTry{q}
			}
		case p.peek("["):
			if q, err = p.bracket(q); err != nil {
				return nil, err
			}
		case p.peek(".") && !p.peek(".."):
			p.i++
			if p.i < len(p.s) && p.s[p.i] == '"' {
				s, err := p.str()
				if err != nil {
					return nil, err
				}
				q = jqIndex{on: q, key: s}
				continue
			}
			name := p.ident()
			if name == "" {
				return nil, errJQSubset
			}
			q = jqIndex{on: q, key: name}
		default:
			return q, nil
		}
	}
}

func (p *jqParser) term() (jqQuery, error) {
	p.space()
	switch {
	case p.peek(".."):
		p.i += 2
		return jqRecurse{}, nil
	case p.peek("("):
		p.i++
		q, err := p.pipe()
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, errJQSubset
		}
		p.i++
		return q, nil
	case p.peek("."):
		p.i++
		if p.i < len(p.s) && p.s[p.i] == '"' {
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			return jqIndex{on: jqIdentity{}, key: s}, nil
		}
		if name := p.ident(); name != "" {
			return jqIndex{on: jqIdentity{}, key: name}, nil
		}
		return jqIdentity{}, nil
	}
	if name := p.ident(); jqBuiltins[name] {
		return jqBuiltin{name}, nil
	}
	return nil, errJQSubset
}

// bracket parses [] [N] ["s"] [N:M] after q.
func (p *jqParser) bracket(q jqQuery) (jqQuery, error) {
	p.i++ // [
	if p.peek("]") {
		p.i++
		return jqIter{on: q}, nil
	}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '"' {
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		if !p.peek("]") {
			return nil, errJQSubset
		}
		p.i++
		return jqIndex{on: q, key: s}, nil
	}
	lo, hasLo := p.integer()
	if p.peek(":") {
		p.i++
		hi, hasHi := p.integer()
		if !p.peek("]") {
			return nil, errJQSubset
		}
		p.i++
		s := jqSlice{on: q}
		if hasLo {
			s.lo = &lo
		}
		if hasHi {
			s.hi = &hi
		}
		return s, nil
	}
	if !hasLo || !p.peek("]") {
		return nil, errJQSubset
	}
	p.i++
	return jqIndex{on: q, key: lo}, nil
}

func (p *jqParser) integer() (float64, bool) {
	p.space()
	j := p.i
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	k := j
	for k < len(p.s) && p.s[k] >= '0' && p.s[k] <= '9' {
		k++
	}
	if k == j {
		return 0, false
	}
	n, err := strconv.ParseFloat(p.s[p.i:k], 64)
	if err != nil {
		return 0, false
	}
	p.i = k
	return n, true
}

func (p *jqParser) ident() string {
	j := p.i
	for j < len(p.s) {
		c := p.s[j]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (j > p.i && c >= '0' && c <= '9') {
			j++
			continue
		}
		break
	}
	name := p.s[p.i:j]
	p.i = j
	return name
}

// str parses a JSON-style string literal without interpolation.
func (p *jqParser) str() (string, error) {
	j := p.i + 1
	for j < len(p.s) && p.s[j] != '"' {
		if p.s[j] == '\\' {
			if j+1 < len(p.s) && p.s[j+1] == '(' {
				return "", errJQSubset // interpolation
			}
			j++
		}
		j++
	}
	if j >= len(p.s) {
		return "", errJQSubset
	}
	var s string
	if err := json.Unmarshal([]byte(p.s[p.i:j+1]), &s); err != nil {
		return "", errJQSubset
	}
	p.i = j + 1
	return s, nil
}

// orderSensitiveFuncs are the builtins that iterate, serialise or build
// objects: with gojq (which sorts object keys) their results could differ
// from jq's (which keeps them in file order).
var orderSensitiveFuncs = map[string]bool{
	"keys_unsorted": true, "to_entries": true, "with_entries": true, "from_entries": true, "tojson": true,
	"tostring": true, "add": true, "map": true, "map_values": true, "paths": true, "leaf_paths": true,
	"tostream": true, "fromstream": true, "walk": true, "recurse": true, "recurse_down": true, "env": true,
	"input": true, "inputs": true, "input_filename": true, "join": true, "debug": true, "stderr": true,
	"halt": true, "halt_error": true, "$ENV": true, "$__loc__": true,
}

// orderRisk returns the first construct of filter whose result could depend
// on object key order, or "".
func orderRisk(filter string) string {
	s := filter
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					if s[i+1] == '(' {
						return `\(`
					}
					i++
				}
			}
		case c == '{' || c == '@':
			return string(c)
		case c == '.' && i+1 < len(s) && s[i+1] == '.':
			return ".."
		case c == '[':
			j := i + 1
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n') {
				j++
			}
			if j < len(s) && s[j] == ']' {
				return "[]"
			}
		case c == '$' || c == '_' || isAlpha(rune(c)):
			j := i + 1
			for j < len(s) && (s[j] == '_' || isAlpha(rune(s[j])) || isDigit(rune(s[j]))) {
				j++
			}
			word := s[i:j]
			field := i > 0 && s[i-1] == '.'
			if !field && orderSensitiveFuncs[word] {
				return word
			}
			i = j - 1
		}
	}
	return ""
}

// fullEval evaluates a filter outside the exact subset with full, refusing
// it when jq's key order could change the output.
func fullEval(filter string, inputs []any, full JQFunc) ([]any, error) {
	if full == nil {
		return nil, ErrFullJQ
	}
	if risk := orderRisk(filter); risk != "" {
		return nil, fmt.Errorf("dockhand evaluates this filter with gojq, which orders object keys unlike jq, "+
			"and %q could make the output depend on that order; use a path (such as .a.b, .a[0], .a[]) "+
			"or keys, length, to_entries, tostring", risk)
	}
	plain := make([]any, len(inputs))
	for i, in := range inputs {
		plain[i] = toPlain(in)
	}
	outs, err := full(filter, plain)
	if err != nil {
		return nil, err
	}
	for i, v := range outs {
		if outs[i], err = fromPlain(v); err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// toPlain turns a value into plain JSON values (objects lose key order).
func toPlain(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = toPlain(e)
		}
		return out
	case *jqObject:
		out := make(map[string]any, len(v.keys))
		for _, k := range v.keys {
			out[k] = toPlain(v.vals[k])
		}
		return out
	}
	return v
}

// fromPlain turns full's output back, refusing objects of several keys,
// whose order jq would have kept.
func fromPlain(v any) (any, error) {
	switch v := v.(type) {
	case int:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case *big.Int:
		f, _ := new(big.Float).SetInt(v).Float64()
		return f, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			w, err := fromPlain(e)
			if err != nil {
				return nil, err
			}
			out[i] = w
		}
		return out, nil
	case map[string]any:
		if len(v) > 1 {
			return nil, errors.New("the output holds an object with several keys, whose order jq keeps and gojq " +
				"does not; select it with a path (such as .a.b) instead")
		}
		o := &jqObject{vals: map[string]any{}}
		for k, e := range v {
			w, err := fromPlain(e)
			if err != nil {
				return nil, err
			}
			o.set(k, w)
		}
		return o, nil
	}
	return v, nil
}
