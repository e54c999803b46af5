package cachedimage

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
//
// The files, in the order a filter meets them:
//
//   - jq_decode.go: the JSON texts, objects keeping their key order (jqObject);
//   - jq_parse.go: the filter, when it is in the exact subset (parseJQ);
//   - jq_eval.go: the exact subset evaluated (jqQuery.eval and the builtins);
//   - jq_gojq.go: the bridge to the full language (JQFunc, fullEval): what
//     may be handed over, and the values translated both ways;
//   - jq_print.go: the outputs printed as jq -r prints them (printRaw).

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
	outs, err := evalJQ(filter, inputs, full)
	if err != nil {
		return "", err
	}
	return printRaw(outs), nil
}

// evalJQ runs filter over every input: exactly when it is in the subset
// parseJQ reads, else with full (see fullEval). The first error ends it.
func evalJQ(filter string, inputs []any, full JQFunc) ([]any, error) {
	q, err := parseJQ(filter)
	if err != nil {
		return fullEval(filter, inputs, full)
	}
	var outs []any
	for _, in := range inputs {
		vs, err := q.eval(in)
		outs = append(outs, vs...)
		if err != nil {
			return nil, err
		}
	}
	return outs, nil
}
