package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/report"
	"github.com/dockhand-ci/dockhand/test/agentapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// Soak sizes: `make test` runs the CI size, `make soak` sets these larger.
const (
	soakJobsVar     = "DOCKHAND_SOAK_JOBS"
	soakParallelVar = "DOCKHAND_SOAK_PARALLEL"
)

// soak is one soak run: the rig (one state dir for every job), the kit of
// real components the builds use, and the mark on every job's environment.
type soak struct {
	r     *rig
	kit   *harness.Env
	runID string
}

// soakKind is one kind of job in the soak: what it runs (and, once the log
// shows waitFor, what the test does to it), and the finish the plain
// bootstrap would report for it.
type soakKind struct {
	name    string
	prepare func(s *soak, n int) (command string, during func(), err error)
	waitFor string
	want    agentapi.Finish
}

func exitCode(n int) int { return []int{0, 1, 3, 42}[n%4] }

var soakKinds = []soakKind{
	{name: "exit", prepare: func(_ *soak, n int) (string, func(), error) {
		return fmt.Sprintf("echo soak job %d; exit %d", n, exitCode(n)), nil, nil
	}},
	// docker login's path: the credential helper stores the job's login and
	// gives it back; another job's host is not found in this job.
	{name: "login", want: agentapi.Finish{ExitStatus: "0"}, prepare: func(_ *soak, n int) (string, func(), error) {
		return fmt.Sprintf(`set -e
printf '{"ServerURL":"soak-%d.example","Username":"u%d","Secret":"%%s"}' "$SOAK_SECRET" | docker-credential-dockhand store
echo soak-%d.example | docker-credential-dockhand get | grep -q "\"Secret\":\"$SOAK_SECRET\""
if echo soak-%d.example | docker-credential-dockhand get; then echo "another job's login was served"; exit 9; fi`, n, n, n, n+1), nil, nil
	}},
	{name: "cancel", waitFor: "\nREADY", want: agentapi.Finish{ExitStatus: "-1", Signal: "SIGTERM", SignalReason: "cancel"},
		prepare: func(s *soak, n int) (string, func(), error) {
			return `echo RE""ADY; sleep 60; echo NE""VER`, nil, nil // no during: the test cancels the job
		}},
	// dockhand's own bootstrap is SIGKILLed mid-command (the command's
	// grandparent): the agent reports the kill, as it would of its own.
	{name: "sigkill", want: agentapi.Finish{ExitStatus: "-1", Signal: "SIGKILL"}, prepare: func(*soak, int) (string, func(), error) {
		return `echo "real-bootstrap-pid=$PPID"
kill -KILL "$(awk '{print $4}' /proc/$PPID/stat)"
sleep 30; echo NE""VER`, nil, nil
	}},
	// A build whose cache registry is down (cache.repository points at a
	// closed port): the cache flags are injected, and the build passes.
	{name: "cache-down", want: agentapi.Finish{ExitStatus: "0"}, prepare: func(s *soak, n int) (string, func(), error) {
		return "set -e\n" + buildCommand(fmt.Sprintf("FROM %s\nRUN echo ran-soak-%d-%s\n", s.kit.BaseImage, n, s.runID), s.kit.Buildkitd.Addr,
			"docker buildx build --builder kit --progress plain ."), nil, nil
	}},
	// A build on a remote builder that is killed mid-build: the build fails
	// as it would without dockhand (buildx exits 1), nothing hangs.
	{name: "builder-killed", waitFor: "BUILD-STARTED", want: agentapi.Finish{ExitStatus: "1"}, prepare: func(s *soak, n int) (string, func(), error) {
		b, err := s.kit.StartBuildkitd(fmt.Sprintf("soak-%s-%d", s.runID, n), s.kit.Registry.Host)
		if err != nil {
			return "", nil, err
		}
		// BUILD""-STARTED: the command's own echo in the log does not match.
		return "set -e\n" + buildCommand(fmt.Sprintf("FROM %s\nRUN echo BUILD\"\"-STARTED-%d && sleep 60\n", s.kit.BaseImage, n), b.Addr,
			"docker buildx build --builder kit --progress plain ."), b.Stop, nil
	}},
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// TestSoak runs DOCKHAND_SOAK_JOBS jobs (40) through the real agent and
// dockhand, DOCKHAND_SOAK_PARALLEL (6) at a time, on one state dir, the
// kinds of soakKinds in turn: exit codes, a login and its get, a cancel
// mid-command, a SIGKILL of dockhand's bootstrap mid-command, a build whose
// cache registry is down, a build whose remote builder is killed mid-build.
// Then: every job finished as the plain bootstrap would report it, nothing
// is left under STATE/jobs once the next job has swept, no job's process
// still runs, and no secret is in any file under the state dir.
func TestSoak(t *testing.T) {
	t.Parallel()
	jobs, parallel := envInt(soakJobsVar, 40), envInt(soakParallelVar, 6)
	kit := harness.Start(t, harness.Options{})
	// One state dir and one configuration for every job: the cache goes to
	// a registry that is down (nothing listens on port 1).
	r := cacheRig(t, "[cache]\nrepository = \"127.0.0.1:1/soak-cache\"\n")
	s := &soak{r: r, kit: kit, runID: agentapi.NewJobID()[:8]}
	runID := s.runID
	start := time.Now()
	type outcome struct {
		n       int
		kind    string
		got     agentapi.Finish
		err     error
		bootPid string // the real bootstrap of a sigkill job
	}
	results := make([]outcome, jobs)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for n := range jobs {
		k := soakKinds[n%len(soakKinds)]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			o := outcome{n: n, kind: k.name}
			o.got, o.bootPid, o.err = s.job(k, n)
			want := k.want
			if k.name == "exit" {
				want = agentapi.Finish{ExitStatus: strconv.Itoa(exitCode(n))}
			}
			if o.err == nil && (o.got.ExitStatus != want.ExitStatus || o.got.Signal != want.Signal || o.got.SignalReason != want.SignalReason) {
				o.err = fmt.Errorf("finished %+v, want %+v (as the plain bootstrap reports)", o.got, want)
			}
			results[n] = o
		})
	}
	wg.Wait()
	failures := 0
	kinds := map[string]int{}
	for _, o := range results {
		kinds[o.kind]++
		if o.err != nil {
			failures++
			t.Errorf("job %d (%s): %v", o.n, o.kind, o.err)
		}
		// A killed dockhand's real bootstrap ends (SIGTERM as dockhand dies),
		// and holds the job dir until then.
		if o.bootPid != "" && !harness.WaitGone(o.bootPid, 30*time.Second) {
			t.Errorf("job %d: the real bootstrap (pid %s) runs on 30s after dockhand was killed", o.n, o.bootPid)
		}
	}
	// The next job on the host sweeps what killed jobs left.
	if got, _, err := s.job(soakKinds[0], 0); err != nil || got.ExitStatus != "0" {
		t.Errorf("the sweeping job: %+v, %v", got, err)
	}
	// One metrics line for every job that ran to its end: a cancelled job
	// and one whose dockhand was killed write none.
	metrics, _ := os.ReadFile(filepath.Join(r.state, report.MetricsFile))
	if got, want := bytes.Count(metrics, []byte("\n")), jobs+1-kinds["cancel"]-kinds["sigkill"]; got != want {
		t.Errorf("%s has %d lines, want one per job that ran to its end (%d)", report.MetricsFile, got, want)
	}
	leftovers := r.jobDirs()
	if len(leftovers) != 0 {
		t.Errorf("left under STATE/jobs: %q", leftovers)
	}
	orphans := soakOrphans(runID)
	if len(orphans) != 0 {
		t.Errorf("job processes still running: %v", orphans)
	}
	secrets := 0
	filepath.WalkDir(r.state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte("soak-secret-"+runID)) {
			secrets++
			t.Errorf("a job's secret is in %s", p)
		}
		return nil
	})
	t.Logf("soak: %d jobs (%v), %d at a time, one state dir: %d failures, %d leftovers, %d orphans, %d secrets in the state dir, %d metrics lines, %s",
		jobs+1, kinds, parallel, failures, len(leftovers), len(orphans), secrets, bytes.Count(metrics, []byte("\n")), time.Since(start).Round(time.Millisecond))
}

