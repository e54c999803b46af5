package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/jobstate"
	"golang.org/x/sys/unix"
)

// Failure is how a build that exited non-zero failed.
type Failure struct {
	Lost   bool   // its node died or became unreachable: it may run again
	Reason string // the build's last error line
}

// transportErrors are the ends of a buildx call whose connection to its
// node broke: gRPC's Unavailable, a refused or reset connection, a stream
// cut short. Only with a node that does not answer now do they mean lost.
var transportErrors = []string{
	"code = unavailable",
	"unavailable: ",
	"connection refused",
	"error reading from server",
	"transport is closing",
	"connection reset by peer",
	"broken pipe",
	"use of closed network connection",
}

// stepFailed is BuildKit's own failure of a build step (a RUN that exited
// non-zero): the build failed on its own, and never runs again.
const stepFailed = "did not complete successfully"

// ClassifyFailure says whether a build that exited non-zero, with stderr
// ending in tail, was lost: its last error speaks of the transport to its
// node and the node does not answer now (unreachable is the error of a
// connect just made; nil when the node accepted it). A step's own failure
// is never lost, whatever else the output says.
func ClassifyFailure(tail string, unreachable error) Failure {
	f := Failure{Reason: lastError(tail)}
	lower := strings.ToLower(tail)
	if strings.Contains(lower, stepFailed) || unreachable == nil {
		return f
	}
	for _, t := range transportErrors {
		if strings.Contains(lower, t) {
			f.Lost = true
			break
		}
	}
	return f
}

// lastError is the last line of s that says ERROR, else its last non-empty
// line, without terminal escapes and bounded in length.
func lastError(s string) string {
	lines := strings.Split(stripEscapes(s), "\n")
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(strings.TrimSuffix(lines[i], "\r"))
		if l == "" {
			continue
		}
		if last == "" {
			last = l
		}
		if strings.Contains(l, "ERROR") {
			last = l
			break
		}
	}
	if len(last) > 300 {
		last = last[:300] + "…"
	}
	return last
}

// stripEscapes drops ANSI CSI sequences (a terminal's progress display).
func stripEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// DialEndpoint connects to a buildkitd endpoint (tcp:// or unix://) within
// timeout and closes the connection: nil when something accepts there. An
// endpoint of another scheme is taken as reachable (nothing to dial).
func DialEndpoint(endpoint string, timeout time.Duration) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil
	}
	network, addr := "tcp", u.Host
	switch u.Scheme {
	case "unix":
		network, addr = "unix", u.Path
	case "tcp":
	default:
		return nil
	}
	c, err := net.DialTimeout(network, addr, timeout)
	if err == nil {
		c.Close()
	}
	return err
}

// lostDial bounds the connect that tells a lost node from a failed build.
const lostDial = time.Second

// tailSize is how much of a build's stderr is kept to classify a failure.
const tailSize = 16 << 10

// tail keeps the last tailSize bytes written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > tailSize {
		t.b = t.b[len(t.b)-tailSize:]
	}
	return len(p), nil
}

// ExitError is the real plugin's exit status, when the shim ran it as a
// child: the shim's own exit status.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// retryCall is one build call the shim runs as a child, to run it again on
// another node if its node is lost.
type retryCall struct {
	real         string
	args         []string
	environ      []string
	plan         *jobstate.RetryPlan
	builder      string // the job's builder
	dockerConfig string
	jobDir       string
	stderr       io.Writer
	// dial checks a node; nil is DialEndpoint. Tests replace it.
	dial func(endpoint string, timeout time.Duration) error
}

// retryable returns the call to run as a child, or nil when the shim
// should exec the real plugin as always: not a build or bake, retries off,
// no other node, or a builder that is not the job's pool builder.
func retryable(args []string, lookup func(string) string, job *jobstate.State, on bool) *retryCall {
	if job == nil || job.Chosen() == nil || job.Chosen().Retry == nil || !on {
		return nil
	}
	sel := job.Chosen()
	if sel.Kind != config.BuilderRemote || len(sel.Retry.Fallbacks) == 0 || lookup("BUILDX_CONFIG") != "" || lookup("DOCKER_CONFIG") == "" {
		return nil
	}
	inv, err := ParseInvocation(args, lookup("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND") == "")
	if err != nil || inv.Help || (inv.Command != CommandBuild && inv.Command != CommandBake) {
		return nil
	}
	if !strings.EqualFold(builderFacts(inv.Builder, lookup, nil).Name, sel.Name) {
		return nil
	}
	return &retryCall{args: args, plan: sel.Retry, builder: sel.Name, dockerConfig: lookup("DOCKER_CONFIG"), jobDir: lookup("DOCKHAND_JOB_DIR")}
}

