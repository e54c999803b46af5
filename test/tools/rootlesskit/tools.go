//go:build tools

// Package tools pins rootlesskit, which starts the embedded buildkitd of an
// unprivileged agent in a user namespace (test/tools/install.sh builds it).
package tools

import _ "github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit"