var realBootstrapPid = regexp.MustCompile(`real-bootstrap-pid=(\d+)`)

// job runs job n, of kind k, to its finish. It is safe to call from several
// goroutines: it reports problems instead of failing the test.
func (s *soak) job(k soakKind, n int) (agentapi.Finish, string, error) {
	command, during, err := k.prepare(s, n)
	if err != nil {
		return agentapi.Finish{}, "", err
	}
	env := branchEnv("main")
	env["SOAK_MARK"], env["SOAK_SECRET"] = s.runID, fmt.Sprintf("soak-secret-%s-%d", s.runID, n)
	id, agent := s.r.start(command, env)
	ctx, cancel := context.WithTimeout(s.r.t.Context(), 3*time.Minute)
	defer cancel()
	if k.waitFor != "" {
		if err := s.r.srv.WaitLog(ctx, id, k.waitFor); err != nil {
			return agentapi.Finish{}, "", fmt.Errorf("%w\n%s", err, s.r.srv.PlainLog(id))
		}
		if during != nil {
			during()
		} else {
			s.r.srv.Cancel(id)
		}
	}
	f, err := s.r.srv.WaitFinish(ctx, id)
	if err != nil {
		return f, "", fmt.Errorf("%w\nlog:\n%s\nagent:\n%s", err, s.r.srv.PlainLog(id), agent.Output())
	}
	if _, err := agent.Wait(ctx); err != nil {
		return f, "", fmt.Errorf("agent: %w", err)
	}
	log := s.r.srv.PlainLog(id)
	if strings.Contains(log, "NEVER") {
		return f, "", fmt.Errorf("the command ran on after its end:\n%s", log)
	}
	if k.name == "cache-down" && len(injectedKeys(log)) != 1 {
		return f, "", fmt.Errorf("no cache flags injected for the build:\n%s", log)
	}
	pid := ""
	if m := realBootstrapPid.FindStringSubmatch(log); m != nil {
		pid = m[1]
	}
	return f, pid, nil
}

// soakOrphans lists the processes still carrying the soak's mark in their
// environment: a job's command or bootstrap that outlived its job.
func soakOrphans(runID string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(environ, []byte("SOAK_MARK="+runID+"\x00")) {
			continue
		}
		if harness.WaitGone(e.Name(), 0) {
			continue // a zombie: ended, not yet reaped
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		found = append(found, e.Name()+" "+strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	return found
}
