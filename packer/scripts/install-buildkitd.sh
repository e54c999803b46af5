#!/usr/bin/env bash
# Installs a remote BuildKit builder for dockhand: buildkitd, buildctl and
# runc, the systemd units that put the cache on the data volume, place the TLS
# files at boot and start buildkitd with mutual TLS (or refuse to listen), and
# the configuration template whose GC policy is sized from the cache volume.
# packer/buildkitd.pkr.hcl runs it; it works the same by hand on a running
# Amazon Linux 2023 instance, and a second run changes nothing.
#
# What it installs (under DESTDIR when given):
#   /usr/local/bin/buildkitd, /usr/local/bin/buildctl                0755 root
#   /usr/local/sbin/runc                                             0755 root, with --runc
#   /usr/local/libexec/dockhand/buildkitd-{start,config,volume,fetch-tls,drain,lifecycle}   0755 root
#   /etc/systemd/system/buildkitd{,-volume,-tls,-lifecycle}.service  0644 root
#   /etc/systemd/system/multi-user.target.wants/buildkitd{,-lifecycle}.service    enabled
#   /etc/buildkit/buildkitd.toml.tmpl                                0644 root, kept if edited
#   /etc/default/buildkitd                                           0644 root, kept if edited
#   /etc/buildkit/tls/                                               0700 root, for the TLS files
#   /var/lib/buildkit/                                               0700 root, the cache root
set -euo pipefail

prog=install-buildkitd.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=install-lib.sh
. "$here/install-lib.sh"

usage() {
  cat <<EOF
Usage: $prog [options]

Options:
  --buildkit-tarball FILE  a BuildKit release tarball (bin/buildkitd, bin/buildctl)
  --buildkitd FILE         the buildkitd binary (instead of the tarball)
  --buildctl FILE          the buildctl binary (instead of the tarball)
  --runc FILE              the runc binary; without it runc must be installed already
                           (on Amazon Linux 2023: dnf install -y runc)
  --files DIR              the unit files and helpers (default: $here/../files/buildkitd)
  --force-config           replace an edited /etc/buildkit/buildkitd.toml.tmpl and
                           /etc/default/buildkitd with the shipped ones
  --destdir DIR            install under DIR instead of / (also: DESTDIR=DIR); no systemctl
  -h, --help               this help
EOF
}

tarball= buildkitd= buildctl= runc=
files=$here/../files/buildkitd
force_config=false
destdir=${DESTDIR:-}
while [[ $# -gt 0 ]]; do
  case $1 in
    --buildkit-tarball | --buildkitd | --buildctl | --runc | --files | --destdir)
      [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
      case $1 in
        --buildkit-tarball) tarball=$2 ;;
        --buildkitd) buildkitd=$2 ;;
        --buildctl) buildctl=$2 ;;
        --runc) runc=$2 ;;
        --files) files=$2 ;;
        --destdir) destdir=$2 ;;
      esac
      shift 2
      ;;
    --force-config) force_config=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
resolve_destdir

if [[ -n $tarball ]]; then
  [[ -f $tarball ]] || die "--buildkit-tarball $tarball: no such file"
  unpacked=$(mktemp -d)
  trap 'cleanup_tmpfiles; rm -rf "$unpacked"' EXIT
  tar -xzf "$tarball" -C "$unpacked"
  buildkitd=${buildkitd:-$unpacked/bin/buildkitd}
  buildctl=${buildctl:-$unpacked/bin/buildctl}
fi
[[ -n $buildkitd && -n $buildctl ]] || die "pass --buildkit-tarball FILE, or --buildkitd FILE and --buildctl FILE"
for f in "$buildkitd" "$buildctl" ${runc:+"$runc"}; do
  [[ -f $f ]] || die "$f: no such file"
done
units=(buildkitd.service buildkitd-volume.service buildkitd-tls.service buildkitd-lifecycle.service)
helpers=(buildkitd-start buildkitd-config buildkitd-volume buildkitd-fetch-tls buildkitd-drain buildkitd-lifecycle)
for f in "${units[@]}" "${helpers[@]}" buildkitd.toml.tmpl buildkitd.env; do
  [[ -f $files/$f ]] || die "$files/$f: missing (pass --files DIR)"
done
need_root
if [[ -z $runc && -z $destdir ]] && ! command -v runc >/dev/null; then
  die "runc is not installed: pass --runc FILE, or install it first (dnf install -y runc)"
fi

parents /usr/local/bin /usr/local/sbin /usr/local/libexec /etc/systemd/system/multi-user.target.wants /etc/default /var/lib
dir /usr/local/libexec/dockhand 755
dir /etc/buildkit 755
dir /etc/buildkit/tls 700
dir /var/lib/buildkit 700

file "$buildkitd" /usr/local/bin/buildkitd 755
file "$buildctl" /usr/local/bin/buildctl 755
if [[ -n $runc ]]; then
  file "$runc" /usr/local/sbin/runc 755
fi
for h in "${helpers[@]}"; do
  file "$files/$h" "/usr/local/libexec/dockhand/$h" 755
done
for u in "${units[@]}"; do
  file "$files/$u" "/etc/systemd/system/$u" 644
done
config "$files/buildkitd.toml.tmpl" /etc/buildkit/buildkitd.toml.tmpl 644
config "$files/buildkitd.env" /etc/default/buildkitd 644
# What `systemctl enable buildkitd` does, so it works in an image root too.
link /etc/systemd/system/buildkitd.service /etc/systemd/system/multi-user.target.wants/buildkitd.service
link /etc/systemd/system/buildkitd-lifecycle.service /etc/systemd/system/multi-user.target.wants/buildkitd-lifecycle.service

# The template must render (a bad edit fails here, not at boot).
out=$(mktemp)
tmpfiles+=("$out")
"$destdir/usr/local/libexec/dockhand/buildkitd-config" --template "$destdir/etc/buildkit/buildkitd.toml.tmpl" \
  --root "$destdir/var/lib/buildkit" --out "$out" --size 100000000000 ||
  die "/etc/buildkit/buildkitd.toml.tmpl does not render"

if [[ -z $destdir && -d /run/systemd/system && $changed -gt 0 ]]; then
  systemctl daemon-reload
fi
version=$("$destdir/usr/local/bin/buildkitd" --version 2>/dev/null || echo "buildkitd (not runnable on this machine: not checked)")
echo "$prog: $version: $changed changed, $unchanged unchanged${destdir:+ under $destdir}"
