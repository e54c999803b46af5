//go:build tools

// Package tools pins the docker compose v2 CLI plugin the end-to-end tests run
// (`docker compose build|run|up`). It is a module of its own: compose's
// dependency graph must not move the pins of test/tools.
package tools

import _ "github.com/docker/compose/v2/cmd"
