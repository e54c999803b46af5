//go:build tools

// Package compose pins the docker compose CLI plugin of the Elastic CI Stack
// (v5.1.4: its module path is github.com/docker/compose/v5), which the
// end-to-end tests also run beside test/tools/compose's v2. A module of its
// own, with the dependency graph compose's release was built with.
package compose

import _ "github.com/docker/compose/v5/cmd"
