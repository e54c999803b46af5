package shim

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/internal/proc"
	"github.com/dockhand-ci/dockhand/jobstate"
)

func TestClassifyFailure(t *testing.T) {
	refused := &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		name        string
		tail        string
		unreachable error
		lost        bool
		reason      string
	}{
		{"node killed mid-build: stream cut", "#5 [2/3] RUN wait\nERROR: failed to solve: rpc error: code = Unavailable desc = error reading from server: EOF\n", refused, true,
			"ERROR: failed to solve: rpc error: code = Unavailable desc = error reading from server: EOF"},
		{"node gone before the build", "ERROR: failed to solve: Unavailable: connection error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:4: connect: connection refused\"", refused, true, ""},
		{"transport closing", "ERROR: failed to solve: rpc error: code = Unavailable desc = transport is closing", refused, true, ""},
		{"reset", "ERROR: read tcp 10.0.0.1:5->10.0.0.2:1234: read: connection reset by peer", errors.New("i/o timeout"), true, ""},
		{"a RUN that exits 1", "#6 ERROR: process \"/bin/sh -c exit 1\" did not complete successfully: exit code: 1\nERROR: failed to solve: process \"/bin/sh -c exit 1\" did not complete successfully: exit code: 1", refused, false,
			"ERROR: failed to solve: process \"/bin/sh -c exit 1\" did not complete successfully: exit code: 1"},
		{"a RUN that failed, then the node", "process \"/bin/sh -c make\" did not complete successfully: exit code: 2\nERROR: rpc error: code = Unavailable desc = error reading from server: EOF", refused, false, ""},
		{"transport text but the node answers", "ERROR: failed to solve: rpc error: code = Unavailable desc = error reading from server: EOF", nil, false, ""},
		{"node unreachable but an ordinary error", "ERROR: failed to solve: failed to read dockerfile: open Dockerfile: no such file or directory", refused, false, ""},
		{"a Dockerfile syntax error", "ERROR: failed to solve: dockerfile parse error on line 2: unknown instruction: RUNN", refused, false, ""},
		{"nothing on stderr", "", refused, false, ""},
		{"terminal progress around the error", "\x1b[1A\x1b[0G\x1b[?25l[+] Building 3.1s\n\x1b[31mERROR: failed to solve: rpc error: code = Unavailable desc = error reading from server: EOF\x1b[0m\n", refused, true,
			"ERROR: failed to solve: rpc error: code = Unavailable desc = error reading from server: EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := ClassifyFailure(c.tail, c.unreachable)
			if f.Lost != c.lost {
				t.Errorf("Lost = %v, want %v", f.Lost, c.lost)
			}
			if c.reason != "" && f.Reason != c.reason {
				t.Errorf("Reason = %q, want %q", f.Reason, c.reason)
			}
		})
	}
}

func TestDialEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := DialEndpoint("tcp://"+addr, time.Second); err != nil {
		t.Errorf("a listening node: %v", err)
	}
	l.Close()
	if err := DialEndpoint("tcp://"+addr, time.Second); err == nil {
		t.Error("a closed node accepted a connection")
	}
	if err := DialEndpoint("unix://"+filepath.Join(t.TempDir(), "gone.sock"), time.Second); err == nil {
		t.Error("a missing socket accepted a connection")
	}
}