// run runs the build; when it fails because its node was lost, it runs it
// once more on the next healthy node, and says so. The result is the exit
// status of the last run. ctx bounds its records (the probe cache, the
// job's retries), not the builds, which the job's signals end.
func (c *retryCall) run(ctx context.Context) error {
	code, out := runChild(c.real, c.args, c.environ, c.stderr)
	if code == 0 {
		return nil
	}
	first := ClassifyFailure(out, c.dialer()(c.plan.Endpoint, lostDial))
	if !first.Lost {
		return ExitError{code}
	}
	c.markDown(ctx, c.plan.Endpoint, first.Reason)
	rec := jobstate.Retry{Lost: c.plan.Endpoint, Reason: first.Reason, At: time.Now().UTC()}
	next, why := c.next()
	if next == "" {
		c.log().Warnf("the build lost its node %s (%s), and %s: not run again", c.plan.Endpoint, first.Reason, why)
		rec.Error = why
		c.record(ctx, rec)
		return ExitError{code}
	}
	rec.Node = next
	args, environ, err := c.onNode(ctx, next)
	if err != nil {
		c.log().Warnf("the build lost its node %s (%s), and cannot run again: %v", c.plan.Endpoint, first.Reason, err)
		rec.Error = err.Error()
		c.record(ctx, rec)
		return ExitError{code}
	}
	c.log().Warnf("the build lost its node %s (%s); running it again, once, on %s (remote.retry_lost_builds)", c.plan.Endpoint, first.Reason, next)
	code, out = runChild(c.real, args, environ, c.stderr)
	if code != 0 {
		second := ClassifyFailure(out, c.dialer()(next, lostDial))
		rec.Error = second.Reason
		if second.Lost {
			c.markDown(ctx, next, second.Reason)
			c.log().Warnf("the build was lost twice: on %s (%s), then on %s (%s); not run again", c.plan.Endpoint, first.Reason, next, second.Reason)
		}
	}
	c.record(ctx, rec)
	if code != 0 {
		return ExitError{code}
	}
	return nil
}

// log is the job log: the shim's stderr, which the child shares.
func (c *retryCall) log() *joblog.Logger { return joblog.New(c.stderr) }

func (c *retryCall) dialer() func(string, time.Duration) error {
	if c.dial != nil {
		return c.dial
	}
	return DialEndpoint
}

// next is the first fallback that accepts a connection now, or "" and why
// there is none.
func (c *retryCall) next() (string, string) {
	for _, ep := range c.plan.Fallbacks {
		if ep != c.plan.Endpoint && c.dialer()(ep, lostDial) == nil {
			return ep, ""
		}
	}
	return "", fmt.Sprintf("no other node of the pool answers (%s)", strings.Join(c.plan.Fallbacks, ", "))
}

// onNode writes the retry instance, the job's builder with node as its
// one node, and returns the call's arguments and environment for it: the
// job's builder named by --builder is left out, BUILDX_BUILDER names the
// retry instance, and the plugin socket, which docker serves to one
// connection, is not passed on. stdin is rewound when the call reads it.
func (c *retryCall) onNode(ctx context.Context, node string) ([]string, []string, error) {
	b, err := buildx.ReadInstance(c.dockerConfig, "remote", c.builder)
	if err != nil {
		return nil, nil, err
	}
	n := buildx.Node{Name: buildx.RetryName + "0", Endpoint: node}
	if strings.HasPrefix(node, "tcp://") {
		n.TLS = c.plan.TLS
	}
	b.Name, b.Nodes = buildx.RetryName, []buildx.Node{n}
	if err := buildx.WriteInstance(ctx, c.dockerConfig, b); err != nil {
		return nil, nil, err
	}
	if readsStdin(c.args) {
		if _, err := os.Stdin.Seek(0, io.SeekStart); err != nil {
			return nil, nil, fmt.Errorf("its input on stdin cannot be read again: %w", err)
		}
	}
	var args []string
	for i := 0; i < len(c.args); i++ {
		a := c.args[i]
		if a == "--builder" && i+1 < len(c.args) && strings.EqualFold(c.args[i+1], c.builder) {
			i++
			continue
		}
		if v, ok := strings.CutPrefix(a, "--builder="); ok && strings.EqualFold(v, c.builder) {
			continue
		}
		args = append(args, a)
	}
	environ := slices.DeleteFunc(slices.Clone(c.environ), func(kv string) bool {
		return strings.HasPrefix(kv, "DOCKER_CLI_PLUGIN_SOCKET=") || strings.HasPrefix(kv, "BUILDX_BUILDER=")
	})
	return args, append(environ, "BUILDX_BUILDER="+buildx.RetryName), nil
}

