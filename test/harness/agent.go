package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LockedBuffer is a buffer that one goroutine may write while another
// reads it: a process's output, a log a background goroutine writes.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Agent is a running `buildkite-agent`.
type Agent struct {
	Home, Tmp string
	cmd       *exec.Cmd
	out       *LockedBuffer
	done      chan struct{}
	err       error // from Wait, valid once done is closed
}

// StartAgent starts the real `buildkite-agent ARGS...` as root with its own
// HOME and TMPDIR (both returned in the Agent), no inherited BUILDKITE_*
// variables, the tools dir first on PATH and extraEnv. The agent and
// everything it started are killed when the test ends.
func StartAgent(t testing.TB, args []string, extraEnv ...string) *Agent {
	t.Helper()
	return StartAgentWith(t, AgentOptions{}, args, extraEnv...)
}

// AgentOptions choose who runs the agent and which agent.
type AgentOptions struct {
	// User runs the agent (nil: root), as the Elastic CI Stack runs it:
	// HOME and TMPDIR are the user's, and its login variables are set. What
	// the arguments name (build path, hooks, config) must be reachable for
	// the user: the caller's to arrange.
	User *User
	// Version is the agent's (see Versions; "" is the current one). Its own
	// dir comes first on PATH, so the job's `buildkite-agent` (and dockhand's
	// child bootstrap) is the same agent.
	Version string
}

// StartAgentWith is StartAgent as o says.
func StartAgentWith(t testing.TB, o AgentOptions, args []string, extraEnv ...string) *Agent {
	t.Helper()
	binDir, err := FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	bin, err := VersionedBin(binDir, "buildkite-agent", o.Version)
	if err != nil {
		t.Fatalf("the real buildkite-agent: %v", err)
	}
	path := binDir + string(os.PathListSeparator) + os.Getenv("PATH")
	if o.Version != "" {
		path = filepath.Dir(bin) + string(os.PathListSeparator) + path
	}
	home, tmp := t.TempDir(), t.TempDir()
	env := baseEnv()
	if o.User != nil {
		home, tmp = o.User.TempDir(t), o.User.TempDir(t)
		env = append(env, o.User.Env()...)
	}
	env = append(env, "HOME="+home, "TMPDIR="+tmp, "PATH="+path)
	env = append(env, extraEnv...)

	p := &Agent{Home: home, Tmp: tmp, out: &LockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Dir = home
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if o.User != nil {
		p.cmd.SysProcAttr.Credential = o.User.Credential()
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the agent: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			KillTree(p.cmd.Process.Pid)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("agent %d did not die after SIGKILL", p.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", p.out.String())
		}
	})
	return p
}

// Wait returns the agent's exit code once it has exited.
func (p *Agent) Wait(ctx context.Context) (int, error) {
	select {
	case <-p.done:
	case <-ctx.Done():
		return -1, fmt.Errorf("agent still running: %w", ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), nil
	}
	if p.err != nil {
		return -1, p.err
	}
	return 0, nil
}

// KillTree SIGKILLs the process group of pid and every descendant of pid
// (the bootstrap and the job's commands run in process groups of their own).
func KillTree(pid int) {
	desc := Descendants(pid)
	// Deepest first, each waited for until its (still living) parent has
	// reaped it, so nothing is left as a zombie for init to collect.
	deadline := time.Now().Add(3 * time.Second)
	for i := len(desc) - 1; i >= 0; i-- {
		syscall.Kill(desc[i], syscall.SIGKILL)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(desc[i]))); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGKILL)
}

// Descendants lists the processes below pid, breadth first, without pid
// itself, from /proc.
func Descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	var desc []int
	for todo := children[pid]; len(todo) > 0; todo = todo[1:] {
		desc = append(desc, todo[0])
		todo = append(todo, children[todo[0]]...)
	}
	return desc
}

// Output is what the agent printed so far.
func (p *Agent) Output() string { return p.out.String() }

// Pid is the agent's process id.
func (p *Agent) Pid() int { return p.cmd.Process.Pid }

// WaitGone reports whether the process pid (a decimal string) has ended (or
// is a zombie) within d, polling /proc: a process that is not the caller's
// child gives no other way to wait for it.
func WaitGone(pid string, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; {
		stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
		if i := bytes.LastIndexByte(stat, ')'); err != nil || (i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z') {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
