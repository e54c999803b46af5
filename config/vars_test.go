package config

import (
	"strings"
	"testing"
)

func TestVariablesTable(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Variables {
		if seen[v.Name] {
			t.Errorf("%s is listed twice", v.Name)
		}
		seen[v.Name] = true
		if v.Doc == "" {
			t.Errorf("%s has no doc", v.Name)
		}
		switch v.Kind {
		case Override, PipelineSafe:
			if !strings.HasPrefix(v.Name, "DOCKHAND_") {
				t.Errorf("%s: a %s variable must be a DOCKHAND_ one", v.Name, v.Kind)
			}
			if v.Key == "" && v.Name != "DOCKHAND_CONFIG" {
				t.Errorf("%s: no configuration key", v.Name)
			}
		default:
			if v.Key != "" {
				t.Errorf("%s: a %s variable has a configuration key", v.Name, v.Kind)
			}
		}
		if v.Key != "" {
			if _, ok := fieldByKey(v.Key); !ok {
				t.Errorf("%s: %q is not a configuration key", v.Name, v.Key)
			}
		}
	}
	for _, name := range []string{
		"BUILDKITE_JOB_ID", "BUILDKITE_AGENT_META_DATA_QUEUE", "BUILDKITE_BIN_PATH", "BUILDKITE_PIPELINE_SLUG",
		"BUILDKITE_PIPELINE_DEFAULT_BRANCH", "BUILDKITE_BRANCH", "BUILDKITE_PULL_REQUEST", "BUILDKITE_ORGANIZATION_SLUG",
		"BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS", "BUILDKITE_CANCEL_GRACE_PERIOD", "BUILDKITE_SHELL", "BUILDKITE_AGENT_DEBUG",
		"TMPDIR", "HOME", "DOCKER_CONFIG", "BUILDX_BUILDER", "BUILDKIT_HOST", "DOCKHAND_JOB_DIR",
	} {
		if !seen[name] {
			t.Errorf("%s is missing", name)
		}
	}
	safe := strings.Join(pipelineSafeNames(), ",")
	if want := "DOCKHAND_CACHE,DOCKHAND_BUILDERS,DOCKHAND_STRICT,DOCKHAND_DEBUG,DOCKHAND_RETRY_LOST_BUILDS"; safe != want {
		t.Errorf("pipeline-safe = %s, want %s", safe, want)
	}
}

func TestLookup(t *testing.T) {
	v, ok := Lookup("DOCKHAND_CACHE")
	if !ok || v.Kind != PipelineSafe || v.Key != "cache.mode" {
		t.Errorf("Lookup(DOCKHAND_CACHE) = %+v, %v", v, ok)
	}
	if _, ok := Lookup("DOCKHAND_NOPE"); ok {
		t.Error("Lookup(DOCKHAND_NOPE) found it")
	}
}

// TestEveryOverrideIsHandled sets each Override and PipelineSafe variable on
// its own and checks that it changes where a key comes from.
func TestEveryOverrideIsHandled(t *testing.T) {
	samples := map[string]string{
		"DOCKHAND_CONFIG":            "/other.toml",
		"DOCKHAND_STATE_DIR":         "/srv/dockhand",
		"DOCKHAND_SHELL":             "/bin/zsh",
		"DOCKHAND_PROBE_TIMEOUT":     "2s",
		"DOCKHAND_CACHE_BACKEND":     "local",
		"DOCKHAND_CACHE":             "off",
		"DOCKHAND_BUILDERS":          "local",
		"DOCKHAND_STRICT":            "true",
		"DOCKHAND_DEBUG":             "true",
		"DOCKHAND_RETRY_LOST_BUILDS": "false",
	}
	samples["DOCKHAND_PROBE_CACHE_TTL"] = "1s"
	samples["DOCKHAND_REMOTE_DISCOVERY_TTL"] = "30s"
	samples["DOCKHAND_REMOTE_BALANCE_FACTOR"] = "150"
	samples["DOCKHAND_BUILDERS_OPTIONAL"] = "true"
	samples["DOCKHAND_ANNOTATE"] = "off"
	fsys := files(map[string]string{"/other.toml": "strict = true\n"})
	for _, v := range Variables {
		if v.Kind != Override && v.Kind != PipelineSafe {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			sample, ok := samples[v.Name]
			if !ok {
				t.Fatalf("no sample value for %s", v.Name)
			}
			for _, job := range []bool{false, true} {
				env := []string{v.Name + "=" + sample}
				if job {
					env = append(env, "BUILDKITE_JOB_ID=1")
				}
				c, warnings, err := Load(Options{Env: FromSlice(env), ReadFile: fsys})
				if err != nil {
					t.Fatal(err)
				}
				applies := !job || v.Kind == PipelineSafe
				changed := false
				if v.Key == "" {
					changed = c.Sources["strict"].Kind == SourceFile
				} else {
					changed = c.Sources[v.Key] == Source{Kind: SourceEnv, Var: v.Name}
				}
				if changed != applies {
					t.Errorf("in a job %v: applied = %v, want %v", job, changed, applies)
				}
				if wantWarn := !applies; (len(warnings) == 1) != wantWarn {
					t.Errorf("in a job %v: warnings %q", job, warnings)
				}
			}
		})
	}
}
