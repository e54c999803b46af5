package buildx

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/internal/proc"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// currentCase is a buildx store's state (its current file, its defaults,
// its instances) and the docker endpoint a command runs with.
type currentCase struct {
	name      string
	current   string            // the current file; "" for none
	defaults  map[string]string // key -> builder set with `buildx use --default`
	instances []string
	host      string // DOCKER_HOST
	want      string // the builder buildx runs on; "" for the context's own
}

const (
	hostA = "unix:///tmp/dockhand-test/a.sock"
	hostB = "unix:///tmp/dockhand-test/b.sock"
)

var currentCases = []currentCase{
	{name: "no current file", instances: []string{"kit"}, host: hostA},
	{name: "current for this endpoint", current: `{"Key":"` + hostA + `","Name":"kit","Global":false}`, instances: []string{"kit"}, host: hostA, want: "kit"},
	{name: "current for another endpoint", current: `{"Key":"` + hostB + `","Name":"kit","Global":false}`, instances: []string{"kit"}, host: hostA},
	{name: "global current, any endpoint", current: `{"Key":"` + hostB + `","Name":"kit","Global":true}`, instances: []string{"kit"}, host: hostA, want: "kit"},
	{name: "global current that was removed", current: `{"Key":"` + hostB + `","Name":"gone","Global":true}`, instances: []string{"kit"}, host: hostA},
	{name: "current for this endpoint that was removed", current: `{"Key":"` + hostA + `","Name":"gone","Global":false}`, defaults: map[string]string{hostA: "kit"}, instances: []string{"kit"}, host: hostA},
	{name: "names are case-insensitive", current: `{"Key":"` + hostA + `","Name":"KIT","Global":false}`, instances: []string{"kit"}, host: hostA, want: "KIT"},
	{name: "`use default`: the endpoint's default", current: `{"Key":"` + hostA + `","Name":"","Global":false}`, defaults: map[string]string{hostA: "kit"}, instances: []string{"kit", "other"}, host: hostA, want: "kit"},
	{name: "another endpoint's current, this one's default", current: `{"Key":"` + hostB + `","Name":"other","Global":false}`, defaults: map[string]string{hostA: "kit"}, instances: []string{"kit", "other"}, host: hostA, want: "kit"},
	{name: "a default that was removed", defaults: map[string]string{hostA: "gone"}, instances: []string{"kit"}, host: hostA},
	{name: "the step's `use` after dockhand's global current", current: `{"Key":"` + hostA + `","Name":"mine","Global":false}`, instances: []string{"dockhand-remote", "mine"}, host: hostA, want: "mine"},
}

