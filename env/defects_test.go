package env

import (
	"strings"
	"testing"
)

// Regression tests for the defects of issue 12 that live in the
// configuration, each named for its number there.

// One bad pipeline variable is ignored with a warning naming it; the
// operator's file stands (builders, state_dir, strict and the rest).
func TestDefect01_BadPipelineVariableKeepsFile(t *testing.T) {
	file := `builders = ["embedded"]
state_dir = "/srv/dockhand"
strict = true
[cache]
backend = "s3"
mode = "off"
`
	for _, tt := range []struct {
		name, variable string
		check          func(*Config) bool
	}{
		{"a builder kind the agent does not enable", "DOCKHAND_BUILDERS=local", func(c *Config) bool { return c.Builders[0] == "embedded" }},
		{"not a boolean", "DOCKHAND_DEBUG=nope", func(c *Config) bool { return !c.Debug }},
		{"not a mode", "DOCKHAND_CACHE=sometimes", func(c *Config) bool { return c.Cache.Mode == CacheOff }},
		// Valid alone, but breaks a rule between keys (s3 without a bucket).
		{"breaks a rule between keys", "DOCKHAND_CACHE=auto", func(c *Config) bool { return c.Cache.Mode == CacheOff }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := FromSlice([]string{"BUILDKITE_JOB_ID=1", tt.variable, "DOCKHAND_STRICT=false"})
			c, warnings, err := Load(Options{Env: e, ReadFile: files(map[string]string{DefaultPath: file})})
			if err != nil {
				t.Fatalf("one bad variable failed the configuration: %v", err)
			}
			name := tt.variable[:strings.IndexByte(tt.variable, '=')]
			if len(warnings) != 1 || !strings.Contains(warnings[0], name) {
				t.Errorf("warnings = %q, want one naming %s", warnings, name)
			}
			if !tt.check(c) || c.StateDir != "/srv/dockhand" || len(c.Builders) != 1 || c.Cache.Backend != CacheS3 {
				t.Errorf("the file did not stand: builders %v state_dir %q cache %+v debug %v", c.Builders, c.StateDir, c.Cache, c.Debug)
			}
			// The good variable beside it still applies.
			if c.Strict || c.Sources["strict"].Var != "DOCKHAND_STRICT" {
				t.Errorf("strict = %v from %s, want false from DOCKHAND_STRICT", c.Strict, c.Sources["strict"])
			}
		})
	}
}
