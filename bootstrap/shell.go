package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/buildkite/shellwords"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/internal/proc"
)

// ShellCommand is the pure part of `dockhand shell`: the argv to exec for the
// configured real shell (split as the agent splits its shell setting) and
// the agent's arguments.
func ShellCommand(realShell string, args []string) ([]string, error) {
	argv, err := shellwords.Split(realShell)
	if err != nil {
		return nil, fmt.Errorf("splitting the shell %q: %w", realShell, err)
	}
	if len(argv) == 0 {
		return nil, errors.New("the configured shell is empty")
	}
	return append(argv, args...), nil
}

// Shell replaces the process with the real shell. Before that it checks that
// DOCKER_CONFIG still points at the job's docker config and, if a hook
// replaced it, reconciles and restores it, printing one line on log.
func Shell(ctx context.Context, realShell string, args []string, e *agentenv.Environment, stderr io.Writer) error {
	argv, err := ShellCommand(realShell, args)
	if err != nil {
		return err
	}
	if jobDir, ok := e.Get(JobDirVar); ok && jobDir != "" {
		current, _ := e.Get(DockerConfigVar)
		r, err := Reconcile(ctx, jobDir, current, e)
		log := joblog.New(stderr)
		switch {
		case err != nil:
			log.Printf("DOCKER_CONFIG is %s, not the job's; left as it is: %v", current, err)
		case r.From != "" || current == "":
			log.Print(r.Lines...)
			e.Set(DockerConfigVar, r.DockerConfig)
			log.Printf("DOCKER_CONFIG was %q; restored the job's docker config %s%s", current, r.DockerConfig, importedNote(r))
		}
	}
	// The job's PATH by the one rule dockhand has (internal/proc.LookPath):
	// empty and relative entries never name the shell, as with Go's
	// exec.LookPath, which the agent's own shell start goes through.
	pathList, _ := e.Get("PATH")
	path, err := proc.LookPath(argv[0], pathList)
	if err != nil {
		return fmt.Errorf("the shell: %w", err)
	}
	return syscall.Exec(path, argv, e.ToSlice())
}

func importedNote(r Reconciled) string {
	if len(r.Imported) == 0 {
		return ""
	}
	return " (carried over: " + strings.Join(r.Imported, ", ") + ")"
}
