//go:build tools

// Package staticcheck pins staticcheck (honnef.co/go/tools), the linter
// `make lint` runs beside `go vet`. It is its own module so the linter's
// golang.org/x/tools does not move the versions the other tools build with.
package staticcheck

import _ "honnef.co/go/tools/cmd/staticcheck"
