//go:build tools

// Package agent pins the buildkite-agent release the Elastic CI Stack
// installs (3.137.0), which the end-to-end tests also run beside the newest
// 3.x of test/tools/agent. A module of its own: one module holds one version
// of github.com/buildkite/agent/v3.
package agent

import _ "github.com/buildkite/agent/v3"
