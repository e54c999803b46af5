package bootstrap

import (
	"fmt"
	"io"
	"strings"

	agentenv "github.com/buildkite/agent/v3/env"
)

// EnvironmentHook is `dockhand hook environment`, run by dockhand's
// environment hook after the global ones. It reconciles the docker config
// and writes the shell statements for the hook to eval on out, so the agent
// picks the change up through its hook environment diff. Notes go to log.
func EnvironmentHook(e *agentenv.Environment, out, log io.Writer) error {
	jobDir, _ := e.Get(JobDirVar)
	if jobDir == "" {
		fmt.Fprintln(log, "dockhand: this job was not started by `dockhand bootstrap`; nothing to reconcile")
		return nil
	}
	current, _ := e.Get(DockerConfigVar)
	r, err := Reconcile(jobDir, current, e)
	if err != nil {
		return err
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(log, "dockhand: warning: %s\n", w)
	}
	if r.From != "" {
		fmt.Fprintf(log, "dockhand: DOCKER_CONFIG was %s; using the job's %s%s\n", r.From, r.DockerConfig, importedNote(r))
	}
	_, err = fmt.Fprintf(out, "export %s=%s\n", DockerConfigVar, shellQuote(r.DockerConfig))
	return err
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
