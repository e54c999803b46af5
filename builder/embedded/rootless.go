package embedded

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dockhand-ci/dockhand/internal/proc"
	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// Rootless is how an unprivileged dockhand (the stack's buildkite-agent,
// uid 2000) runs the embedded buildkitd: under rootlesskit, in a user
// namespace mapped from the user's subordinate ids by newuidmap and
// newgidmap, so the daemon is root in there and the user outside.
type Rootless struct {
	Rootlesskit string // the executable ("" when none was found)
	User        string // the user's name (or uid): buildkitd's USER, which turns on its rootless defaults
	// SubUIDs and SubGIDs are the subordinate ids rootlesskit maps after the
	// user's own uid and gid: the user's ranges in /etc/subuid and
	// /etc/subgid without its own ids, which the Elastic CI Stack's
	// userns-remap lists too (buildkite-agent:2000:1) and which rootlesskit,
	// mapping them again, would have the kernel refuse.
	SubUIDs, SubGIDs []IDRange
	// Problem says why the daemon cannot be started here and how to fix it;
	// "" when nothing is missing.
	Problem string
}

// IDRange is a run of subordinate ids: Count ids from Start.
type IDRange struct{ Start, Count int }

// MinSubIDs is the smallest subordinate id range rootless buildkitd is
// given: an image's files may be owned by any of uids 0-65535.
const MinSubIDs = 65536

// RootlessHost is what CheckRootless reads of the host, as data: the
// user, the lookups and the files.
type RootlessHost struct {
	UID, GID    int                               // GID: the user's primary group
	User        string                            // the user's name ("" when uid has none)
	Rootlesskit string                            // embedded.rootlesskit ("": look on PATH)
	LookPath    func(name string) (string, error) // on the job's PATH; a path with a slash: whether it is an executable
	ReadFile    func(path string) ([]byte, error)
}

// Files CheckRootless reads.
const (
	subUIDFile       = "/etc/subuid"
	subGIDFile       = "/etc/subgid"
	maxUserNSFile    = "/proc/sys/user/max_user_namespaces"
	debianUserNSFile = "/proc/sys/kernel/unprivileged_userns_clone"
	apparmorNSFile   = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
)

// CheckRootless finds rootlesskit and says what of the rest is missing: the
// first problem found, naming the cause and the fix, in the order an
// operator would fix them. It starts nothing.
func CheckRootless(h RootlessHost) Rootless {
	r := Rootless{User: orUID(h), Rootlesskit: h.Rootlesskit}
	if r.Rootlesskit == "" {
		r.Rootlesskit, _ = h.LookPath("rootlesskit")
	}
	r.Problem = rootlessProblem(h, &r)
	return r
}

func rootlessProblem(h RootlessHost, r *Rootless) string {
	rootlesskit := r.Rootlesskit
	who := fmt.Sprintf("uid %d", h.UID)
	if h.User != "" {
		who = fmt.Sprintf("%s (uid %d)", h.User, h.UID)
	}
	prefix := "dockhand runs as " + who + " and starts buildkitd rootless: "
	if rootlesskit == "" {
		return prefix + "rootlesskit is not on PATH; install it (docs/install.md) or set embedded.rootlesskit"
	}
	if h.Rootlesskit != "" {
		if _, err := h.LookPath(h.Rootlesskit); err != nil {
			return prefix + "embedded.rootlesskit = " + strconv.Quote(h.Rootlesskit) + " is not an executable; install rootlesskit there (docs/install.md) or fix the key"
		}
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := h.LookPath(tool); err != nil {
			return prefix + tool + " is not on PATH; install the uidmap package (Debian, Ubuntu) or shadow-utils (Amazon Linux)"
		}
	}
	if v, ok := sysctl(h, maxUserNSFile); ok && v == "0" {
		return prefix + "user namespaces are disabled (user.max_user_namespaces = 0); set it with sysctl -w user.max_user_namespaces=28633"
	}
	if v, ok := sysctl(h, debianUserNSFile); ok && v == "0" {
		return prefix + "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0); set it with sysctl -w kernel.unprivileged_userns_clone=1"
	}
	if v, ok := sysctl(h, apparmorNSFile); ok && v == "1" {
		return prefix + "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1); give rootlesskit an AppArmor profile that allows userns, or set it to 0"
	}
	fix := fmt.Sprintf("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s", orUID(h))
	for _, f := range []struct {
		path   string
		own    int
		ranges *[]IDRange
	}{{subUIDFile, h.UID, &r.SubUIDs}, {subGIDFile, h.GID, &r.SubGIDs}} {
		b, err := h.ReadFile(f.path)
		if err != nil && !os.IsNotExist(err) {
			return prefix + "reading " + f.path + ": " + err.Error()
		}
		*f.ranges = subIDRanges(b, h.User, h.UID, f.own)
		if n := countIDs(*f.ranges); n < MinSubIDs {
			what := "no range"
			if n > 0 {
				what = fmt.Sprintf("only %d ids", n)
			}
			return fmt.Sprintf("%s%s has %s for %s, needs %d; add one: %s", prefix, f.path, what, orUID(h), MinSubIDs, fix)
		}
	}
	return ""
}

func orUID(h RootlessHost) string {
	if h.User != "" {
		return h.User
	}
	return strconv.Itoa(h.UID)
}

