//go:build tools

// Package buildx pins the docker buildx CLI plugin of the Elastic CI Stack
// (v0.34.1), which the end-to-end tests also run beside test/tools's current
// one. A module of its own: one module holds one version of a module path,
// and compose v5.1.4 cannot share its graph (it needs BuildKit v0.29's
// util/tracing/env, which the v0.30 buildx v0.34.1 needs no longer has).
package buildx

import _ "github.com/docker/buildx/cmd/buildx"
