package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// files fakes Options.ReadFile with a map of paths to contents.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if s, ok := m[p]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
}

func TestLoadPath(t *testing.T) {
	fsys := files(map[string]string{
		DefaultPath:      "shell = \"/bin/default\"\n",
		"/flag.toml":     "shell = \"/bin/flag\"\n",
		"/envvar.toml":   "shell = \"/bin/envvar\"\n",
		"/bad.toml":      "shell = 1\n",
		"/queues.toml":   "shell = \"/bin/top\"\n[queue.build]\nshell = \"/bin/build\"\n",
		"/override.toml": "strict = true\n",
	})
	tests := []struct {
		name      string
		flag      string
		env       []string
		wantPath  string
		wantShell string
		wantErr   string
		warnings  []string
	}{
		{name: "default path", wantPath: DefaultPath, wantShell: "/bin/default"},
		{name: "DOCKHAND_CONFIG", env: []string{"DOCKHAND_CONFIG=/envvar.toml"}, wantPath: "/envvar.toml", wantShell: "/bin/envvar"},
		{name: "flag beats DOCKHAND_CONFIG", flag: "/flag.toml", env: []string{"DOCKHAND_CONFIG=/envvar.toml"}, wantPath: "/flag.toml", wantShell: "/bin/flag"},
		{name: "empty DOCKHAND_CONFIG is unset", env: []string{"DOCKHAND_CONFIG="}, wantPath: DefaultPath, wantShell: "/bin/default"},
		{
			name: "DOCKHAND_CONFIG is ignored in a job", env: []string{"BUILDKITE_JOB_ID=j1", "DOCKHAND_CONFIG=/envvar.toml"},
			wantPath: DefaultPath, wantShell: "/bin/default",
			warnings: []string{"ignoring DOCKHAND_CONFIG from the job environment: only DOCKHAND_CACHE, DOCKHAND_BUILDERS, DOCKHAND_STRICT, DOCKHAND_DEBUG, DOCKHAND_RETRY_LOST_BUILDS may be set by a pipeline"},
		},
		{name: "flag in a job", flag: "/flag.toml", env: []string{"BUILDKITE_JOB_ID=j1"}, wantPath: "/flag.toml", wantShell: "/bin/flag"},
		{name: "queue from the agent tag", flag: "/queues.toml", env: []string{"BUILDKITE_AGENT_META_DATA_QUEUE=build"}, wantPath: "/queues.toml", wantShell: "/bin/build"},
		{name: "missing explicit flag file", flag: "/missing.toml", wantErr: "/missing.toml: cannot read the configuration file: file does not exist"},
		{name: "missing explicit env file", env: []string{"DOCKHAND_CONFIG=/missing.toml"}, wantErr: "/missing.toml: cannot read the configuration file: file does not exist"},
		{name: "bad file", flag: "/bad.toml", wantErr: "/bad.toml:1: shell: expected a string, got integer 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, warnings, err := Load(Options{Flag: tt.flag, Env: FromSlice(tt.env), ReadFile: fsys})
			if !slices.Equal(warnings, tt.warnings) {
				t.Errorf("warnings = %q, want %q", warnings, tt.warnings)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if c != nil {
					t.Errorf("config returned with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Path != tt.wantPath || c.Shell != tt.wantShell {
				t.Errorf("Path, Shell = %q, %q; want %q, %q", c.Path, c.Shell, tt.wantPath, tt.wantShell)
			}
		})
	}
}

func TestLoadMissingDefaultFile(t *testing.T) {
	c, warnings, err := Load(Options{Env: FromSlice([]string{"BUILDKITE_AGENT_META_DATA_QUEUE=q"}), ReadFile: files(nil)})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Load: %v, %q", err, warnings)
	}
	if c.Path != "" || c.Queue != "q" {
		t.Errorf("Path, Queue = %q, %q", c.Path, c.Queue)
	}
	want := Default("q")
	for _, e := range c.Entries() {
		if e.Source.Kind != SourceDefault {
			t.Errorf("%s from %s, want default", e.Key, e.Source)
		}
		f, _ := fieldByKey(e.Key)
		if got, want := formatValue(e.Value), formatValue(f.get(want)); got != want {
			t.Errorf("%s = %s, want %s", e.Key, got, want)
		}
	}
}

func TestLoadRealFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "dockhand.toml")
	if err := os.WriteFile(good, []byte("[cache]\nmode = \"off\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := Load(Options{Flag: good})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Sources["cache.mode"].String(), good+":2"; got != want {
		t.Errorf("source = %q, want %q", got, want)
	}

	// A directory cannot be read as a file.
	_, _, err = Load(Options{Flag: dir})
	if err == nil || !strings.HasPrefix(err.Error(), dir+": cannot read the configuration file: ") {
		t.Errorf("err = %v", err)
	}

	_, _, err = Load(Options{Flag: filepath.Join(dir, "missing.toml")})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want one wrapping fs.ErrNotExist", err)
	}
}

func TestLoadEnvOverrides(t *testing.T) {
	file := `builders = ["namespace", "remote", "local"]
[cache]
mode = "always"
backend = "registry"
[cache.s3]
bucket = "b"
`
	tests := []struct {
		name     string
		env      []string
		values   map[string]string // key -> TOML value
		sources  map[string]string // key -> Source.String()
		warnings []string
		wantErr  []string
	}{
		{
			name: "outside a job every override applies",
			env: []string{
				"DOCKHAND_STATE_DIR=/srv/state", "DOCKHAND_SHELL=/bin/sh", "DOCKHAND_PROBE_TIMEOUT=3s",
				"DOCKHAND_CACHE_BACKEND=s3", "DOCKHAND_CACHE=off", "DOCKHAND_BUILDERS=local, embedded",
				"DOCKHAND_STRICT=true", "DOCKHAND_DEBUG=1",
			},
			values: map[string]string{
				"state_dir": `"/srv/state"`, "shell": `"/bin/sh"`, "probe_timeout": `"3s"`, "cache.backend": `"s3"`,
				"cache.mode": `"off"`, "builders": `["local", "embedded"]`, "strict": "true", "debug": "true",
			},
			sources: map[string]string{
				"state_dir": "env DOCKHAND_STATE_DIR", "shell": "env DOCKHAND_SHELL", "probe_timeout": "env DOCKHAND_PROBE_TIMEOUT",
				"cache.backend": "env DOCKHAND_CACHE_BACKEND", "cache.mode": "env DOCKHAND_CACHE", "builders": "env DOCKHAND_BUILDERS",
				"strict": "env DOCKHAND_STRICT", "debug": "env DOCKHAND_DEBUG", "cache.s3.bucket": testPath + ":6",
			},
		},
		{
			name: "in a job only the pipeline-safe subset applies",
			env: []string{
				"BUILDKITE_JOB_ID=0190-abc", "DOCKHAND_STATE_DIR=/tmp/evil", "DOCKHAND_SHELL=/tmp/evil.sh",
				"DOCKHAND_PROBE_TIMEOUT=1ms", "DOCKHAND_CACHE_BACKEND=local", "DOCKHAND_CACHE=off",
				"DOCKHAND_BUILDERS=local,remote", "DOCKHAND_STRICT=true", "DOCKHAND_DEBUG=true",
				"DOCKHAND_JOB_DIR=/var/lib/dockhand/jobs/0190-abc",
			},
			values: map[string]string{
				"state_dir": `"/var/lib/dockhand"`, "shell": `"/bin/bash"`, "probe_timeout": `"1.5s"`,
				"cache.backend": `"registry"`, "cache.mode": `"off"`, "builders": `["local", "remote"]`,
				"strict": "true", "debug": "true",
			},
			sources: map[string]string{
				"state_dir": "default", "cache.backend": testPath + ":4", "cache.mode": "env DOCKHAND_CACHE",
				"builders": "env DOCKHAND_BUILDERS", "strict": "env DOCKHAND_STRICT",
			},
			warnings: []string{
				"ignoring DOCKHAND_CACHE_BACKEND from the job environment: only DOCKHAND_CACHE, DOCKHAND_BUILDERS, DOCKHAND_STRICT, DOCKHAND_DEBUG, DOCKHAND_RETRY_LOST_BUILDS may be set by a pipeline",
				"ignoring DOCKHAND_PROBE_TIMEOUT from the job environment: only DOCKHAND_CACHE, DOCKHAND_BUILDERS, DOCKHAND_STRICT, DOCKHAND_DEBUG, DOCKHAND_RETRY_LOST_BUILDS may be set by a pipeline",
				"ignoring DOCKHAND_SHELL from the job environment: only DOCKHAND_CACHE, DOCKHAND_BUILDERS, DOCKHAND_STRICT, DOCKHAND_DEBUG, DOCKHAND_RETRY_LOST_BUILDS may be set by a pipeline",
				"ignoring DOCKHAND_STATE_DIR from the job environment: only DOCKHAND_CACHE, DOCKHAND_BUILDERS, DOCKHAND_STRICT, DOCKHAND_DEBUG, DOCKHAND_RETRY_LOST_BUILDS may be set by a pipeline",
			},
		},
		{
			name:     "unknown DOCKHAND_ variables warn, in or out of a job",
			env:      []string{"DOCKHAND_CACH=off", "DOCKHAND_FROBNICATE=1", "NOT_DOCKHAND_CACHE=x"},
			values:   map[string]string{"cache.mode": `"always"`},
			sources:  map[string]string{"cache.mode": testPath + ":3"},
			warnings: []string{"ignoring unknown variable DOCKHAND_CACH (did you mean DOCKHAND_CACHE?)", "ignoring unknown variable DOCKHAND_FROBNICATE"},
		},
		{
			name:     "unknown DOCKHAND_ variables warn in a job",
			env:      []string{"BUILDKITE_JOB_ID=1", "DOCKHAND_DEBG=1"},
			warnings: []string{"ignoring unknown variable DOCKHAND_DEBG (did you mean DOCKHAND_DEBUG?)"},
		},
		{
			name:    "empty values are unset",
			env:     []string{"BUILDKITE_JOB_ID=1", "DOCKHAND_CACHE=", "DOCKHAND_STATE_DIR="},
			sources: map[string]string{"cache.mode": testPath + ":3"},
		},
		{
			name:    "a job may narrow the builders",
			env:     []string{"BUILDKITE_JOB_ID=1", "DOCKHAND_BUILDERS=remote"},
			values:  map[string]string{"builders": `["remote"]`},
			sources: map[string]string{"builders": "env DOCKHAND_BUILDERS"},
		},
		{
			name:     "a job may not add a builder kind: the variable is ignored, the file stands",
			env:      []string{"BUILDKITE_JOB_ID=1", "DOCKHAND_BUILDERS=embedded"},
			values:   map[string]string{"builders": `["namespace", "remote", "local"]`},
			sources:  map[string]string{"builders": testPath + ":1"},
			warnings: []string{`ignoring DOCKHAND_BUILDERS="embedded" from the job environment: builders: builder kind "embedded" is not enabled for this agent (builders = ["namespace", "remote", "local"] from ` + testPath + `:1)`},
		},
		{
			name: "bad values name the variable",
			env:  []string{"DOCKHAND_CACHE=sometimes", "DOCKHAND_STRICT=maybe", "DOCKHAND_PROBE_TIMEOUT=5", "DOCKHAND_BUILDERS=docker"},
			wantErr: []string{
				`DOCKHAND_BUILDERS="docker": builders: unknown builder kind "docker" (want namespace, remote, local, embedded)`,
				`DOCKHAND_CACHE="sometimes": cache.mode: "sometimes" is not one of auto, always, off`,
				`DOCKHAND_PROBE_TIMEOUT="5": probe_timeout: "5" is not a duration (want Go syntax such as "1500ms" or "2s")`,
				`DOCKHAND_STRICT="maybe": strict: "maybe" is not a boolean (want true or false)`,
			},
		},
		{
			name:   "rules between keys are checked after the overrides",
			env:    []string{"DOCKHAND_CACHE_BACKEND=s3", "DOCKHAND_CACHE=auto"},
			values: map[string]string{"cache.backend": `"s3"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, warnings, err := Load(Options{Env: FromSlice(tt.env), ReadFile: files(map[string]string{DefaultPath: file})})
			if !slices.Equal(warnings, tt.warnings) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warnings, "\n"), strings.Join(tt.warnings, "\n"))
			}
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("Load succeeded")
				}
				if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.wantErr) {
					t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tt.wantErr, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range tt.values {
				if got := value(t, c, key); got != want {
					t.Errorf("%s = %s, want %s", key, got, want)
				}
			}
			for key, want := range tt.sources {
				if got := c.Sources[key].String(); got != want {
					t.Errorf("source of %s = %q, want %q", key, got, want)
				}
			}
		})
	}
}

func TestLoadCrossCheckAfterEnv(t *testing.T) {
	_, _, err := Load(Options{Env: FromSlice([]string{"DOCKHAND_CACHE_BACKEND=s3"}), ReadFile: files(nil)})
	want := `env DOCKHAND_CACHE_BACKEND: cache.backend: is "s3" but cache.s3.bucket is not set`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestLoadNilEnv(t *testing.T) {
	c, warnings, err := Load(Options{ReadFile: files(nil)})
	if err != nil || warnings != nil || c.Queue != "" || c.Path != "" {
		t.Errorf("Load = %+v, %q, %v", c, warnings, err)
	}
}

// TestIssue23_6_QueueComesFromTheAgentsOwnTags: the agent does not protect
// BUILDKITE_AGENT_META_DATA_QUEUE (it passes the job's value through as it
// came), so in a job the [queue.NAME] section is chosen by the queue tag in
// the agent's own configuration file, which the agent names in
// BUILDKITE_CONFIG_PATH and a step cannot change. A job value that differs
// is ignored with a warning; without tags in that file the job value stands.
func TestIssue23_6_QueueComesFromTheAgentsOwnTags(t *testing.T) {
	fsys := files(map[string]string{
		"/queues.toml": "shell = \"/bin/top\"\n[queue.build]\nshell = \"/bin/build\"\n[queue.trusted]\nshell = \"/bin/trusted\"\n",
		"/etc/buildkite-agent/buildkite-agent.cfg": "name=\"stack-i-0abc-1\"\n# tags=\"queue=trusted\"\ntags=\"queue=build,docker=true,stack=ci\"  # the stack's\ntags-from-ec2-meta-data=true\n",
		"/agent-untagged.cfg":                      "name=\"a\"\n",
		"/agent-no-queue.cfg":                      "tags=docker=true\n",
	})
	const cfg = "BUILDKITE_CONFIG_PATH=/etc/buildkite-agent/buildkite-agent.cfg"
	for _, tc := range []struct {
		name      string
		env       []string
		wantQueue string
		warning   string
	}{
		{"a step sets the queue of another", []string{"BUILDKITE_JOB_ID=j", cfg, "BUILDKITE_AGENT_META_DATA_QUEUE=trusted"}, "build",
			`ignoring BUILDKITE_AGENT_META_DATA_QUEUE="trusted" from the job environment: this agent's queue is "build" (tags in /etc/buildkite-agent/buildkite-agent.cfg)`},
		{"the same queue", []string{"BUILDKITE_JOB_ID=j", cfg, "BUILDKITE_AGENT_META_DATA_QUEUE=build"}, "build", ""},
		{"agent tags only", []string{"BUILDKITE_JOB_ID=j", cfg}, "build", ""},
		{"agent tags without a queue", []string{"BUILDKITE_JOB_ID=j", "BUILDKITE_CONFIG_PATH=/agent-no-queue.cfg", "BUILDKITE_AGENT_META_DATA_QUEUE=trusted"}, "",
			`ignoring BUILDKITE_AGENT_META_DATA_QUEUE="trusted" from the job environment: this agent has no queue tag (tags in /agent-no-queue.cfg)`},
		{"no tags in the agent's file", []string{"BUILDKITE_JOB_ID=j", "BUILDKITE_CONFIG_PATH=/agent-untagged.cfg", "BUILDKITE_AGENT_META_DATA_QUEUE=build"}, "build", ""},
		{"outside a job", []string{cfg, "BUILDKITE_AGENT_META_DATA_QUEUE=trusted"}, "trusted", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, warnings, err := Load(Options{Flag: "/queues.toml", Env: FromSlice(tc.env), ReadFile: fsys})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Queues, []string{"build", "trusted"}) {
				t.Errorf("configured queues %q, want build and trusted (the metrics dimension's values)", c.Queues)
			}
			if c.Queue != tc.wantQueue || (tc.wantQueue != "" && c.Shell != "/bin/"+tc.wantQueue) {
				t.Errorf("queue %q shell %q, want queue %q", c.Queue, c.Shell, tc.wantQueue)
			}
			if want := []string(nil); tc.warning != "" && !slices.Equal(warnings, []string{tc.warning}) || tc.warning == "" && !slices.Equal(warnings, want) {
				t.Errorf("warnings %q, want %q", warnings, tc.warning)
			}
		})
	}
}
