// Package agentapi is a fake Buildkite Agent REST API (v3) for tests that run
// the real buildkite-agent binary offline.
//
// A test starts a Server, queues jobs with AddJob and runs
// `buildkite-agent` with the arguments from AgentArgs. The server records
// every request, rebuilds each job's log from the uploaded chunks and keeps
// the finish body, so the test can wait on and assert all of them.
package agentapi

import (
	"crypto/rand"
	"fmt"
)

// Job is one job the fake API hands to an agent.
type Job struct {
	ID    string            // a UUID
	Env   map[string]string // the job env the API sends (must include the bootstrap's required vars)
	Token string            // job token (>= 6 chars), default "job-token-"+ID[:8]
}

// NewJobID returns a fresh random (version 4) UUID.
func NewJobID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("agentapi: reading random bytes: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// MinimalEnv returns the env a job needs for `buildkite-agent bootstrap` to
// run offline: no checkout, no plugins, and every variable the bootstrap
// insists on.
func MinimalEnv(jobID, command string) map[string]string {
	buildID := NewJobID()
	return map[string]string{
		"BUILDKITE":                   "true",
		"CI":                          "true",
		"BUILDKITE_JOB_ID":            jobID,
		"BUILDKITE_COMMAND":           command,
		"BUILDKITE_REPO":              "none",
		"BUILDKITE_SKIP_CHECKOUT":     "true",
		"BUILDKITE_COMMIT":            "HEAD",
		"BUILDKITE_BRANCH":            "main",
		"BUILDKITE_AGENT_NAME":        "agentapi",
		"BUILDKITE_ORGANIZATION_SLUG": "org",
		"BUILDKITE_PIPELINE_SLUG":     "pipeline",
		"BUILDKITE_PIPELINE_PROVIDER": "git",
		"BUILDKITE_BUILD_ID":          buildID,
		"BUILDKITE_BUILD_NUMBER":      "1",
		"BUILDKITE_BUILD_URL":         "http://127.0.0.1/org/pipeline/builds/1",
		"BUILDKITE_PLUGINS":           "",
		"BUILDKITE_SOURCE":            "api",
	}
}
