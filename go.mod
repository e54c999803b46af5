module github.com/dockhand-ci/dockhand

go 1.26.5

require github.com/buildkite/agent/v3 v3.138.0

require (
	github.com/puzpuzpuz/xsync/v2 v2.5.1 // indirect
	golang.org/x/crypto v0.58.0
)
