// Package proc is dockhand's process plumbing, in one place: finding an
// executable on a PATH value that is the job's rather than dockhand's own,
// finding the job's buildkite-agent, and running a child bounded by its
// context and WaitDelay.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// WaitDelay is how long a child's output pipes may stay open once it has
// exited or been killed: a grandchild that inherited them (nsc starting a
// helper that outlives it) is not waited for longer than this.
const WaitDelay = 500 * time.Millisecond

// Run runs name with args and env, stdin as its input, and returns what it
// printed. It is the one way dockhand runs a child for a job (nsc,
// docker-credential-nsc, buildkite-agent oidc, dockhand-cloud): the child
// gets its own process group, which is killed when ctx ends, and Run
// returns at most WaitDelay after the child is gone even when a grandchild
// holds its pipes (exec.Cmd.WaitDelay).
func Run(ctx context.Context, env []string, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: a child's own children die with it.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = WaitDelay
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// ErrRelative is LookPath's error when name is found only in a relative
// PATH entry, as Go's exec.ErrDot is exec.LookPath's.
var ErrRelative = errors.New("relative PATH entries are refused, as the working directory is the job's checkout")

// LookPath finds name in pathList, a PATH value (the job's, passed as data,
// not this process's). A name with a slash is taken as it is. Only absolute
// entries are searched: an empty entry means the working directory and a
// relative one ("." or "bin") a dir under it, where a job's checkout could
// plant a binary; Go's exec.LookPath refuses them too (exec.ErrDot). The
// first regular file with an execute bit wins; when only a relative entry
// has one, the error (ErrRelative) names that entry.
func LookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	relative := ""
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if !isExecutable(p) {
			continue
		}
		if filepath.IsAbs(dir) {
			return p, nil
		}
		if relative == "" {
			relative = dir
		}
	}
	if relative != "" {
		return "", fmt.Errorf("%s is only in the relative PATH entry %q: %w", name, relative, ErrRelative)
	}
	return "", fmt.Errorf("%s is not on PATH", name)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// LastLine returns the last non-empty line of a child's stderr, at most 300
// bytes: its own account of why it failed.
func LastLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	return capReason(strings.TrimSpace(lines[len(lines)-1]))
}

// Reason returns a child's account of its failure from its stderr: the text
// of its last "Failed:" block when it prints one (nsc and
// docker-credential-nsc do, then a frame of "=" or a help footer, so their
// last line is never the reason), else its last line; at most 300 bytes.
// The block's lines, wrapped by the child, are joined into one.
func Reason(stderr string) string {
	lines := strings.Split(stderr, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), failedHeader) {
			start = i
		}
	}
	if start < 0 {
		return LastLine(stderr)
	}
	var words []string
	for i, l := range lines[start:] {
		l = strings.TrimSpace(l)
		if i == 0 {
			l = strings.TrimSpace(strings.TrimPrefix(l, failedHeader))
		} else if l == "" || strings.Trim(l, "=") == "" {
			break
		}
		if l != "" {
			words = append(words, l)
		}
	}
	if len(words) == 0 {
		return LastLine(stderr)
	}
	return capReason(strings.Join(words, " "))
}

// failedHeader opens the block in which nsc's tools say why they failed.
const failedHeader = "Failed:"

func capReason(s string) string {
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// AgentBinary is the Buildkite agent's executable.
const AgentBinary = "buildkite-agent"

// FindAgent finds buildkite-agent in BUILDKITE_BIN_PATH (the dir the agent
// runs from), else on the PATH e gives.
func FindAgent(e interface{ Get(string) (string, bool) }) (string, error) {
	if dir, _ := e.Get("BUILDKITE_BIN_PATH"); dir != "" {
		if p, err := LookPath(AgentBinary, dir); err == nil {
			return p, nil
		}
	}
	path, _ := e.Get("PATH")
	p, err := LookPath(AgentBinary, path)
	if err != nil {
		return "", errors.New("buildkite-agent not found in BUILDKITE_BIN_PATH or PATH")
	}
	return p, nil
}

// LookupIn is a lookup over KEY=VALUE strings, the last one winning, as a
// child given them as its environment would see them; unset is "".
func LookupIn(environ []string) func(string) string {
	return func(k string) string {
		for i := len(environ) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(environ[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
}
