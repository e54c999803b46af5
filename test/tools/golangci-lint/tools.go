//go:build tools

// Package golangcilint pins golangci-lint, which `make lint` runs with the
// linters .golangci.yml chooses. It is its own module so the linter's many
// dependencies do not move the versions the other tools build with.
package golangcilint

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
