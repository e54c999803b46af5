// Package jqeval evaluates the jq filters of cache-on entries that are
// outside cachedimage's exact subset, with gojq. It is imported only by
// dockhand-cloud: gojq's package initialisation (about a millisecond) is too
// much for the job-path `dockhand` binary.
package jqeval

import (
	"fmt"

	"github.com/itchyny/gojq"
)

// Eval runs filter over each input (plain JSON values, numbers as float64)
// and returns every output. The filter sees no environment ($ENV and env
// are empty).
func Eval(filter string, inputs []any) ([]any, error) {
	q, err := gojq.Parse(filter)
	if err != nil {
		return nil, err
	}
	code, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
	if err != nil {
		return nil, err
	}
	var out []any
	for _, in := range inputs {
		iter := code.Run(in)
		for {
			v, ok := iter.Next()
			if !ok {
				break
			}
			if err, isErr := v.(error); isErr {
				return nil, fmt.Errorf("%w", err)
			}
			out = append(out, v)
		}
	}
	return out, nil
}
