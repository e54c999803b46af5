package cachedimage

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

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
