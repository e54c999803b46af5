package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dockhand-ci/dockhand/internal/filelock"
)

// The Elastic CI Stack runs the agent as the unprivileged user
// buildkite-agent, uid 2000, in the docker group (the engine's socket is
// group-accessible); the kit makes the same user on this machine.
const (
	StackUserName  = "buildkite-agent"
	StackUserUID   = 2000
	StackGroupName = "docker"
)

// User is an unprivileged account that processes of the kit run as.
type User struct {
	Name     string
	UID, GID int    // GID: the user's primary group
	Docker   int    // the docker group's gid (a supplementary group)
	Home     string // its home directory (made by the kit)
}

// StackUser returns the stack's agent user, making it (and the docker group)
// the first time: uid 2000 when that uid is free, else one useradd picks;
// with subordinate uid and gid ranges (rootless buildkitd) as the AMI gives it.
// It needs root; processes of several test binaries may race to make it, so
// the making is under a lock.
func StackUser() (*User, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("making the user %s needs root (running as uid %d)", StackUserName, os.Geteuid())
	}
	release, err := filelock.Lock(context.Background(), filepath.Join(os.TempDir(), "dockhand-stack-user.lock"), 0)
	if err != nil {
		return nil, err
	}
	defer release()
	if _, err := user.LookupGroup(StackGroupName); err != nil {
		if out, err := exec.Command("groupadd", "--system", StackGroupName).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("groupadd %s: %w: %s", StackGroupName, err, out)
		}
	}
	if _, err := user.Lookup(StackUserName); err != nil {
		args := []string{"--create-home", "--shell", "/bin/bash", "--groups", StackGroupName}
		if _, err := user.LookupId(strconv.Itoa(StackUserUID)); err != nil {
			args = append(args, "--uid", strconv.Itoa(StackUserUID))
		}
		if out, err := exec.Command("useradd", append(args, StackUserName)...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("useradd %s: %w: %s", StackUserName, err, out)
		}
	}
	if err := ensureSubIDs(StackUserName); err != nil {
		return nil, err
	}
	reachTools()
	return lookupUser(StackUserName)
}

// reachTools lets the user reach the real components and the dockhand under
// test wherever the checkout is (a clone under a 0700 home, say): search
// permission on their dirs' ancestors, nothing listable. Best effort: a
// component it cannot reach fails its test with the path named.
func reachTools() {
	if bin, err := FindToolBin(os.Environ()); err == nil {
		_ = Passable(filepath.Join(bin, "buildkite-agent"))
	}
	if p := os.Getenv("DOCKHAND_BIN"); p != "" {
		_ = Passable(p)
	}
}

func lookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	g, err := user.LookupGroup(StackGroupName)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	docker, _ := strconv.Atoi(g.Gid)
	return &User{Name: u.Username, UID: uid, GID: gid, Docker: docker, Home: u.HomeDir}, nil
}

// MustStackUser is StackUser for a test: failing to make the user fails it.
// The test holds its Slot from then on.
func MustStackUser(t testing.TB) *User {
	t.Helper()
	Slot(t)
	u, err := StackUser()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Credential runs a process as the user, with the docker group.
func (u *User) Credential() *syscall.Credential {
	return &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{uint32(u.GID), uint32(u.Docker)}}
}

// Env is the user's HOME, USER and LOGNAME, as a login would set them.
func (u *User) Env() []string {
	return []string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name}
}

// Chown gives the user everything under each path (links are not followed).
func (u *User) Chown(paths ...string) error {
	for _, p := range paths {
		err := filepath.Walk(p, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, u.UID, u.GID)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// TempDir is t.TempDir owned by the user, its ancestors made passable (but
// not listable) by others: Go makes a test's temp root 0700 for its owner.
func (u *User) TempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := u.Chown(dir); err != nil {
		t.Fatal(err)
	}
	if err := Passable(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Passable adds search (x) permission for others to every ancestor of path
// that lacks it, so another user can reach path without listing its parents.
func Passable(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("making %s passable: %w", dir, err)
			}
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// asUserEnv marks a test binary that RunTest started as the user.
const asUserEnv = "DOCKHAND_TEST_AS_USER"

// IsUserRun reports whether this test process is the one RunTest started:
// the test then does its part as the user, and its parent checked the rest.
func IsUserRun() bool { return os.Getenv(asUserEnv) != "" }

// RunTest runs the test named name of this test binary again as u, with env
// added, so that root's bypass of file modes cannot hide what the test
// checks: the binary is copied where u can reach it (Go builds it under a
// 0700 dir). A failure of that run fails t, with its output.
func (u *User) RunTest(t testing.TB, name string, env ...string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(u.TempDir(t), filepath.Base(self))
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(append(append(os.Environ(), u.Env()...), asUserEnv+"=1"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s as %s (uid %d): %v\n%s", name, u.Name, u.UID, err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("%s as %s (uid %d) did not run:\n%s", name, u.Name, u.UID, out)
	}
}

// NeedRoot skips a test that must make or become the stack user when it is
// run by hand as another user; in CI (CI set), which runs as root, a missing
// root fails the test instead.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but the tests do not run as root: %s", why)
	}
	t.Skip(why)
}
