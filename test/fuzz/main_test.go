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
		{"github.com/dockhand-ci/dockhand/config", "FuzzParse"},
		{"github.com/dockhand-ci/dockhand/registry/hosts", "FuzzParse"},
		{"github.com/dockhand-ci/dockhand/shim", "FuzzRewrite"},
		{"github.com/dockhand-ci/dockhand/cachekey", "FuzzSanitizeTag"},
	} {
		if !slices.Contains(targets, want) {
			t.Errorf("%s %s not found in %v", want.pkg, want.name, targets)
		}
	}
}

// A run the engine stopped late is told apart from an input that failed.
func TestEngineDeadline(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want bool
	}{
		{"--- FAIL: FuzzSanitizeTag (3.11s)\n    context deadline exceeded\nFAIL\n", true},
		{"--- FAIL: FuzzX (0.2s)\n    x_test.go:9: boom\n    Failing input written to testdata/fuzz/FuzzX/abc\n    context deadline exceeded\n", false},
		{"--- FAIL: FuzzX (0.2s)\n    x_test.go:9: boom\n", false},
	} {
		if got := engineDeadline([]byte(tc.out)); got != tc.want {
			t.Errorf("engineDeadline(%q) = %v, want %v", tc.out, got, tc.want)
		}
	}
}
