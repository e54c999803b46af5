# dockhand — see README.md. The two commands to know: `make demo`, `make test`.
SHELL := /bin/bash
export GOTOOLCHAIN := local
GO ?= go
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
TOOLS_BIN := $(CURDIR)/.tools/bin



.PHONY: all build test vet unit tools demo bench clean

all: build

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/dockhand ./cmd/dockhand
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/dockhand-cloud ./cmd/dockhand-cloud
	ln -sf dockhand bin/docker-credential-dockhand

vet:
	$(GO) vet ./...

# Every test, the end-to-end ones included (they start their own daemons and
# need `make tools`; in CI a missing component is a failure, never a skip).
test: build vet
	@test -x $(TOOLS_BIN)/buildkitd || { echo "make test: the real components are missing: run 'make tools' first" >&2; exit 1; }
	DOCKHAND_BIN=$(CURDIR)/bin/dockhand $(GO) test -count=1 -timeout 30m ./...

# Only the fast tests that need no real component.
unit:
	$(GO) test -short ./...

tools:
	bash test/tools/install.sh

bench: build
	@test -x $(TOOLS_BIN)/buildkitd || $(MAKE) tools
	$(GO) run ./test/bench

demo: build
	@test -x $(TOOLS_BIN)/buildkitd || $(MAKE) tools
	$(GO) run ./test/demo

clean:
	rm -rf bin
