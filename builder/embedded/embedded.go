// Package embedded is the embedded builder kind: the host's one buildkitd,
// shared by its jobs, started when none answers, rootless under rootlesskit
// when the agent is unprivileged.
package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dockhand-ci/dockhand/internal/filelock"

	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// The embedded buildkitd's files, under STATE/buildkitd:
//
//	lock            flock'ed while a job checks, starts or restarts the daemon
//	pid             the daemon's process id
//	buildkitd.sock  its socket (unix://)
//	buildkitd.log   its output since its last start
//	root/           its state (build cache)
const (
	embeddedDirName = "buildkitd"
	embeddedSock    = "buildkitd.sock"
	PidFile         = "pid"
	embeddedLog     = "buildkitd.log"
	maxSocketPath   = 107 // sun_path holds 108 bytes, NUL included
)

// Dir is where the host's shared buildkitd lives under a state dir.
func Dir(stateDir string) string { return filepath.Join(stateDir, embeddedDirName) }

// Socket is its endpoint.
func Socket(stateDir string) string {
	return "unix://" + filepath.Join(Dir(stateDir), embeddedSock)
}

// Embedded is one buildkitd per host, on a unix socket under the state dir,
// started by the first job that needs it and shared by all: detached (its
// own session, output to a log file) so it outlives the job that started
// it, restarted by the next job when it died. As root it runs as root; as
// an unprivileged user, rootless under rootlesskit (Rootless).
type Embedded struct {
	Dir          string   // Dir(state)
	Buildkitd    string   // the executable
	Config       string   // a buildkitd.toml, optional
	Env          []string // the daemon's environment (PATH, to find runc; proxies)
	StartTimeout time.Duration
	// Rootless is set when dockhand runs unprivileged: the daemon is
	// started under rootlesskit, unless Rootless.Problem says it cannot be.
	Rootless *Rootless
}

func (e Embedded) sock() string { return filepath.Join(e.Dir, embeddedSock) }

// Ensure returns once the daemon answers on its socket, starting it (or
// replacing a wedged one) when it does not. It reports whether it started
// it and the daemon's pid. Its waits end with ctx (a daemon being started
// is left to come up: it is the host's, not the job's).
func (e Embedded) Ensure(ctx context.Context) (started bool, pid int, err error) {
	if sock := e.longestSocket(); len(sock) > maxSocketPath {
		return false, 0, fmt.Errorf("socket path %s is longer than %d bytes; use a shorter state_dir", sock, maxSocketPath)
	}
	if e.StartTimeout <= 0 {
		e.StartTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(e.Dir, 0o700); err != nil {
		return false, 0, err
	}
	release, err := filelock.Lock(ctx, filepath.Join(e.Dir, "lock"), e.StartTimeout+15*time.Second)
	if err != nil {
		return false, 0, err
	}
	defer release()

	pid = e.recordedPid()
	if pid > 0 && isDaemon(pid) {
		if dialUnix(e.sock()) == nil {
			return false, pid, nil
		}
		// Alive but not answering: the one who started it waited for its
		// socket under this lock, so it is wedged. Replace it.
		stopPid(pid, 10*time.Second)
	}
	if e.Rootless != nil && e.Rootless.Problem != "" {
		return false, 0, errors.New(e.Rootless.Problem)
	}
	pid, err = e.start(ctx)
	return err == nil, pid, err
}

func (e Embedded) start(ctx context.Context) (int, error) {
	_ = os.Remove(e.sock()) // a stale socket of a dead daemon
	logPath := filepath.Join(e.Dir, embeddedLog)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	args := []string{"--addr", "unix://" + e.sock(), "--root", filepath.Join(e.Dir, "root")}
	if e.Config != "" {
		args = append([]string{"--config", e.Config}, args...)
	}
	argv, env := append([]string{e.Buildkitd}, args...), e.Env
	if e.Rootless != nil {
		// The socket is the user's as it is made (root in the namespace is
		// the user outside): the user's group, unmapped in there, is not given.
		if err := e.rootlessDirs(); err != nil {
			return 0, err
		}
		argv, env = e.rootlessCommand(args, env)
	} else {
		argv = append(argv, "--group", strconv.Itoa(os.Getgid()))
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = e.Dir
	cmd.Stdout, cmd.Stderr = logf, logf // never the job's terminal: the job log must end with the job
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting %s: %w", argv[0], err)
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reaps it if it dies while this job runs
	if err := safefile.Write(filepath.Join(e.Dir, PidFile), []byte(strconv.Itoa(pid)+"\n")); err != nil {
		stopPid(pid, 5*time.Second)
		return 0, err
	}
	deadline := time.Now().Add(e.StartTimeout)
	for {
		if dialUnix(e.sock()) == nil {
			return pid, nil
		}
		select {
		case <-exited:
			return 0, fmt.Errorf("%s exited at start (%v): %s", e.Buildkitd, cmd.ProcessState, lastLines(logPath, 3))
		case <-ctx.Done():
			return 0, fmt.Errorf("%s (pid %d) not answering yet on %s: %w", e.Buildkitd, pid, e.sock(), ctx.Err())
		case <-time.After(20 * time.Millisecond): // bounded readiness poll
		}
		if time.Now().After(deadline) {
			stopPid(pid, 5*time.Second)
			return 0, fmt.Errorf("%s not answering on %s after %s: %s", e.Buildkitd, e.sock(), e.StartTimeout, lastLines(logPath, 3))
		}
	}
}

func (e Embedded) recordedPid() int {
	b, err := os.ReadFile(filepath.Join(e.Dir, PidFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// isDaemon reports whether pid is a live (not zombie) buildkitd, or the
// rootlesskit a rootless one runs under, so a recycled pid is never taken
// for the daemon.
func isDaemon(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return strings.HasSuffix(string(argv0), "buildkitd") || filepath.Base(string(argv0)) == "rootlesskit"
}

// stopPid sends SIGTERM, then SIGKILL after grace.
func stopPid(pid int, grace time.Duration) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for isDaemon(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if isDaemon(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func dialUnix(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
