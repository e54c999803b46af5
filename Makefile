# dockhand — see README.md. The two commands to know: `make demo`, `make test`.
SHELL := /bin/bash
export GOTOOLCHAIN := local
GO ?= go
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
TOOLS_BIN := $(CURDIR)/.tools/bin

.PHONY: all build test test-unit vet lint tools demo bench clean release fuzz soak

all: build

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/dockhand ./cmd/dockhand
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/dockhand-cloud ./cmd/dockhand-cloud
	ln -sf dockhand bin/docker-credential-dockhand

vet:
	$(GO) vet ./...

# staticcheck, pinned in test/tools/staticcheck/go.mod and built by `make tools`.
# A finding kept on purpose carries a `//lint:ignore CHECK reason` comment.
# `go mod tidy -diff`: go.mod and go.sum say exactly what the code needs.
# golangci-lint (test/tools/golangci-lint/go.mod) with the few linters
# .golangci.yml chooses and says why.
lint:
	$(GO) mod tidy -diff
	$(TOOLS_BIN)/staticcheck ./...
	$(TOOLS_BIN)/golangci-lint run ./...

# Every test, the end-to-end ones included: they start their own daemons from
# the real components `make tools` installs (seconds when nothing changed); a
# missing component is a failure, never a skip. The unit lane runs with the
# race detector and the test cache (its results depend only on the sources);
# the end-to-end lane (packages that start real components or run bin/dockhand)
# never caches, and runs its tests in parallel, DOCKHAND_E2E_PARALLEL at a time
# (test/harness/limiter.go; 2 unless set). test/slowest shows failures as go
# test does and lists the slowest tests at the end. The fuzz seed corpora run
# as unit tests; fuzzing itself is `make fuzz`, the long soak `make soak` (the
# e2e lane runs TestSoak at its default, short size).
E2E_PKGS := ./test/e2e ./test/harness ./builder/buildkit ./packer
UNIT_PKGS = $(filter-out $(patsubst ./%,github.com/dockhand-ci/dockhand/%,$(E2E_PKGS)),$(shell $(GO) list ./...))
test: tools build vet lint test-unit
	set -o pipefail; DOCKHAND_BIN=$(CURDIR)/bin/dockhand $(GO) test -json -count=1 -timeout 60m $(E2E_PKGS) | $(GO) run ./test/slowest

# The fast lane: the packages that start no real component, race detector on.
test-unit:
	set -o pipefail; $(GO) test -json -race -timeout 10m $(UNIT_PKGS) | $(GO) run ./test/slowest -n 10

# Every fuzz target for longer; a failing input is written under the
# package's testdata/fuzz, where `go test` replays it from then on.
FUZZTIME ?= 2m
fuzz:
	$(GO) run ./test/fuzz -fuzztime $(FUZZTIME)

# The soak (test/e2e TestSoak) at a size beyond make test's (40 jobs, 6 at a time).
SOAK_JOBS ?= 400
SOAK_PARALLEL ?= 8
soak: tools build
	DOCKHAND_BIN=$(CURDIR)/bin/dockhand DOCKHAND_SOAK_JOBS=$(SOAK_JOBS) DOCKHAND_SOAK_PARALLEL=$(SOAK_PARALLEL) \
	  $(GO) test -count=1 -timeout 60m -run '^TestSoak$$' -v ./test/e2e

tools:
	bash test/tools/install.sh

bench: tools build
	DOCKHAND_BIN=$(CURDIR)/bin/dockhand $(GO) run ./test/bench

demo: tools build
	DOCKHAND_BIN=$(CURDIR)/bin/dockhand $(GO) run ./test/demo

# Static binaries for the AMIs, with the version stamped in: BUILD_DIR/linux-ARCH/
# {dockhand,dockhand-cloud}, one tarball per ARCH laid out as packer/scripts/
# install-dockhand.sh expects (bin/ scripts/ files/ hooks/), and SHA256SUMS.
BUILD_DIR ?= build
RELEASE_ARCHS := amd64 arm64

release:
	@mkdir -p $(BUILD_DIR) && rm -f $(BUILD_DIR)/dockhand-*.tar.gz $(BUILD_DIR)/SHA256SUMS
	set -e; for arch in $(RELEASE_ARCHS); do \
	  for cmd in dockhand dockhand-cloud; do \
	    CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BUILD_DIR)/linux-$$arch/$$cmd ./cmd/$$cmd; \
	  done; \
	  pkg=dockhand-$(VERSION)-linux-$$arch; stage=$$(mktemp -d); mkdir -p $$stage/$$pkg/bin; \
	  cp $(BUILD_DIR)/linux-$$arch/* $$stage/$$pkg/bin/ && cp -R packer/scripts packer/files hooks $$stage/$$pkg/; \
	  tar -C $$stage --owner=0 --group=0 --numeric-owner --sort=name -czf $(BUILD_DIR)/$$pkg.tar.gz $$pkg; rm -rf $$stage; \
	done
	cd $(BUILD_DIR) && sha256sum linux-*/* dockhand-*.tar.gz >SHA256SUMS

clean:
	rm -rf bin build
