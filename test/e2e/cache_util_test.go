package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// cacheRig is a rig whose configuration turns cache injection on.
func cacheRig(t *testing.T, cacheTOML string) *rig {
	t.Helper()
	r := newRig(t)
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\n%s", r.state, cacheTOML))
	return r
}

// workDockerfile does measurable work in two RUN steps; extra adds lines.
// A RUN step that runs prints a line starting "ran-", which BuildKit's plain
// progress shows as "#N 0.123 ran-…"; one whose result came from the cache
// prints nothing.
func workDockerfile(base string, extra ...string) string {
	lines := []string{
		"FROM " + base,
		"RUN echo ran-step-one && sleep 1.5 && head -c 20000000 /dev/urandom | sha256sum > /one",
		"RUN echo ran-step-two && sleep 1.5 && head -c 20000000 /dev/urandom | md5sum > /two",
	}
	return strings.Join(append(lines, extra...), "\n") + "\n"
}

// buildCommand writes the Dockerfile, makes builder `kit` on addr and runs
// the build line, timing it (build-ms=N in the log).
func buildCommand(dockerfile, addr, build string) string {
	return fmt.Sprintf(`cat > Dockerfile <<'DOCKERFILE'
%sDOCKERFILE
docker buildx create --name kit --driver remote %s >/dev/null
start=$(date +%%s%%N)
%s
echo "build-ms=$(( ($(date +%%s%%N) - start) / 1000000 ))"`, dockerfile, addr, build)
}

var buildMS = regexp.MustCompile(`(?m)^build-ms=(\d+)`)

// buildMillis is the build time the job printed.
func buildMillis(t *testing.T, log string) int {
	t.Helper()
	m := buildMS.FindAllStringSubmatch(log, -1)
	if m == nil {
		t.Fatalf("no build-ms line in the log:\n%s", log)
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// runSteps reads the RUN steps from a job log's plain progress output.
func runSteps(log string) harness.Steps { return harness.RunSteps(log) }

// runJob runs one job to its end and fails the test unless it exits 0.
func runJob(t *testing.T, r *rig, command string, env map[string]string) string {
	t.Helper()
	id, agent := r.start(command, env)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("job exit_status = %q, want 0\n%s", f.ExitStatus, log)
	}
	return log
}

// manifestDigest returns the registry's digest of repo:tag, "" when absent.
func manifestDigest(t *testing.T, host, repo, tag string) string {
	t.Helper()
	status, digest := headManifest(t, host, repo, tag)
	if status == http.StatusNotFound {
		return ""
	}
	if status != http.StatusOK {
		t.Fatalf("HEAD %s:%s: HTTP %d", repo, tag, status)
	}
	return digest
}

// registryState maps every tag of repo to its manifest digest.
func registryState(t *testing.T, host, repo string) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + host + "/v2/" + repo + "/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	state := map[string]string{}
	if resp.StatusCode == http.StatusNotFound {
		return state
	}
	var list struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("tags of %s: %v", repo, err)
	}
	for _, tag := range list.Tags {
		state[tag] = manifestDigest(t, host, repo, tag)
	}
	return state
}

func tagsWithPrefix(state map[string]string, prefix string) []string {
	var out []string
	for _, tag := range slices.Sorted(maps.Keys(state)) {
		if strings.HasPrefix(tag, prefix) {
			out = append(out, tag)
		}
	}
	return out
}

// freshBuildkitd starts another buildkitd with an empty root.
func freshBuildkitd(t *testing.T, kit *harness.Env, name string) *harness.Buildkitd {
	t.Helper()
	b, err := kit.StartBuildkitd(name, kit.Registry.Host)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var injectionLine = regexp.MustCompile(`(?m)^dockhand: cache ([0-9a-f]{12}) \(.*\): from (.*)$`)

// injectedKeys lists the cache keys the shim reported injecting.
func injectedKeys(log string) []string {
	var keys []string
	for _, m := range injectionLine.FindAllStringSubmatch(log, -1) {
		keys = append(keys, m[1])
	}
	return keys
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
