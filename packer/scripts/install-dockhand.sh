#!/usr/bin/env bash
# Installs dockhand on a Buildkite agent host: the Packer build of the agent
# AMI runs it, and it works the same by hand on a running instance. Running it
# again with the same inputs changes nothing; with a new release it replaces
# only what differs. It never overwrites an edited /etc/dockhand/dockhand.toml.
#
# What it installs (under DESTDIR when given):
#   /usr/local/bin/dockhand, /usr/local/bin/dockhand-cloud       0755 root
#   /usr/local/bin/docker-credential-dockhand -> dockhand        symlink
#   /usr/local/libexec/dockhand/hooks/                           dockhand's agent hooks, 0755 root
#   /etc/systemd/system/buildkite-agent.service.d/50-dockhand.conf   the agent wiring, 0644 root
#   /etc/dockhand/dockhand.toml                                  0644 root, only if missing (or --force-config)
#   /usr/local/share/dockhand/dockhand.toml.default              the shipped default, 0644 root
#   /var/lib/dockhand/                                           the state dir, 0700 agent user
#   /etc/subuid, /etc/subgid                                     a range of 65536 ids for the agent user,
#                                                                unless it has one (rootless buildkitd)
#   /usr/local/bin/buildctl                                      with --buildctl
#   /usr/local/bin/rootlesskit                                   with --rootlesskit
#   /usr/local/bin/nsc, docker-credential-nsc, bazel-credential-nsc   with --nsc-tarball
set -euo pipefail

prog=install-dockhand.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<EOF
Usage: $prog [options]

Installs dockhand and wires buildkite-agent to it. Run as root.

Options:
  --from DIR          directory holding dockhand and dockhand-cloud for this host's
                      architecture (default: $here/../bin, the release tarball's layout)
  --files DIR         dockhand's install files: 50-dockhand.conf, dockhand.toml
                      (default: $here/../files/agent)
  --hooks DIR         dockhand's agent hooks dir (default: $here/../hooks, else the
                      repository's hooks/)
  --user USER         the agent user, owner of the state dir (default: buildkite-agent;
                      a numeric uid is accepted, for an image root whose users this
                      machine does not have)
  --group GROUP       the agent user's group (default: the same as --user)
  --buildctl FILE     also install this buildctl binary
  --rootlesskit FILE  also install this rootlesskit binary: an unprivileged agent's
                      embedded builder runs buildkitd rootless under it
  --nsc-tarball FILE  also install the Namespace CLI from this release tarball
                      (nsc, docker-credential-nsc, bazel-credential-nsc)
  --force-config      replace an existing /etc/dockhand/dockhand.toml with the default
  --destdir DIR       install under DIR instead of / (also: DESTDIR=DIR); no systemctl
  -h, --help          this help
EOF
}

# shellcheck source=install-lib.sh
. "$here/install-lib.sh"

from=$here/../bin
files=$here/../files/agent
hooks=
user=buildkite-agent
group=
buildctl=
rootlesskit=
nsc_tarball=
force_config=false
destdir=${DESTDIR:-}

while [[ $# -gt 0 ]]; do
  case $1 in
    --from | --files | --hooks | --user | --group | --buildctl | --rootlesskit | --nsc-tarball | --destdir)
      [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
      case $1 in
        --from) from=$2 ;;
        --files) files=$2 ;;
        --hooks) hooks=$2 ;;
        --user) user=$2 ;;
        --group) group=$2 ;;
        --buildctl) buildctl=$2 ;;
        --rootlesskit) rootlesskit=$2 ;;
        --nsc-tarball) nsc_tarball=$2 ;;
        --destdir) destdir=$2 ;;
      esac
      shift 2
      ;;
    --force-config) force_config=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
group=${group:-$user}
if [[ -z $hooks ]]; then
  hooks=$here/../hooks
  [[ -d $hooks ]] || hooks=$here/../../hooks
fi
resolve_destdir

# Check every input before touching anything.
for f in "$from/dockhand" "$from/dockhand-cloud"; do
  [[ -f $f ]] || die "$f: missing (run 'make release' and pass --from build/linux-ARCH)"
done
for f in "$files/50-dockhand.conf" "$files/dockhand.toml"; do
  [[ -f $f ]] || die "$f: missing (pass --files DIR)"
