package cachedimage

import (
	"errors"
	"fmt"
	"math/big"
)

// JQFunc evaluates a jq filter over plain JSON values (nil, bool, float64,
// string, []any, map[string]any) and returns the outputs, such as
// jqeval.Eval does with gojq.
type JQFunc func(filter string, inputs []any) ([]any, error)

// ErrFullJQ is returned when a filter needs the full jq language and no
// JQFunc was given: dockhand then lets dockhand-cloud compute the tag.
var ErrFullJQ = errors.New("this jq filter needs the full jq language (dockhand-cloud)")

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
