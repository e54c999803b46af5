package config

import (
	"slices"
	"testing"
)

// TestBuildSettingsWithOverrides checks that the shim's reading of the
// pipeline-safe variables gives what Load gives in a job: the same values and
// the same warnings, for good and bad values alike.
func TestBuildSettingsWithOverrides(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      []string
		want     BuildSettings
		warnings int
	}{
		{"nothing set", nil, BuildSettings{CacheMode: CacheAuto}, 0},
		{"all three", []string{"DOCKHAND_CACHE=off", "DOCKHAND_STRICT=true", "DOCKHAND_DEBUG= 1 "}, BuildSettings{CacheMode: CacheOff, Strict: true, Debug: true}, 0},
		{"strict off", []string{"DOCKHAND_STRICT=false"}, BuildSettings{CacheMode: CacheAuto}, 0},
		{"bad mode", []string{"DOCKHAND_CACHE=sometimes"}, BuildSettings{CacheMode: CacheAuto}, 1},
		{"bad booleans", []string{"DOCKHAND_STRICT=maybe", "DOCKHAND_DEBUG=yes"}, BuildSettings{CacheMode: CacheAuto}, 2},
		{"empty is unset", []string{"DOCKHAND_CACHE=", "DOCKHAND_STRICT="}, BuildSettings{CacheMode: CacheAuto}, 0},
		{"other variables are not read", []string{"DOCKHAND_BUILDERS=local", "DOCKHAND_CACHE_BACKEND=s3"}, BuildSettings{CacheMode: CacheAuto}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := FromSlice(append([]string{"BUILDKITE_JOB_ID=j1"}, tc.env...))
			lookup := Getter(e)
			got, warnings := BuildSettings{CacheMode: CacheAuto}.WithOverrides(lookup)
			if got != tc.want || len(warnings) != tc.warnings {
				t.Fatalf("WithOverrides = %+v, %q; want %+v and %d warning(s)", got, warnings, tc.want, tc.warnings)
			}
			c, loadWarnings, err := Load(Options{Env: e, ReadFile: files(nil)})
			if err != nil {
				t.Fatal(err)
			}
			if loaded := (BuildSettings{CacheMode: c.Cache.Mode, Strict: c.Strict, Debug: c.Debug}); loaded != got {
				t.Errorf("Load in a job = %+v, WithOverrides = %+v", loaded, got)
			}
			for _, w := range warnings {
				if !slices.Contains(loadWarnings, w) {
					t.Errorf("warning %q is not Load's (%q)", w, loadWarnings)
				}
			}
		})
	}
}