// readsStdin reports whether a call's arguments name stdin ("-" as the
// context or a file).
func readsStdin(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool { return a == "-" || strings.HasSuffix(a, "=-") })
}

// markDown shares the lost node's state with the host's next jobs: down
// in the probe cache until it is probed again after the cache's TTL.
func (c *retryCall) markDown(ctx context.Context, endpoint, reason string) {
	if c.plan.ProbeCache == "" || c.plan.ProbeTTL <= 0 {
		return
	}
	p := &builder.Prober{CacheDir: c.plan.ProbeCache, TTL: c.plan.ProbeTTL, Timeout: time.Second}
	t := cloud.ProbeTarget{Kind: cloud.ProbeBuildkit, Endpoint: endpoint}
	if strings.HasPrefix(endpoint, "tcp://") {
		t.TLS = c.plan.TLS
	}
	if err := p.MarkDown(ctx, t, "lost a build: "+reason); err != nil {
		c.log().Warnf("node %s not marked down for the host's next jobs: %v", endpoint, err)
	}
}

// record appends r to the job's RetriesFile for the job report.
func (c *retryCall) record(ctx context.Context, r jobstate.Retry) {
	if c.jobDir == "" {
		return
	}
	if err := jobstate.RecordRetry(ctx, c.jobDir, r); err != nil {
		c.log().Warnf("the retry is not in the job report: %v", err)
	}
}

// runChild runs the real plugin as a child with the shim's stdin and
// stdout, its stderr copied to stderr and kept (the end) to classify a
// failure, and the signals a job gets forwarded. When stderr is a terminal
// the child's is a terminal too (a pseudo-terminal of the same size, no
// output processing), so buildx shows the progress display it would show
// without dockhand. It returns the exit status (128+N for a child killed
// by signal N) and the end of stderr.
func runChild(real string, args, environ []string, stderr io.Writer) (int, string) {
	var end tail
	cmd := exec.Command(real, args...)
	cmd.Env = environ
	cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	copied := io.MultiWriter(stderr, &end)
	cmd.Stderr = copied
	var master *os.File
	var drained chan struct{}
	if m, slave, err := terminalLike(childTerminal); err == nil {
		master, cmd.Stderr = m, slave
		defer slave.Close()
		defer master.Close()
		drained = make(chan struct{})
		go func() {
			io.Copy(copied, master) // ends with EIO once the child's side is closed
			close(drained)
		}()
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		joblog.New(stderr).Warnf("running %s: %v", real, err)
		return 127, ""
	}
	if master != nil {
		cmd.Stderr.(*os.File).Close() // the child holds it now
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	if drained != nil {
		// A grandchild that kept the terminal open must not hold the job.
		select {
		case <-drained:
		case <-time.After(5 * time.Second):
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), string(end.b)
		}
		return exit.ExitCode(), string(end.b)
	}
	if err != nil {
		return 1, string(end.b)
	}
	return 0, string(end.b)
}

// childTerminal is the shim's stderr as a file: whether it is a terminal
// decides what the child's stderr is. Tests replace it.
var childTerminal = os.Stderr

// terminalLike opens a pseudo-terminal the size of f when f is a terminal:
// its master to read, its slave for the child, with output processing off
// so the bytes reach f as the child wrote them. An error when f is not a
// terminal or no pseudo-terminal can be had: the child then gets a pipe.
func terminalLike(f *os.File) (master, slave *os.File, err error) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return nil, nil, err
	}
	if master, slave, err = openPTY(); err != nil {
		return nil, nil, err
	}
	if t, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, t)
	}
	unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, ws)
	return master, slave, nil
}

// openPTY opens a new pseudo-terminal: its master and its slave.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*os.File, *os.File, error) { m.Close(); return nil, nil, err }
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fail(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fail(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	return m, s, nil
}
