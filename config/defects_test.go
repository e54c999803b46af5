package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
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

// Values doctor passed that were wrong are errors naming the file, line and
// key; the good spellings of the same keys still pass.
func TestDefect13_ConfigThatPassedDoctorButWasWrong(t *testing.T) {
	for _, tt := range []struct {
		name, file, want string
	}{
		{"shell with an unterminated quote", `shell = "/bin/bash -c 'echo"`, `x.toml:1: shell: `},
		{"shell that is not a path", `shell = "bash -e -c"`, `x.toml:1: shell: `},
		{"state_dir with a trailing newline", "state_dir = \"/var/lib/dockhand\\n\"", `x.toml:1: state_dir: `},
		{"state_dir with a trailing space", `state_dir = "/var/lib/dockhand "`, `x.toml:1: state_dir: `},
		{"cache.local.dir with a control character", "[cache.local]\ndir = \"/var/cache\\u0007\"", `x.toml:2: cache.local.dir: `},
		{"cache.repository with a tag", "[cache]\nrepository = \"reg.example:5000/cache:latest\"", `x.toml:2: cache.repository: `},
		{"cache.repository with a digest", "[cache]\nrepository = \"reg.example/cache@sha256:" + strings.Repeat("a", 64) + "\"", `x.toml:2: cache.repository: `},
		{"cache.repository with an upper-case host", "[cache]\nrepository = \"Reg.Example.com/cache\"", `x.toml:2: cache.repository: `},
		{"cache.repository with an upper-case path", "[cache]\nrepository = \"reg.example.com/Cache\"", `x.toml:2: cache.repository: `},
		{"cache.repository with a scheme", "[cache]\nrepository = \"https://reg.example.com/cache\"", `x.toml:2: cache.repository: `},
		{"in a queue section too", "[queue.q.cache]\nrepository = \"reg.example/c:v1\"", `x.toml:2: queue.q.cache.repository: `},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.toml", []byte(tt.file), "")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want an error starting %q", err, tt.want)
			}
		})
	}
	good := `shell = "/bin/bash -e -c 'set -o pipefail; exec \"$0\" \"$@\"'"
state_dir = "/var/lib/dockhand"
[cache]
repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/buildkit-cache"
[queue.a.cache]
repository = "localhost:5000/a/b_c.d-e"
`
	if _, err := Parse("x.toml", []byte(good), "a"); err != nil {
		t.Errorf("good values refused: %v", err)
	}
	// A pipeline cannot set these, but an operator's variable is checked
	// the same way.
	if _, _, err := Load(Options{Env: FromSlice([]string{"DOCKHAND_STATE_DIR=/srv/d\n"}), ReadFile: files(nil)}); err == nil {
		t.Errorf("DOCKHAND_STATE_DIR with a newline was accepted")
	}
}

// Parsing is linear in the file: 100k [queue.*] sections parse in seconds
// (quadratic, 16k took 7.75 s and 200k more than 120 s).
func TestDefect13_ManyQueueSectionsParseInLinearTime(t *testing.T) {
	var b strings.Builder
	const n = 100_000
	for i := range n {
		fmt.Fprintf(&b, "[queue.q%d]\nstrict = true\n", i)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		c, err := Parse("x.toml", []byte(b.String()), "q99999")
		if err == nil && (!c.Strict || c.Sources["strict"].Line != 2*n) {
			err = fmt.Errorf("strict = %v from line %d, want true from line %d", c.Strict, c.Sources["strict"].Line, 2*n)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d sections in %s", n, time.Since(start))
	case <-time.After(20 * time.Second):
		t.Fatalf("%d sections still parsing after 20s", n)
	}
}
