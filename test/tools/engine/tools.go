//go:build tools

// Package engine pins a current docker engine (dockerd 28.5, with the
// containerd it is released with) that the end-to-end kit runs beside
// Debian's 20.10: `make tools` builds them into .tools/bin as
// dockerd-current, containerd-current and containerd-shim-runc-v2.
// github.com/docker/docker has no go.mod: the requirements below are the
// tag's vendor.mod, which is what its own release build compiles against.
package engine

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/docker/docker/cmd/dockerd"
)
