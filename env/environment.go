// Package env holds dockhand's view of the job environment and its
// configuration: the variables dockhand reads and sets, the TOML
// configuration file with its per-queue sections, and the DOCKHAND_*
// environment overrides, each resolved value carrying where it came from.
//
// The package never reads the process environment itself: callers pass the
// environment in as data (an *agentenv.Environment), which keeps every
// function here pure and testable.
package env

import (
	agentenv "github.com/buildkite/agent/v3/env"
)

// FromSlice builds an environment from KEY=VALUE strings, such as os.Environ()
// or exec.Cmd.Env. Entries without '=' are dropped.
func FromSlice(s []string) *agentenv.Environment {
	return agentenv.FromSlice(s)
}

// lookup returns the value of name in e; a nil environment is empty.
func lookup(e *agentenv.Environment, name string) (string, bool) {
	if e == nil {
		return "", false
	}
	return e.Get(name)
}

// Queue returns the agent's queue tag (BUILDKITE_AGENT_META_DATA_QUEUE), or ""
// when the agent has none. It selects the [queue.NAME] configuration section.
func Queue(e *agentenv.Environment) string {
	q, _ := lookup(e, "BUILDKITE_AGENT_META_DATA_QUEUE")
	return q
}

// InJob reports whether e is a job's environment, that is whether
// BUILDKITE_JOB_ID is set and non-empty. In a job, variables may have been set
// by the pipeline, so only the pipeline-safe DOCKHAND_* overrides are honoured.
func InJob(e *agentenv.Environment) bool {
	id, _ := lookup(e, "BUILDKITE_JOB_ID")
	return id != ""
}
