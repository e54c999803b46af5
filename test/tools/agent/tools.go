//go:build tools

// Package agent pins the real buildkite-agent (the version the Elastic CI
// Stack bakes) for dockhand's end-to-end tests. `make tools` builds it with
// `go build -o .tools/bin/buildkite-agent github.com/buildkite/agent/v3`.
package agent

import _ "github.com/buildkite/agent/v3"