// sysctl reads a /proc/sys value; ok is false when the kernel has no such
// setting (then it restricts nothing).
func sysctl(h RootlessHost, path string) (string, bool) {
	b, err := h.ReadFile(path)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// subIDRanges lists the subordinate id ranges an /etc/subuid or
// /etc/subgid grants the user, by name or by uid, as newuidmap reads it
// (name:first:count), without the id own (the user's own uid or gid).
func subIDRanges(file []byte, name string, uid, own int) []IDRange {
	var out []IDRange
	s := bufio.NewScanner(bytes.NewReader(file))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || f[0] == "" || (f[0] != name && f[0] != strconv.Itoa(uid)) {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			continue
		}
		r := IDRange{int(start), int(count)}
		if own < r.Start || own >= r.Start+r.Count {
			out = append(out, r)
			continue
		}
		if own > r.Start {
			out = append(out, IDRange{r.Start, own - r.Start})
		}
		if end := r.Start + r.Count; own+1 < end {
			out = append(out, IDRange{own + 1, end - own - 1})
		}
	}
	return out
}

func countIDs(rs []IDRange) int {
	n := 0
	for _, r := range rs {
		n += r.Count
	}
	return n
}

// HostRootless is CheckRootless on this host for a dockhand running as uid
// with the job's PATH; embedded.rootlesskit when set.
func HostRootless(uid int, path, rootlesskit string) Rootless {
	name, gid := "", os.Getgid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
		if g, err := strconv.Atoi(u.Gid); err == nil {
			gid = g
		}
	}
	return CheckRootless(RootlessHost{
		UID: uid, GID: gid, User: name, Rootlesskit: rootlesskit,
		LookPath: func(n string) (string, error) {
			if !strings.Contains(n, "/") {
				return proc.LookPath(n, path)
			}
			if fi, err := os.Stat(n); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
				return "", fmt.Errorf("%s is not an executable", n)
			}
			return n, nil
		},
		ReadFile: os.ReadFile,
	})
}

// The rootless daemon's own dirs under the embedded dir: rootlesskit's
// state (its API socket) and buildkitd's XDG_RUNTIME_DIR (its trace socket).
const (
	getsubidsName  = "getsubids" // what rootlesskit's dynamic subid source runs: SubUIDs and SubGIDs
	rootlesskitDir = "rk"
	runtimeDir     = "run"
	traceSock      = "buildkit/otel-grpc.sock" // under XDG_RUNTIME_DIR, as buildkitd names it
)

// rootlessCommand is the argv and environment that start buildkitd (with
// args) under rootlesskit: the host's network as the rootful daemon has it
// (loopback registries, the same DNS), its own pid namespace so each build
// step gets a process sandbox.
func (e Embedded) rootlessCommand(args, env []string) ([]string, []string) {
	argv := append([]string{e.Rootless.Rootlesskit, "--net=host", "--pidns",
		"--state-dir=" + filepath.Join(e.Dir, rootlesskitDir), "--subid-source=dynamic", e.Buildkitd}, args...)
	env = append(env[:len(env):len(env)], "USER="+e.Rootless.User, "XDG_RUNTIME_DIR="+filepath.Join(e.Dir, runtimeDir),
		"GETSUBIDS="+filepath.Join(e.Dir, getsubidsName))
	return argv, env
}

// longestSocket is the longest unix socket path the daemon will make.
func (e Embedded) longestSocket() string {
	if e.Rootless == nil {
		return e.sock()
	}
	return filepath.Join(e.Dir, runtimeDir, traceSock)
}

// rootlessDirs makes the rootless daemon's runtime dir (0700), clears
// rootlesskit's state dir, which a dead daemon may have left, and writes
// the getsubids rootlesskit asks for the ranges to map.
func (e Embedded) rootlessDirs() error {
	if err := os.RemoveAll(filepath.Join(e.Dir, rootlesskitDir)); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(e.Dir, runtimeDir), 0o700); err != nil {
		return err
	}
	path := filepath.Join(e.Dir, getsubidsName)
	if err := safefile.Write(path, []byte(getsubidsScript(*e.Rootless))); err != nil {
		return err
	}
	return os.Chmod(path, 0o700)
}

// getsubidsScript is a getsubids(1) for rootlesskit's dynamic subid source
// (`getsubids [-g] USER`, one "N: USER START COUNT" line a range) that
// answers r's ranges, whoever is asked about: rootlesskit asks about the
// user by name and by uid.
func getsubidsScript(r Rootless) string {
	lines := func(rs []IDRange) string {
		var b strings.Builder
		for i, x := range rs {
			fmt.Fprintf(&b, "%d: %s %d %d\n", i, "dockhand", x.Start, x.Count)
		}
		return b.String()
	}
	return "#!/bin/sh\n# Written by dockhand for rootlesskit (--subid-source=dynamic): the agent user's subordinate ids\n" +
		"# from /etc/subuid and /etc/subgid, without its own uid and gid, which rootlesskit maps as root.\n" +
		"if [ \"$1\" = -g ]; then\n  printf '%s' '" + lines(r.SubGIDs) + "'\nelse\n  printf '%s' '" + lines(r.SubUIDs) + "'\nfi\n"
}