// fakePlugin writes a docker-buildx stand-in: it appends its BUILDX_BUILDER
// and arguments to $CALLS and its node to $CALLS.nodes, then fails as lost
// (its node is in $LOST) or as a RUN failure (FAIL_RUN set), else succeeds.
func fakePlugin(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "docker-buildx")
	script := `#!/bin/sh
echo "builder=$BUILDX_BUILDER socket=${DOCKER_CLI_PLUGIN_SOCKET:-none} args=$*" >> "$CALLS"
node=$(cat "$DOCKER_CONFIG/buildx/instances/${BUILDX_BUILDER:-dockhand-remote}" | sed 's/.*"Endpoint":"\([^"]*\)".*/\1/')
echo "#1 building on $node" >&2
echo "$node" >> "$CALLS.nodes"
if grep -qx "$node" "$LOST"; then echo 'ERROR: failed to solve: rpc error: code = Unavailable desc = error reading from server: EOF' >&2; exit 1; fi
if [ -n "$FAIL_RUN" ]; then echo 'ERROR: failed to solve: process "/bin/sh -c exit 1" did not complete successfully: exit code: 1' >&2; exit 1; fi
exit 0
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRetryCall(t *testing.T) {
	const a, b, c = "tcp://10.0.0.1:1234", "tcp://10.0.0.2:1234", "tcp://10.0.0.3:1234"
	for _, tc := range []struct {
		name     string
		lost     []string // nodes whose builds are lost (and which refuse connections)
		down     []string // nodes that refuse connections
		failRun  bool
		code     int
		runs     int
		log      string
		retried  string // the node the retry ran on ("" for none recorded)
		markDown []string
	}{
		{name: "succeeds on its node", code: 0, runs: 1},
		{name: "a RUN exits 1: not run again", failRun: true, code: 1, runs: 1},
		{name: "lost: run again on the next node", lost: []string{a}, code: 0, runs: 2,
			log: "the build lost its node " + a, retried: b, markDown: []string{a}},
		{name: "lost, next node down too: the one after", lost: []string{a}, down: []string{b}, code: 0, runs: 2, retried: c, markDown: []string{a}},
		{name: "lost twice: both reasons, no loop", lost: []string{a, b}, code: 1, runs: 2,
			log: "the build was lost twice: on " + a, retried: b, markDown: []string{a, b}},
		{name: "lost and no other node answers", lost: []string{a}, down: []string{b, c}, code: 1, runs: 1,
			log: "no other node of the pool answers", markDown: []string{a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dockerConfig := filepath.Join(dir, "docker")
			if err := buildx.WriteInstance(t.Context(), dockerConfig, buildx.Builder{Name: buildx.RemoteName, Driver: buildx.DriverRemote, Nodes: []buildx.Node{{Name: buildx.RemoteName + "0", Endpoint: a}}}); err != nil {
				t.Fatal(err)
			}
			lostFile, calls := filepath.Join(dir, "lost"), filepath.Join(dir, "calls")
			os.WriteFile(lostFile, []byte(strings.Join(tc.lost, "\n")+"\n"), 0o600)
			environ := []string{"PATH=/usr/bin:/bin", "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=buildx", "DOCKER_CONFIG=" + dockerConfig, "LOST=" + lostFile, "CALLS=" + calls,
				"DOCKER_CLI_PLUGIN_SOCKET=@sock", "DOCKHAND_JOB_DIR=" + dir}
			if tc.failRun {
				environ = append(environ, "FAIL_RUN=1")
			}
			// A node refuses connections once it has lost a build (or if down).
			refuses := func(ep string) bool {
				built, _ := os.ReadFile(calls + ".nodes")
				return slices.Contains(tc.down, ep) || slices.Contains(tc.lost, ep) && slices.Contains(strings.Fields(string(built)), ep)
			}
			job := &jobstate.State{Builder: jobstate.Builder{Kind: "remote", Name: buildx.RemoteName, Nodes: 1, Retry: &jobstate.RetryPlan{
				Endpoint: a, Fallbacks: []string{b, c}, On: true, ProbeCache: filepath.Join(dir, "builders"), ProbeTTL: time.Minute,
			}}}
			args := []string{"buildx", "build", "--builder", buildx.RemoteName, "-t", "x", "."}
			call := retryable(args, proc.LookupIn(environ), job, true)
			if call == nil {
				t.Fatal("not retryable")
			}
			var stderr bytes.Buffer
			call.real, call.environ, call.stderr = fakePlugin(t, dir), environ, &stderr
			call.dial = func(ep string, _ time.Duration) error {
				if refuses(ep) {
					return syscall.ECONNREFUSED
				}
				return nil
			}
			err := call.run(t.Context())
			code := 0
			var exit ExitError
			if errors.As(err, &exit) {
				code = exit.Code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			data, _ := os.ReadFile(calls)
			runs := strings.Split(strings.TrimSpace(string(data)), "\n")
			if len(runs) != tc.runs {
				t.Errorf("%d runs, want %d:\n%s", len(runs), tc.runs, data)
			}
			if len(runs) == 2 && runs[1] != "builder="+buildx.RetryName+" socket=none args=buildx build -t x ." {
				t.Errorf("the rerun: %s", runs[1])
			}
			if !strings.Contains(stderr.String(), tc.log) {
				t.Errorf("stderr lacks %q:\n%s", tc.log, stderr.String())
			}
			rs := jobstate.ReadRetries(dir)
			if (len(tc.markDown) > 0) != (len(rs) == 1) {
				t.Errorf("retries recorded: %+v", rs)
			}
			if len(rs) == 1 && (rs[0].Lost != a || rs[0].Node != tc.retried || !strings.Contains(rs[0].Reason, "Unavailable")) {
				t.Errorf("retry recorded as %+v", rs[0])
			}
			p := &builder.Prober{CacheDir: filepath.Join(dir, "builders"), TTL: time.Minute}
			cached := p.Cached()
			for _, ep := range tc.markDown {
				r, ok := cached[cloud.ProbeTarget{Kind: cloud.ProbeBuildkit, Endpoint: ep}.Key()]
				if !ok || r.OK || !strings.HasPrefix(r.Error, "lost a build: ") {
					t.Errorf("%s not marked down: %+v", ep, r)
				}
			}
			if len(cached) != len(tc.markDown) {
				t.Errorf("%d marked down, want %d", len(cached), len(tc.markDown))
			}
		})
	}
}

func TestRetryableOnlyForThePoolsBuilds(t *testing.T) {
	plan := &jobstate.RetryPlan{Endpoint: "tcp://a:1", Fallbacks: []string{"tcp://b:1"}, On: true}
	job := func(kind string) *jobstate.State {
		return &jobstate.State{Builder: jobstate.Builder{Kind: kind, Name: buildx.RemoteName, Nodes: 1, Retry: plan}}
	}
	environ := []string{"DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=buildx", "DOCKER_CONFIG=/job/docker", "BUILDX_BUILDER=" + buildx.RemoteName}
	for _, c := range []struct {
		name    string
		args    []string
		environ []string
		job     *jobstate.State
		on      bool
		want    bool
	}{
		{"a build on the pool", []string{"buildx", "build", "."}, environ, job("remote"), true, true},
		{"a bake on the pool", []string{"buildx", "bake"}, environ, job("remote"), true, true},
		{"retry off (DOCKHAND_RETRY_LOST_BUILDS=false)", []string{"buildx", "build", "."}, environ, job("remote"), false, false},
		{"not a build", []string{"buildx", "ls"}, environ, job("remote"), true, false},
		{"help", []string{"buildx", "build", "--help"}, environ, job("remote"), true, false},
		{"another builder", []string{"buildx", "build", "--builder", "mine", "."}, environ, job("remote"), true, false},
		{"not the pool", []string{"buildx", "build", "."}, environ, job("namespace"), true, false},
		{"no job", []string{"buildx", "build", "."}, environ, nil, true, false},
		{"BUILDX_CONFIG elsewhere", []string{"buildx", "build", "."}, append(environ, "BUILDX_CONFIG=/x"), job("remote"), true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := retryable(c.args, proc.LookupIn(c.environ), c.job, c.on) != nil; got != c.want {
				t.Errorf("retryable = %v, want %v", got, c.want)
			}
		})
	}
}

func TestRetryFollowsTheStepsSetting(t *testing.T) {
	job := &jobstate.State{Builder: jobstate.Builder{Kind: "remote", Name: buildx.RemoteName, Retry: &jobstate.RetryPlan{On: true}}}
	for _, c := range []struct {
		environ []string
		on      bool
		config  bool
	}{
		{nil, true, true},
		{[]string{"DOCKHAND_RETRY_LOST_BUILDS=false"}, false, true},
		{[]string{"DOCKHAND_RETRY_LOST_BUILDS=true"}, true, false},
		{nil, false, false},
		{[]string{"DOCKHAND_RETRY_LOST_BUILDS=maybe"}, true, true}, // ignored, with a warning
	} {
		job.Chosen().Retry.On = c.config
		s, warnings := shimSettings(job, proc.LookupIn(c.environ))
		if s.RetryLost != c.on {
			t.Errorf("config %v, %q: RetryLost = %v, want %v", c.config, c.environ, s.RetryLost, c.on)
		}
		if bad := len(c.environ) > 0 && strings.HasSuffix(c.environ[0], "maybe"); bad != (len(warnings) == 1) {
			t.Errorf("%q: warnings %q", c.environ, warnings)
		}
	}
}

func TestRunChildKeepsATerminal(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "plugin")
	os.WriteFile(script, []byte("#!/bin/sh\nif [ -t 2 ]; then echo 'stderr is a terminal' >&2; else echo 'stderr is a pipe' >&2; fi\nprintf 'a\\nb\\n' >&2\nexit 3\n"), 0o755)
	run := func() (int, string) {
		var out bytes.Buffer
		code, end := runChild(script, nil, []string{"PATH=/usr/bin:/bin"}, &out)
		if out.String() != end {
			t.Errorf("copied %q, kept %q", out.String(), end)
		}
		return code, end
	}
	childTerminal = nil
	if code, end := run(); code != 3 || end != "stderr is a pipe\na\nb\n" {
		t.Errorf("without a terminal: exit %d, %q", code, end)
	}
	// A terminal to stand for the job's (the agent's pseudo-terminal).
	jobTerm, jobSide, err := openPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer jobTerm.Close()
	childTerminal = jobSide
	defer func() { childTerminal = os.Stderr; jobSide.Close() }()
	if code, end := run(); code != 3 || end != "stderr is a terminal\na\nb\n" {
		t.Errorf("with a terminal: exit %d, %q (want the bytes unchanged: no \\r added)", code, end)
	}
}
