package packer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// tool is a real component from .tools/bin; missing, the test fails.
func tool(t *testing.T, name string) string {
	t.Helper()
	dir, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing from %s: run make tools", name, dir)
	}
	return p
}

// dockhandDir is the directory holding the dockhand and dockhand-cloud under
// test, as install-dockhand.sh --from wants it.
func dockhandDir(t *testing.T) string {
	t.Helper()
	return filepath.Dir(harness.DockhandBin(t))
}

// run runs a command and returns its combined output and exit code.
func run(t *testing.T, env []string, name string, args ...string) (string, int) {
	t.Helper()
	return runIn(t, "", env, name, args...)
}

// runIn is run in directory dir ("" for the current one).
func runIn(t *testing.T, dir string, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s %q: %v", name, args, err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// mustRun is run that fails the test on a non-zero exit.
func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, code := run(t, env, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

// cleanEnv is the test's environment without what would change how the
// scripts or dockhand behave.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DESTDIR" || strings.HasPrefix(k, "BUILDKITD_") || strings.HasPrefix(k, "DOCKHAND_") ||
			strings.HasPrefix(k, "BUILDKITE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// entry is what the manifest records of one path below a root.
type entry struct {
	Type     string // file, dir, link
	Mode     fs.FileMode
	UID, GID uint32
	Sum      string // sha256 of a file's content
	Link     string // a symlink's target
	MTime    int64  // nanoseconds: a rewritten file shows up even with the same content
}

func (e entry) String() string {
	return fmt.Sprintf("%s %04o %d:%d %s%s mtime=%d", e.Type, e.Mode.Perm(), e.UID, e.GID, e.Sum, e.Link, e.MTime)
}

// manifest records every path below root (as "/path"), with its type, mode,
// owner, content hash or link target, and modification time.
func manifest(t *testing.T, root string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{Mode: fi.Mode().Perm(), UID: st.Uid, GID: st.Gid, MTime: fi.ModTime().UnixNano()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = "link"
			if e.Link, err = os.Readlink(p); err != nil {
				return err
			}
			e.Mode = 0
		case fi.IsDir():
			e.Type = "dir"
		case fi.Mode().IsRegular():
			e.Type = "file"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			e.Sum = hex.EncodeToString(sum[:])
		default:
			e.Type = fi.Mode().Type().String()
		}
		m[strings.TrimPrefix(p, root)] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// diffManifests lists the paths whose entries differ, sorted.
func diffManifests(a, b map[string]entry) []string {
	var out []string
	for p, e := range a {
		if f, ok := b[p]; !ok {
			out = append(out, "- "+p)
		} else if e != f {
			out = append(out, fmt.Sprintf("~ %s: %s -> %s", p, e, f))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "+ "+p)
		}
	}
	sort.Strings(out)
	return out
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func writeFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
