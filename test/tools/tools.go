//go:build tools

// Package tools pins the real components the end-to-end tests run. It is a
// separate module so dockhand's own go.mod never depends on them; `make tools`
// builds each with `go build -o .tools/bin/NAME PKG` from here.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
	_ "github.com/docker/buildx/cmd/buildx"
	_ "github.com/johannesboyne/gofakes3/cmd/gofakes3"
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
)
