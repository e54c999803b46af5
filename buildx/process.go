package buildx

import (
	"bytes"
	"context"
	"os/exec"
	"syscall"
	"time"
)

// pipeGrace is how long a child's output pipes may stay open once it has
// exited or been killed: a grandchild that inherited them (nsc starting a
// helper that outlives it) is not waited for longer than this.
const pipeGrace = 500 * time.Millisecond

// runBounded runs name with args and env, stdin as its input, and returns
// what it printed. It is the one way dockhand runs a child for a job (nsc,
// buildkite-agent oidc, dockhand-cloud): the child gets its own process
// group, which is killed when ctx ends, and Wait returns at most pipeGrace
// after the child is gone even when a grandchild holds its pipes
// (exec.Cmd.WaitDelay).
func runBounded(ctx context.Context, env []string, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error) {
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
	cmd.WaitDelay = pipeGrace
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}
