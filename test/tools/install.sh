#!/usr/bin/env bash
# Installs the real components dockhand's end-to-end tests run into .tools/bin.
# Pinned in test/tools/go.mod (buildkit, buildx, distribution, gofakes3),
# test/tools/agent/go.mod (buildkite-agent), test/tools/stack/*/go.mod (the
# Elastic CI Stack's agent, buildx and compose) and DEBS below (runc, busybox, packer).
# Idempotent: a second run with nothing changed only checks.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin="$root/.tools/bin"
debs="$root/.tools/debs"
mkdir -p "$bin" "$debs"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

step() { printf 'tools: %s\n' "$*" >&2; }

# Go components: `go build -o` skips the link when the binary is up to date.
cd "$root/test/tools"
for spec in \
  buildkitd=github.com/moby/buildkit/cmd/buildkitd \
  buildctl=github.com/moby/buildkit/cmd/buildctl \
  docker-buildx=github.com/docker/buildx/cmd/buildx \
  registry=github.com/distribution/distribution/v3/cmd/registry \
  s3server=github.com/johannesboyne/gofakes3/cmd/gofakes3; do
  name=${spec%%=*} pkg=${spec#*=}
  ldflags=
  # compose refuses a buildx that reports no version: stamp the pinned one.
  if [[ $name == docker-buildx ]]; then
    ldflags="-X github.com/docker/buildx/version.Version=$(go list -m -f '{{.Version}}' github.com/docker/buildx)"
  fi
  step "go build $name ($pkg)"
  go build -trimpath -ldflags "$ldflags" -o "$bin/$name" "$pkg"
done

# The docker compose v2 CLI plugin (test/tools/compose/go.mod), version stamped.
cd "$root/test/tools/compose"
compose_version=$(go list -m -f '{{.Version}}' github.com/docker/compose/v2)
step "go build docker-compose ($compose_version)"
go build -trimpath -ldflags "-X github.com/docker/compose/v2/internal.Version=$compose_version" \
  -o "$bin/docker-compose" github.com/docker/compose/v2/cmd

cd "$root/test/tools/agent"
step "go build buildkite-agent"
go build -trimpath -ldflags "-X github.com/buildkite/agent/v3/version.buildNumber=dockhand-test" \
  -o "$bin/buildkite-agent" github.com/buildkite/agent/v3

# rootlesskit, under which an unprivileged agent's embedded buildkitd runs
# (test/tools/rootlesskit/go.mod).
cd "$root/test/tools/rootlesskit"
step "go build rootlesskit"
go build -trimpath -o "$bin/rootlesskit" github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit
# The Elastic CI Stack's versions, beside the current ones: buildkite-agent
# (test/tools/stack/agent), buildx and compose (test/tools/stack/buildx,
# test/tools/stack/compose), each a module of its own as their graphs clash.
# Each goes to .tools/versions/NAME-VERSION/NAME, linked as .tools/bin/NAME-VERSION
# (VERSION without the "v"): in a dir of its own it keeps its plain name, so
# the agent's BUILDKITE_BIN_PATH (its own dir) holds the same agent, and the
# tests can put that dir first on PATH. Stamped as the current ones are.
stack_build() { # NAME MODULE-DIR MODULE PKG LDFLAGS-VAR
  local name=$1 dir=$2 mod=$3 pkg=$4 var=$5 ver
  cd "$root/test/tools/stack/$dir"
  ver=$(go list -m -f '{{.Version}}' "$mod")
  local out="$root/.tools/versions/$name-${ver#v}"
  mkdir -p "$out"
  local ldflags="-X $var=$ver"
  [[ $name == buildkite-agent ]] && ldflags="-X $var=dockhand-test" # its version is its module's
  step "go build $name $ver (the Elastic CI Stack's)"
  nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out/$name" "$pkg"
  ln -sfn "../versions/$name-${ver#v}/$name" "$bin/$name-${ver#v}"
  stack_tools+=("$name-${ver#v}")
}
stack_tools=()
stack_build buildkite-agent agent github.com/buildkite/agent/v3 github.com/buildkite/agent/v3 \
  github.com/buildkite/agent/v3/version.buildNumber
stack_build docker-buildx buildx github.com/docker/buildx github.com/docker/buildx/cmd/buildx \
  github.com/docker/buildx/version.Version
stack_build docker-compose compose github.com/docker/compose/v5 github.com/docker/compose/v5/cmd \
  github.com/docker/compose/v5/internal.Version

# The upstream ECR credential helper, for `make bench` (test/tools/ecrlogin/go.mod).
cd "$root/test/tools/ecrlogin"
step "go build docker-credential-ecr-login"
go build -trimpath -o "$bin/docker-credential-ecr-login" \
  github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login

# staticcheck, which `make lint` runs beside `go vet` (test/tools/staticcheck/go.mod).
cd "$root/test/tools/staticcheck"
step "go build staticcheck"
go build -trimpath -o "$bin/staticcheck" honnef.co/go/tools/cmd/staticcheck

# golangci-lint, which `make lint` runs after staticcheck with .golangci.yml
# (test/tools/golangci-lint/go.mod).
cd "$root/test/tools/golangci-lint"
step "go build golangci-lint"
go build -trimpath -o "$bin/golangci-lint" github.com/golangci/golangci-lint/v2/cmd/golangci-lint

# Debian components, unpacked into .tools (no system install needed).
# fetch_deb DIR PKG VER downloads PKG=VER into DIR; when a Debian (security)
# update has replaced the pinned version, it takes the current candidate.
# The stamps record the pinned versions, so a later run with the same pins
# only checks, whichever version was taken.
refreshed=false
fetch_deb() {
  local dir=$1 pkg=$2 ver=$3
  if (cd "$dir" && apt-get download "$pkg=$ver" >/dev/null 2>&1); then return; fi
  if ! $refreshed; then
    step "$pkg=$ver not found; refreshing the package lists"
    apt-get update >/dev/null
    refreshed=true
    if (cd "$dir" && apt-get download "$pkg=$ver" >/dev/null 2>&1); then return; fi
  fi
  ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
  step "pinned version gone; taking $pkg=$ver"
  (cd "$dir" && apt-get download "$pkg=$ver" >/dev/null)
}

DEBS=("runc=1.1.5+ds1-1+deb12u1:usr/sbin/runc" "busybox-static=1:1.35.0-4+deb12u1+b1:bin/busybox"
  "packer=1.6.6+ds2-1+b1:usr/bin/packer")
for spec in "${DEBS[@]}"; do
  pkgver=${spec%:*} path=${spec##*:}
  pkg=${pkgver%%=*} ver=${pkgver#*=}
  name=$(basename "$path")
  stamp="$debs/$pkg.version"
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$ver" ]]; then
    continue
  fi
  step "apt-get download $pkg=$ver"
  tmp=$(mktemp -d)
  fetch_deb "$tmp" "$pkg" "$ver"
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  install -m 0755 "$tmp/root/$path" "$bin/$name"
  echo "$ver" >"$stamp"
  rm -rf "$tmp"
done

# jq with its two libraries (Debian's, dynamically linked): the reference the
# cached-image tag tests check `file.json#<jq path>` against. .tools/bin/jq is
# a wrapper that points the loader at the unpacked libraries.
JQ_DEBS=("jq=1.6-2.1+deb12u3" "libjq1=1.6-2.1+deb12u3" "libonig5=6.9.8-1")
if [[ ! -x "$bin/jq" || "$(cat "$debs/jq.version" 2>/dev/null)" != "${JQ_DEBS[*]}" ]]; then
  step "apt-get download ${JQ_DEBS[*]}"
  tmp=$(mktemp -d)
  for pkgver in "${JQ_DEBS[@]}"; do
    fetch_deb "$tmp" "${pkgver%%=*}" "${pkgver#*=}"
  done
  rm -rf "$root/.tools/jq"
  for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$root/.tools/jq"; done
  libdir=$(dirname "$(find "$root/.tools/jq" -name 'libjq.so.1*' | head -n1)")
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%q exec %q "$@"\n' "$libdir" "$root/.tools/jq/usr/bin/jq" >"$bin/jq"
  chmod 0755 "$bin/jq"
  echo "${JQ_DEBS[*]}" >"$debs/jq.version"
  rm -rf "$tmp"
fi

# The docker engine: Debian bookworm's docker.io (dockerd 20.10) with its
# containerd, runc and docker-init, installed into the system by apt (dockerd
# runs its helpers from PATH). The service is never started: policy-rc.d
# refuses it during the install, and the tests start their own dockerd on a
# unix socket in a temporary root (test/harness/dockerd.go).
ENGINE_DEBS=("docker.io=20.10.24+dfsg1-1+deb12u1+b6" "containerd=1.6.20~ds1-1+deb12u3")
engine_stamp="$debs/engine.version"
if [[ ! -x /usr/sbin/dockerd || ! -x /usr/bin/containerd || "$(cat "$engine_stamp" 2>/dev/null)" != "${ENGINE_DEBS[*]}" ]]; then
  step "apt-get install ${ENGINE_DEBS[*]}"
  apt-get update >/dev/null
  want=()
  for pkgver in "${ENGINE_DEBS[@]}"; do
    pkg=${pkgver%%=*}
    if apt-cache show "$pkgver" >/dev/null 2>&1; then want+=("$pkgver"); else
      step "pinned $pkgver gone; taking the current $pkg"; want+=("$pkg"); fi
  done
  guard=/usr/sbin/policy-rc.d
  [[ -e $guard ]] || { printf '#!/bin/sh\nexit 101\n' >"$guard"; chmod 0755 "$guard"; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" >/dev/null
  echo "${ENGINE_DEBS[*]}" >"$engine_stamp"
fi
ln -sf /usr/sbin/dockerd "$bin/dockerd"

# A current engine beside it (test/tools/engine/go.mod: dockerd 28.5 with the
# containerd 2 it is released with), as the Elastic CI Stack runs Docker 25+.
# Its containerd and shim go into a dir of their own, .tools/engine/bin, which
# the harness puts first on that engine's PATH only: Debian's containerd 1.6
# cannot run a containerd 2 shim, so they must not shadow it in .tools/bin.
cd "$root/test/tools/engine"
engine_bin="$root/.tools/engine/bin"
mkdir -p "$engine_bin"
docker_version=$(go list -m -f '{{.Version}}' github.com/docker/docker)
docker_version=${docker_version#v}
docker_version=${docker_version%+incompatible}
containerd_version=$(go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)
step "go build dockerd $docker_version, containerd $containerd_version"
# No cgo: the btrfs, devicemapper and zfs drivers (which need it) are left out;
# overlay2, vfs and the containerd snapshotters are what the kit uses.
CGO_ENABLED=0 go build -trimpath -tags 'exclude_graphdriver_btrfs exclude_graphdriver_devicemapper no_btrfs no_devmapper no_zfs' \
  -ldflags "-X github.com/docker/docker/dockerversion.Version=$docker_version -X github.com/docker/docker/dockerversion.GitCommit=v$docker_version \
  -X github.com/containerd/containerd/v2/version.Version=$containerd_version" \
  -o "$engine_bin/" github.com/docker/docker/cmd/dockerd github.com/docker/docker/cmd/docker-proxy \
  github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
ln -sf ../engine/bin/dockerd "$bin/dockerd-current"
# Each test engine gets a bridge of its own (test/harness/dockerd.go): ip(8).
command -v ip >/dev/null || { apt-get update >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iproute2 >/dev/null; }

# newuidmap and newgidmap (setuid root, so installed into the system like the
# engine): rootlesskit maps the agent user's subordinate ids with them.
if [[ ! -u /usr/bin/newuidmap || ! -u /usr/bin/newgidmap ]]; then
  step "apt-get install uidmap"
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends uidmap >/dev/null
fi

# The docker CLI: the machine's, if it is at least 24; else build one.
docker_major=0
if command -v docker >/dev/null; then
  docker_major=$(docker version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)
fi
if [[ "${docker_major:-0}" =~ ^[0-9]+$ && "$docker_major" -ge 24 ]]; then
  ln -sf "$(command -v docker)" "$bin/docker"
elif [[ ! -x "$bin/docker" || -L "$bin/docker" ]]; then
  step "docker CLI missing or older than 24: building github.com/docker/cli"
  rm -f "$bin/docker"
  GOBIN="$bin" GOFLAGS= go install github.com/docker/cli/cmd/docker@v29.9.3+incompatible
fi

for t in buildkitd buildctl docker-buildx docker-compose dockerd registry s3server buildkite-agent docker-credential-ecr-login runc busybox packer jq docker rootlesskit dockerd-current; do
  [[ -x "$bin/$t" ]] || { echo "tools: $t missing from $bin" >&2; exit 1; }
done
step "ready in $bin"
