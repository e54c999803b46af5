// Package harness starts the real components dockhand's end-to-end tests run
// against — buildkitd (OCI worker with runc), a distribution registry, an
// S3-compatible server — on loopback with temporary roots, and stops every
// process it started, whatever happened to the test.
//
// The components are the ones `make tools` builds into .tools/bin. A missing
// component is an error, never a reason to skip.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Tools are the binaries of the real components.
var Tools = []string{"buildkitd", "buildctl", "docker", "docker-buildx", "docker-compose", "dockerd", "registry", "s3server", "buildkite-agent", "runc", "busybox", "jq", "packer"}

// startTimeout bounds how long a component may take to become ready.
const startTimeout = 60 * time.Second

// Kit owns a working directory and every process started in it.
type Kit struct {
	Dir     string // working root: logs, data, sockets
	ToolBin string // where the real components live

	mu       sync.Mutex
	procs    []*proc
	cleanups []func() // run by Close after the processes are stopped
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// FindToolBin returns the directory holding the real components:
// $DOCKHAND_TOOLS_BIN, else .tools/bin at the repository root.
func FindToolBin(environ []string) (string, error) {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "DOCKHAND_TOOLS_BIN="); ok && v != "" {
			return v, nil
		}
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".tools", "bin"), nil
}

// RepoRoot walks up from the working directory to dockhand's go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(b), "module github.com/dockhand-ci/dockhand\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("dockhand's go.mod not found above the working directory")
		}
		dir = parent
	}
}

// New makes a kit rooted at dir, checking that every real component is there.
func New(dir string) (*Kit, error) {
	bin, err := FindToolBin(os.Environ())
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, t := range append(slices.Clone(Tools), Stack.VersionedTools()...) {
		if fi, err := os.Stat(filepath.Join(bin, t)); err != nil || fi.Mode()&0o111 == 0 {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("real components missing from %s: %s (run 'make tools')", bin, strings.Join(missing, ", "))
	}
	return &Kit{Dir: dir, ToolBin: bin}, nil
}

// Path is a PATH with the real components first.
func (k *Kit) Path() string {
	return k.ToolBin + string(os.PathListSeparator) + os.Getenv("PATH")
}

// Bin returns the path of one real component.
func (k *Kit) Bin(name string) string { return filepath.Join(k.ToolBin, name) }

// start runs a long-lived component in its own process group, logging to
// Dir/name.log. The process is killed if the test process dies.
func (k *Kit) start(name string, env []string, args ...string) (*proc, error) {
	logPath := filepath.Join(k.Dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(baseEnv(), "PATH="+k.Path())
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(p.done) }()
	k.mu.Lock()
	k.procs = append(k.procs, p)
	k.mu.Unlock()
	return p, nil
}

// waitReady polls ready until it succeeds, the process exits, or the start
// timeout passes. It is readiness polling with a bound, not a fixed sleep.
func (p *proc) waitReady(ready func() error) error {
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		if err = ready(); err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); log:\n%s", p.name, p.cmd.ProcessState, tail(p.log, 30))
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v; log:\n%s", p.name, startTimeout, err, tail(p.log, 30))
		}
	}
}

// stop ends a process group: SIGTERM, then SIGKILL if it lingers.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	// Anything left in the group (a runc child) goes too.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// Close stops every process, newest first, and removes mounts left under Dir.
func (k *Kit) Close() error {
	k.mu.Lock()
	procs := slices.Clone(k.procs)
	k.procs = nil
	k.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	err := unmountUnder(k.Dir)
	k.mu.Lock()
	cleanups := k.cleanups
	k.cleanups = nil
	k.mu.Unlock()
	for _, c := range cleanups {
		c()
	}
	return err
}

// unmountUnder detaches every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			points = append(points, fields[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// Logs returns the last lines of every component's log, for failure reports.
func (k *Kit) Logs() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b strings.Builder
	for _, p := range k.procs {
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.name, p.log, tail(p.log, 40))
	}
	return b.String()
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort reserves a loopback port and returns it; the listener is closed so
// the component can bind it.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func dialReady(network, addr string) func() error {
	return func() error {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

func httpReady(url string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// Pids returns the process ids of the components still running.
func (k *Kit) Pids() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	var pids []int
	for _, p := range k.procs {
		select {
		case <-p.done:
		default:
			pids = append(pids, p.cmd.Process.Pid)
		}
	}
	return pids
}

// Proc is a process started with Kit.Start.
type Proc struct{ p *proc }

// Start runs a program under the kit (logged to Dir/name.log, stopped by
// Close), for callers that are not tests, such as the demo.
func (k *Kit) Start(name string, env []string, argv ...string) (*Proc, error) {
	p, err := k.start(name, env, argv...)
	if err != nil {
		return nil, err
	}
	return &Proc{p}, nil
}

// Wait waits for the process to end and returns its exit code.
func (p *Proc) Wait() int {
	<-p.p.done
	return p.p.cmd.ProcessState.ExitCode()
}

// Log returns what the process printed.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.p.log)
	return string(b)
}

// baseEnv is the test process's environment without what would change how
// an agent or dockhand behaves (BUILDKITE_*, DOCKHAND_*, DOCKER_CONFIG) and
// without HOME, TMPDIR and PATH, which callers set.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "BUILDKITE") || strings.HasPrefix(k, "DOCKHAND_") ||
			k == "DOCKER_CONFIG" || k == "HOME" || k == "TMPDIR" || k == "PATH" {
			continue
		}
		env = append(env, kv)
	}
	return env
}
