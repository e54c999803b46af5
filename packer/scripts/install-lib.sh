# Shared by install-dockhand.sh and install-buildkitd.sh (sourced, not run).
# Every step is idempotent: it looks first and changes only what differs, so
# a second run with the same inputs changes nothing, not even a file's time.
#
# The caller sets: prog (its name), destdir ("" for /), as_root (true|false).

die() {
  echo "$prog: $*" >&2
  exit 1
}

changed=0
unchanged=0
note() { # changed|unchanged WHAT
  if [[ $1 == changed ]]; then
    changed=$((changed + 1))
    echo "$prog: installed $2"
  else
    unchanged=$((unchanged + 1))
  fi
}

uid_of() { if [[ $1 =~ ^[0-9]+$ ]]; then echo "$1"; else getent passwd "$1" | cut -d: -f3; fi; }
gid_of() { if [[ $1 =~ ^[0-9]+$ ]]; then echo "$1"; else getent group "$1" | cut -d: -f3; fi; }

# check_owner USER GROUP: both exist here, or are numeric.
check_owner() {
  [[ -n $1 && -n $2 ]] || die "--user and --group must not be empty"
  if [[ ! $1 =~ ^[0-9]+$ ]] && ! getent passwd "$1" >/dev/null; then
    die "user $1 does not exist on this machine: pass --user (a numeric uid works for an image root)"
  fi
  if [[ ! $2 =~ ^[0-9]+$ ]] && ! getent group "$2" >/dev/null; then
    die "group $2 does not exist on this machine: pass --group (a numeric gid works)"
  fi
}

# has_attrs PATH MODE USER GROUP: PATH already has that mode and owner (only
# the mode counts when not root: the owner cannot be set then).
has_attrs() {
  if $as_root; then
    [[ $(stat -c '%a %u %g' "$1") == "$2 $(uid_of "$3") $(gid_of "$4")" ]]
  else
    [[ $(stat -c '%a' "$1") == "$2" ]]
  fi
}

set_attrs() { # PATH MODE USER GROUP
  chmod "$2" "$1"
  if $as_root; then chown "$(uid_of "$3"):$(gid_of "$4")" "$1"; fi
}

# parents DIR...: standard directories that must exist (0755 root), created
# quietly in an empty image root and otherwise left alone.
parents() {
  local d
  for d in "$@"; do
    if [[ ! -d $destdir$d ]]; then
      mkdir -p "$destdir$d"
      set_attrs "$destdir$d" 755 0 0
    fi
  done
}

# dir PATH MODE [USER GROUP]: the directory exists with that mode and owner.
dir() {
  local path=$destdir$1 mode=$2 u=${3:-0} g=${4:-0}
  if [[ -d $path && ! -L $path ]] && has_attrs "$path" "$mode" "$u" "$g"; then
    note unchanged "$1"
    return
  fi
  [[ ! -e $path || -d $path ]] || die "$path exists and is not a directory"
  mkdir -p "$path"
  set_attrs "$path" "$mode" "$u" "$g"
  note changed "$1/ (mode $mode, owner $u:$g)"
}

tmpfiles=()
cleanup_tmpfiles() { if [[ ${#tmpfiles[@]} -gt 0 ]]; then rm -f "${tmpfiles[@]}"; fi; }
trap cleanup_tmpfiles EXIT

# file SRC PATH MODE: PATH has SRC's content, that mode and root's ownership.
# A changed file is written beside the old one and renamed over it, so a
# running program never sees half a file.
file() {
  local src=$1 path=$destdir$2 mode=$3
  if [[ -f $path && ! -L $path ]] && cmp -s "$src" "$path" && has_attrs "$path" "$mode" 0 0; then
    note unchanged "$2"
    return
  fi
  [[ ! -d $path || -L $path ]] || die "$path is a directory"
  local tmp
  tmp=$(mktemp "$(dirname "$path")/.$prog.XXXXXX")
  tmpfiles+=("$tmp")
  cp "$src" "$tmp"
  set_attrs "$tmp" "$mode" 0 0
  mv -f "$tmp" "$path"
  note changed "$2"
}

# config SRC PATH MODE [DEFAULT_COPY]: like file, but a PATH that exists and
# differs both from SRC and from the default shipped before (DEFAULT_COPY,
# where the shipped one is kept) was edited by an operator and is kept
# (unless force_config=true); an unedited one follows the release.
config() {
  local src=$1 path=$2 mode=$3 copy=${4:-}
  if [[ -e $destdir$path ]] && ! ${force_config:-false} && ! cmp -s "$src" "$destdir$path" &&
    ! { [[ -n $copy ]] && cmp -s "$destdir$copy" "$destdir$path"; }; then
    echo "$prog: kept $path (edited${copy:+; the shipped default is $copy})"
    note unchanged "$path"
  else
    file "$src" "$path" "$mode"
  fi
  if [[ -n $copy ]]; then file "$src" "$copy" "$mode"; fi
}

# link TARGET PATH: PATH is a symlink to TARGET.
link() {
  local target=$1 path=$destdir$2
  if [[ -L $path && $(readlink "$path") == "$target" ]]; then
    note unchanged "$2"
    return
  fi
  [[ ! -d $path || -L $path ]] || die "$path is a directory"
  local tmp
  tmp=$(mktemp -u "$(dirname "$path")/.$prog.XXXXXX")
  ln -s "$target" "$tmp"
  tmpfiles+=("$tmp")
  mv -Tf "$tmp" "$path"
  note changed "$2 -> $target"
}

# sync_dir SRC PATH MODE: PATH holds exactly SRC's regular files, each with
# MODE; files SRC no longer has are removed.
sync_dir() {
  local src=$1 path=$2 mode=$3 f name
  for f in "$src"/*; do
    if [[ -f $f ]]; then file "$f" "$path/$(basename "$f")" "$mode"; fi
  done
  for f in "$destdir$path"/*; do
    [[ -e $f || -L $f ]] || continue
    name=$(basename "$f")
    if [[ ! -f $src/$name ]]; then
      rm -rf "$f"
      note changed "$path/$name (removed: not shipped any more)"
    fi
  done
}

# resolve_destdir: destdir made absolute ("" for /).
resolve_destdir() {
  if [[ -n $destdir ]]; then
    destdir=$(mkdir -p "$destdir" && cd "$destdir" && pwd)
    [[ $destdir != / ]] || destdir=
  fi
}

# need_root: set as_root; only a --destdir install may run unprivileged.
need_root() {
  as_root=true
  if [[ $(id -u) -ne 0 ]]; then
    [[ -n $destdir ]] || die "run as root (or pass --destdir DIR to install into a directory)"
    as_root=false
    echo "$prog: not root: files keep your ownership" >&2
  fi
}
