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
#   /usr/local/bin/buildctl                                      with --buildctl
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
nsc_tarball=
force_config=false
destdir=${DESTDIR:-}

while [[ $# -gt 0 ]]; do
  case $1 in
    --from | --files | --hooks | --user | --group | --buildctl | --nsc-tarball | --destdir)
      [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
      case $1 in
        --from) from=$2 ;;
        --files) files=$2 ;;
        --hooks) hooks=$2 ;;
        --user) user=$2 ;;
        --group) group=$2 ;;
        --buildctl) buildctl=$2 ;;
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

# Optional tools, from files given to the build (no download here).
if [[ -n $buildctl ]]; then
  file "$buildctl" /usr/local/bin/buildctl 755
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
