// Package config holds dockhand's view of the job environment and its
// configuration: the variables dockhand reads and sets, the TOML
// configuration file with its per-queue sections, and the DOCKHAND_*
// environment overrides, each resolved value carrying where it came from.
//
// The package never reads the process environment itself: callers pass the
// environment in as data (an *agentenv.Environment), which keeps every
// function here pure and testable.
package config

import (
	"fmt"
	"strings"

	agentenv "github.com/buildkite/agent/v3/env"
)

// FromSlice builds an environment from KEY=VALUE strings, such as os.Environ()
// or exec.Cmd.Env. Entries without '=' are dropped.
func FromSlice(s []string) *agentenv.Environment {
	return agentenv.FromSlice(s)
}

// Getter is e as a lookup function, the form the pure policy functions
// take (cachekey.IdentityFromEnv, buildx.NodeScopeFromEnv, …): unset is "".
func Getter(e *agentenv.Environment) func(string) string {
	return func(name string) string { v, _ := lookup(e, name); return v }
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

// agentQueue is the queue whose [queue.NAME] section a job gets. The agent
// passes BUILDKITE_AGENT_META_DATA_QUEUE through from the job it was given
// without protecting it, so in a job the queue tag of the agent's own
// configuration file (BUILDKITE_CONFIG_PATH, which the agent sets itself and
// a step cannot) wins, and a job value that differs is ignored with a
// warning. When that file names no tags (the agent was given them as flags
// or variables), and outside a job, the variable stands.
func agentQueue(e *agentenv.Environment, inJob bool, read func(string) ([]byte, error)) (string, []string) {
	q := Queue(e)
	path, _ := lookup(e, "BUILDKITE_CONFIG_PATH")
	if !inJob || path == "" {
		return q, nil
	}
	data, err := read(path)
	if err != nil {
		return q, nil
	}
	tags, ok := AgentTags(data)
	if !ok {
		return q, nil
	}
	own := tags["queue"]
	if q == "" || q == own {
		return own, nil
	}
	mine := fmt.Sprintf("this agent's queue is %q", own)
	if own == "" {
		mine = "this agent has no queue tag"
	}
	return own, []string{fmt.Sprintf("ignoring BUILDKITE_AGENT_META_DATA_QUEUE=%q from the job environment: %s (tags in %s)", q, mine, path)}
}

// AgentTags reads the tags line of a buildkite-agent configuration file
// (key=value lines, the value perhaps quoted, # comments; tags is a
// comma-separated list of key=value): the tags by key, and whether the file
// has a tags line at all.
func AgentTags(cfg []byte) (map[string]string, bool) {
	var tags map[string]string
	for _, line := range strings.Split(string(cfg), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "tags" {
			continue
		}
		v = strings.TrimSpace(v)
		if q := v[:min(1, len(v))]; q == `"` || q == "'" {
			if end := strings.Index(v[1:], q); end >= 0 {
				v = v[1 : 1+end]
			}
		} else if i := strings.Index(v, " #"); i >= 0 {
			v = v[:i]
		}
		tags = map[string]string{}
		for _, tag := range strings.Split(v, ",") {
			if tk, tv, ok := strings.Cut(strings.TrimSpace(tag), "="); ok {
				tags[strings.TrimSpace(tk)] = strings.TrimSpace(tv)
			}
		}
	}
	return tags, tags != nil
}

// InJob reports whether e is a job's environment, that is whether
// BUILDKITE_JOB_ID is set and non-empty. In a job, variables may have been set
// by the pipeline, so only the pipeline-safe DOCKHAND_* overrides are honoured.
func InJob(e *agentenv.Environment) bool {
	id, _ := lookup(e, "BUILDKITE_JOB_ID")
	return id != ""
}
