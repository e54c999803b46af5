package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// buildRecord is one build a buildkitd remembers (its build history).
type buildRecord struct {
	Ref      string
	Platform string // the frontend's platform attribute, when set
}

// histories lists the builds a buildkitd ran, through buildctl on its
// plain unix socket.
func histories(t *testing.T, k *harness.Kit, b *harness.Buildkitd) []buildRecord {
	t.Helper()
	return historiesAt(t, k, b.Addr)
}

// historiesAt is histories of the buildkitd at addr.
func historiesAt(t *testing.T, k *harness.Kit, addr string) []buildRecord {
	t.Helper()
	out, err := k.Command(k.Dir, nil, "buildctl", "--addr", addr, "debug", "histories", "--format", "{{json .}}").CombinedOutput()
	if err != nil {
		t.Fatalf("buildctl debug histories on %s: %v\n%s", addr, err, out)
	}
	var recs []buildRecord
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var ev struct {
			Record struct {
				Ref           string
				FrontendAttrs map[string]string
			} `json:"record"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("history line %q: %v", line, err)
		}
		recs = append(recs, buildRecord{Ref: ev.Record.Ref, Platform: ev.Record.FrontendAttrs["platform"]})
	}
	return recs
}

// bootstrapRun is one `dockhand bootstrap` run outside an agent: the real
// `buildkite-agent bootstrap` runs command, with checkout skipped.
type bootstrapRun struct {
	shellResult
	took time.Duration
}

// runBootstrap runs `dockhand bootstrap --config config` for a job of
// pipeline slug running command, as the agent would start it.
func runBootstrap(t *testing.T, config, slug, command string, extraEnv ...string) bootstrapRun {
	t.Helper()
	return runBootstrapAs(t, nil, config, slug, command, extraEnv...)
}

// runBootstrapAs is runBootstrap as user u (nil: as the test), its job's
// home and build path the user's.
func runBootstrapAs(t *testing.T, u *harness.User, config, slug, command string, extraEnv ...string) bootstrapRun {
	t.Helper()
	toolBin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Error(err) // not Fatal: see runShellAs
		return bootstrapRun{shellResult: shellResult{stderr: err.Error(), code: -1}}
	}
	dir := t.TempDir()
	if u != nil {
		dir = u.TempDir(t)
		extraEnv = append([]string{"USER=" + u.Name, "LOGNAME=" + u.Name}, extraEnv...)
	}
	env := []string{
		"PATH=" + toolBin + ":/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir,
		"BUILDKITE_JOB_ID=" + fmt.Sprintf("job-%d", time.Now().UnixNano()), "BUILDKITE_COMMAND=" + command,
		"BUILDKITE_SKIP_CHECKOUT=true", "BUILDKITE_REPO=none", "BUILDKITE_COMMIT=HEAD", "BUILDKITE_BRANCH=main",
		"BUILDKITE_AGENT_NAME=e2e", "BUILDKITE_ORGANIZATION_SLUG=org", "BUILDKITE_PIPELINE_SLUG=" + slug,
		"BUILDKITE_PIPELINE_PROVIDER=git", "BUILDKITE_BUILD_PATH=" + filepath.Join(dir, "builds"),
		"BUILDKITE_HOOKS_PATH=" + filepath.Join(dir, "hooks"), "BUILDKITE_PLUGINS_PATH=" + filepath.Join(dir, "plugins"),
		"BUILDKITE_SOCKETS_PATH=" + filepath.Join(dir, "sockets"), "BUILDKITE_PTY=false", "BUILDKITE_BIN_PATH=" + toolBin,
	}
	env = append(env, extraEnv...)
	start := time.Now()
	r := runShellAs(t, u, []string{harness.DockhandBin(t), "bootstrap", "--config", config}, dir, "", env)
	return bootstrapRun{r, time.Since(start)}
}

var chosenIn = regexp.MustCompile(`builder: \S+ "\S+" on (\S+?),? .*chosen in ([0-9.]+)(ms|s)`)

// chosen returns the endpoint the job log says the builder was chosen on,
// and how long the choice took.
func chosen(t *testing.T, log string) (string, time.Duration) {
	t.Helper()
	m := chosenIn.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no chosen builder in the log:\n%s", log)
	}
	n, _ := strconv.ParseFloat(m[2], 64)
	d := time.Duration(n * float64(time.Millisecond))
	if m[3] == "s" {
		d = time.Duration(n * float64(time.Second))
	}
	return strings.TrimSuffix(m[1], ","), d
}

// stopEmbedded kills the embedded buildkitd a state dir records and
// detaches its mounts, for tests that caused one.
func stopEmbedded(t *testing.T, state string) {
	t.Helper()
	pidFile := filepath.Join(state, "buildkitd", "pid")
	b, err := os.ReadFile(pidFile)
	if err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if err := harness.StopPid(pid, 10*time.Second); err != nil {
				t.Errorf("stopping the embedded buildkitd: %v", err)
			}
		}
	}
	if err := harness.UnmountUnder(state); err != nil {
		t.Errorf("%v", err)
	}
}

// section is the dockhand section of a job log.
func section(log string) string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "dockhand: ") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// fleetKit starts the components, a fleet's TLS material, and picks the
// port the fleet's builders share on their own addresses (127.0.0.N:PORT),
// as an Auto Scaling group's instances would.
func fleetKit(t *testing.T) (*harness.Env, *harness.FleetTLS, int) {
	t.Helper()
	kit := harness.Start(t, harness.Options{})
	tls, err := kit.NewFleetTLS("fleet")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return kit, tls, port
}
