// Package e2e holds dockhand's end-to-end tests. They run the real
// components (buildkitd with runc, the docker CLI with the real buildx plugin,
// a distribution registry, buildkite-agent) that `make tools` installs, start
// them on loopback through the harness, and never skip.
package e2e
