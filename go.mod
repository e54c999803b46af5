module github.com/dockhand-ci/dockhand

go 1.26.5

require (
	github.com/buildkite/agent/v3 v3.138.0
	github.com/buildkite/shellwords v1.0.1
	github.com/docker/docker-credential-helpers v0.9.12
	github.com/pelletier/go-toml/v2 v2.4.3
	golang.org/x/sys v0.49.0
)

require (
	github.com/puzpuzpuz/xsync/v2 v2.5.1 // indirect
	golang.org/x/crypto v0.58.0
)
