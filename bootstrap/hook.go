package bootstrap

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/internal/joblog"
)

// EnvironmentHook is `dockhand hook environment`, run by dockhand's
// environment hook after the global ones. It reconciles the docker config
// and writes the shell statements for the hook to eval on out, so the agent
// picks the change up through its hook environment diff. Notes go to log.
func EnvironmentHook(ctx context.Context, e *agentenv.Environment, out, stderr io.Writer) error {
	log := joblog.New(stderr)
	jobDir, _ := e.Get(JobDirVar)
	if jobDir == "" {
		log.Printf("this job was not started by `dockhand bootstrap`; nothing to reconcile")
		return nil
	}
	current, _ := e.Get(DockerConfigVar)
	r, err := Reconcile(ctx, jobDir, current, e)
	if err != nil {
		return err
	}
	log.Print(r.Lines...)
	if r.From != "" {
		log.Printf("DOCKER_CONFIG was %s; using the job's %s%s", r.From, r.DockerConfig, importedNote(r))
	}
	if _, err := fmt.Fprintf(out, "export %s=%s\n", DockerConfigVar, shellQuote(r.DockerConfig)); err != nil {
		return err
	}
	// A hook that pointed buildx at a host-level store: the job keeps its
	// own, which has dockhand's builder, with that store's builders added.
	store := filepath.Join(r.DockerConfig, "buildx")
	switch line, err := adoptHostStore(e, store); {
	case err != nil:
		log.Warnf("%v; the job's own store has dockhand's builder only", err)
	case line == "":
		return nil
	default:
		log.Printf("%s", line)
	}
	_, err = fmt.Fprintf(out, "export %s=%s\n", BuildxConfigVar, shellQuote(store))
	return err
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