// writeStore lays c's state out as a buildx store in a new dir.
func (c currentCase) writeStore(t *testing.T) string {
	t.Helper()
	store := filepath.Join(t.TempDir(), "buildx")
	for _, d := range []string{"instances", "defaults"} {
		if err := os.MkdirAll(filepath.Join(store, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(store, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range c.instances {
		// A node on a socket that does not exist: buildx fails to reach it
		// at once, and still says which builder it chose.
		write("instances/"+name, `{"Name":"`+name+`","Driver":"remote","Nodes":[{"Name":"`+name+`0","Endpoint":"unix:///nonexistent/buildkitd.sock"}]}`)
	}
	for key, name := range c.defaults {
		write("defaults/"+defaultsName(key), name)
	}
	if c.current != "" {
		write("current", c.current)
	}
	return store
}

func TestCurrentBuilder(t *testing.T) {
	for _, c := range currentCases {
		store := c.writeStore(t)
		if got := CurrentBuilder(store, c.host); got != c.want {
			t.Errorf("%s: CurrentBuilder = %q, want %q", c.name, got, c.want)
		}
	}
}

var inspectName = regexp.MustCompile(`(?m)^Name:\s+(\S+)`)

// The rule is buildx's own: for every case the real buildx (standalone, its
// store at BUILDX_CONFIG) runs `inspect` on the builder CurrentBuilder names,
// or on the docker context's ("default") when it names none.
func TestCurrentBuilderAgreesWithBuildx(t *testing.T) {
	bin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(bin, "docker-buildx")
	for _, c := range currentCases {
		store := c.writeStore(t)
		want := CurrentBuilder(store, c.host)
		if want == "" {
			want = "default"
		}
		cmd := exec.Command(real, "inspect")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "BUILDX_CONFIG=" + store, "DOCKER_HOST=" + c.host, "DOCKER_CONFIG=" + t.TempDir()}
		out, _ := cmd.CombinedOutput()
		m := inspectName.FindSubmatch(out)
		if m == nil {
			t.Errorf("%s: no builder name in buildx's output:\n%s", c.name, out)
			continue
		}
		if got := string(m[1]); !strings.EqualFold(got, want) {
			t.Errorf("%s: buildx runs on %q, CurrentBuilder says %q", c.name, got, want)
		}
	}
}

func TestSelectedBuilderName(t *testing.T) {
	dc := t.TempDir()
	store := filepath.Join(dc, "buildx")
	if err := SetCurrent(t.Context(), store, DefaultDockerHost, "dockhand-remote"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dockhand-remote", "mine"} {
		if err := os.MkdirAll(filepath.Join(store, "instances"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(store, "instances", name), []byte(`{"Name":"`+name+`","Driver":"remote"}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(filepath.Join(store, "current")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("current: %v %v", fi, err)
	}
	vars := func(kv ...string) func(string) string {
		return proc.LookupIn(append([]string{"DOCKER_CONFIG=" + dc}, kv...))
	}
	for _, c := range []struct {
		name   string
		lookup func(string) string
		want   string
	}{
		{"dockhand's global current", vars(), "dockhand-remote"},
		{"on another docker endpoint too", vars("DOCKER_HOST=tcp://10.0.0.9:2375"), "dockhand-remote"},
		{"BUILDX_BUILDER first", vars("BUILDX_BUILDER=mine"), "mine"},
		{"another store: its context's builder", vars("BUILDX_CONFIG=" + t.TempDir()), "default"},
		{"another store, a docker context", vars("BUILDX_CONFIG="+t.TempDir(), "DOCKER_CONTEXT=ctx"), "ctx"},
	} {
		if got := SelectedBuilderName(c.lookup); got != c.want {
			t.Errorf("%s: SelectedBuilderName = %q, want %q", c.name, got, c.want)
		}
	}
	// The step's own `docker buildx use mine` (buildx files it under the
	// endpoint, not global) takes over.
	if err := os.WriteFile(filepath.Join(store, "current"), []byte(`{"Key":"unix:///var/run/docker.sock","Name":"mine","Global":false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := SelectedBuilderName(vars()); got != "mine" {
		t.Errorf("after the step's `buildx use mine`: %q", got)
	}
}

func TestCurrentKey(t *testing.T) {
	dc := t.TempDir()
	if err := os.WriteFile(filepath.Join(dc, "config.json"), []byte(`{"currentContext":"remote-ctx"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"default socket", nil, DefaultDockerHost},
		{"DOCKER_HOST", []string{"DOCKER_HOST=tcp://h:2375"}, "tcp://h:2375"},
		{"DOCKER_CONTEXT", []string{"DOCKER_CONTEXT=ctx"}, "ctx"},
		{"DOCKER_HOST beats DOCKER_CONTEXT", []string{"DOCKER_CONTEXT=ctx", "DOCKER_HOST=tcp://h:2375"}, "tcp://h:2375"},
		{"config.json's currentContext", []string{"DOCKER_CONFIG=" + dc}, "remote-ctx"},
	} {
		if got := CurrentKey(proc.LookupIn(c.env)); got != c.want {
			t.Errorf("%s: CurrentKey = %q, want %q", c.name, got, c.want)
		}
	}
}

// lookupKV looks KEY up in KEY=VALUE strings, the last one winning.
