package main

import (
	"slices"
	"testing"
)

// Every fuzz target of the module is found, so `make test` and `make fuzz`
// fuzz it without a list to keep up to date.
func TestListFindsEveryFuzzTarget(t *testing.T) {
	targets, err := list([]string{"github.com/dockhand-ci/dockhand/..."})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []target{
		{"github.com/dockhand-ci/dockhand/registry", "FuzzHelperStdin"},
		{"github.com/dockhand-ci/dockhand/env", "FuzzParse"},
		{"github.com/dockhand-ci/dockhand/registry/hosts", "FuzzParse"},
		{"github.com/dockhand-ci/dockhand/buildx", "FuzzRewrite"},
		{"github.com/dockhand-ci/dockhand/buildx", "FuzzSanitizeTag"},
	} {
		if !slices.Contains(targets, want) {
			t.Errorf("%s %s not found in %v", want.pkg, want.name, targets)
		}
	}
}