done
[[ -f $hooks/environment ]] || die "$hooks/environment: missing (pass --hooks DIR)"
[[ -z $buildctl || -f $buildctl ]] || die "--buildctl $buildctl: no such file"
[[ -z $rootlesskit || -f $rootlesskit ]] || die "--rootlesskit $rootlesskit: no such file"
[[ -z $nsc_tarball || -f $nsc_tarball ]] || die "--nsc-tarball $nsc_tarball: no such file"
check_owner "$user" "$group"
need_root

parents /usr/local/bin /usr/local/libexec /usr/local/share /etc/systemd/system /var/lib
dir /usr/local/libexec/dockhand 755
dir /usr/local/libexec/dockhand/hooks 755
dir /usr/local/share/dockhand 755
dir /etc/dockhand 755
dir /etc/systemd/system/buildkite-agent.service.d 755
dir /var/lib/dockhand 700 "$user" "$group"

# The two binaries, and the credential helper's name for dockhand.
file "$from/dockhand" /usr/local/bin/dockhand 755
file "$from/dockhand-cloud" /usr/local/bin/dockhand-cloud 755
link dockhand /usr/local/bin/docker-credential-dockhand

# dockhand's hooks dir holds exactly the shipped hooks: one left from an older
# release would still run in every job.
sync_dir "$hooks" /usr/local/libexec/dockhand/hooks 755

file "$files/50-dockhand.conf" /etc/systemd/system/buildkite-agent.service.d/50-dockhand.conf 644
conf=/etc/dockhand/dockhand.toml
config "$files/dockhand.toml" $conf 644 /usr/local/share/dockhand/dockhand.toml.default

# The agent user's subordinate ids: rootless buildkitd (the embedded builder
# of an unprivileged agent) maps 65536 of them with newuidmap and newgidmap.
# A user that has a range of that size keeps it; otherwise one is added after
# the highest range in the file.
subids() {
  local f=$1 path=$destdir$1 id start tmp
  id=$(uid_of "$user")
  if [[ -f $path ]] && awk -F: -v u="$user" -v id="$id" '($1 == u || $1 == id) && $3 >= 65536 { found = 1 } END { exit !found }' "$path"; then
    note unchanged "$f"
    return
  fi
  start=$(awk -F: 'NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print (m > 100000 ? m : 100000) }' "$path" 2>/dev/null || echo 100000)
  tmp=$(mktemp)
  tmpfiles+=("$tmp")
  if [[ -f $path ]]; then cat "$path" >"$tmp"; fi
  echo "$user:$start:65536" >>"$tmp"
  file "$tmp" "$f" 644
}
subids /etc/subuid
subids /etc/subgid
if [[ -z $destdir ]] && ! { command -v newuidmap && command -v newgidmap; } >/dev/null; then
  echo "$prog: warning: newuidmap/newgidmap not found: an unprivileged agent's embedded builder needs them (the uidmap package; shadow-utils on Amazon Linux)" >&2
fi

# Optional tools, from files given to the build (no download here).
if [[ -n $buildctl ]]; then
  file "$buildctl" /usr/local/bin/buildctl 755
fi
if [[ -n $rootlesskit ]]; then
  file "$rootlesskit" /usr/local/bin/rootlesskit 755
fi
if [[ -n $nsc_tarball ]]; then
  unpacked=$(mktemp -d)
  trap 'cleanup_tmpfiles; rm -rf "$unpacked"' EXIT
  tar -xzf "$nsc_tarball" -C "$unpacked"
  [[ -f $unpacked/nsc ]] || die "$nsc_tarball: no nsc at the top of the tarball"
  for t in nsc docker-credential-nsc bazel-credential-nsc; do
    if [[ -f $unpacked/$t ]]; then file "$unpacked/$t" "/usr/local/bin/$t" 755; fi
  done
fi

# The installed configuration must load: a bad edit fails here, not in a job.
# (An image root of another architecture cannot be run here; say so.)
installed=$destdir/usr/local/bin/dockhand
if version=$("$installed" version 2>/dev/null); then
  if ! out=$("$installed" doctor --config "$destdir$conf" 2>&1 >/dev/null); then
    die "$conf does not load: $out"
  fi
else
  [[ -n $destdir ]] || die "$installed does not run on this machine: is it built for $(uname -m)?"
  version="dockhand (not runnable on this machine: not checked)"
fi

if [[ -z $destdir && -d /run/systemd/system && $changed -gt 0 ]]; then
  systemctl daemon-reload
  if systemctl is-active --quiet buildkite-agent; then
    echo "$prog: restart buildkite-agent when no job is running to apply: systemctl restart buildkite-agent"
  fi
fi
echo "$prog: $version: $changed changed, $unchanged unchanged${destdir:+ under $destdir}"
