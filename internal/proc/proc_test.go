package proc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLookPath(t *testing.T) {
	a, b, cwd := t.TempDir(), t.TempDir(), t.TempDir()
	write := func(dir, name string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(a, "tool", 0o644) // not executable: passed over
	write(b, "tool", 0o755)
	write(cwd, "planted", 0o755)
	if err := os.Mkdir(filepath.Join(a, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(cwd)
	for _, c := range []struct{ name, path, want, err string }{
		{"tool", a + ":" + b, filepath.Join(b, "tool"), ""},
		{"tool", b + ":" + a, filepath.Join(b, "tool"), ""},
		{"dir", a, "", "dir is not on PATH"},
		{"planted", ":" + a, "", "planted is not on PATH"}, // an empty entry is not the working dir
		{"planted", "", "", "planted is not on PATH"},
		{"/bin/sh", "", "/bin/sh", ""},
		{"tool", "", "", "tool is not on PATH"},
	} {
		got, err := LookPath(c.name, c.path)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("LookPath(%q, %q) = %q, %v; want %q, %q", c.name, c.path, got, err, c.want, c.err)
		}
	}
}

type vars map[string]string

func (v vars) Get(k string) (string, bool) { s, ok := v[k]; return s, ok }

func TestFindAgent(t *testing.T) {
	bin, path := t.TempDir(), t.TempDir()
	for _, dir := range []string{bin, path} {
		if err := os.WriteFile(filepath.Join(dir, AgentBinary), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		env  vars
		want string
	}{
		{vars{"BUILDKITE_BIN_PATH": bin, "PATH": path}, filepath.Join(bin, AgentBinary)},
		{vars{"BUILDKITE_BIN_PATH": t.TempDir(), "PATH": path}, filepath.Join(path, AgentBinary)},
		{vars{"PATH": path}, filepath.Join(path, AgentBinary)},
	} {
		if got, err := FindAgent(c.env); got != c.want || err != nil {
			t.Errorf("FindAgent(%v) = %q, %v; want %q", c.env, got, err, c.want)
		}
	}
	if _, err := FindAgent(vars{"PATH": t.TempDir()}); err == nil || !strings.Contains(err.Error(), "BUILDKITE_BIN_PATH or PATH") {
		t.Errorf("no agent: %v", err)
	}
}

func TestLastLine(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"one\n":             "one",
		"one\ntwo\n\n  ":    "two",
		"a\n  indented  \n": "indented",
	} {
		if got := LastLine(in); got != want {
			t.Errorf("LastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReason: nsc's two error formats (an API refusal, then its help
// footer; a local error framed by "=" lines, then the footer) and
// docker-credential-nsc's (framed, no footer) give the text of the Failed:
// block, wrapped lines joined; anything else its last line.
func TestReason(t *testing.T) {
	footer := "\nSee https://namespace.so/docs for more help.\nAgents: fetch https://namespace.so/docs/llms.txt for the CLI reference.\n"
	frame := "========================================"
	for _, tc := range []struct{ name, stderr, want string }{
		{"nsc API refusal", "\nFailed: it seems that's not allowed. We got: tenant tnt does not\ntrust this identity\n\n" + footer,
			"it seems that's not allowed. We got: tenant tnt does not trust this identity"},
		{"nsc unauthenticated", "\nFailed: no credentials found. We got: token expired\n\n\nPlease run nsc login.\n" + footer,
			"no credentials found. We got: token expired"},
		{"nsc local error", "\n" + frame + "\nFailed: not logged in: run nsc auth login\n" + frame + "\n" + footer,
			"not logged in: run nsc auth login"},
		{"credential helper", "\n" + frame + "\nFailed: credentials not found in native keychain\n" + frame + "\n",
			"credentials not found in native keychain"},
		{"message on the next lines", "progress\nFailed:\n  first\n  second\n" + frame + "\n", "first second"},
		{"the last of two blocks", "Failed: early\n\nFailed: late\n\n", "late"},
		{"no block", "warming up\nError: boom\n", "Error: boom"},
		{"an empty block", "Failed:\n\nlast words\n", "last words"},
		{"long", "Failed: " + strings.Repeat("x", 400) + "\n", strings.Repeat("x", 300) + "…"},
	} {
		if got := Reason(tc.stderr); got != tc.want {
			t.Errorf("%s: Reason = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestRunDoesNotWaitForAGrandchild: a child killed at its deadline, or one
// that exits leaving a grandchild holding its stdout, is waited for at most
// WaitDelay more.
func TestRunDoesNotWaitForAGrandchild(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shell string
		bound time.Duration
	}{
		{"hangs", "setsid sleep 5 & exec sleep 5", 300*time.Millisecond + WaitDelay},
		{"exits, grandchild holds stdout", "setsid sleep 5 & echo started", WaitDelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, _, _ = Run(ctx, []string{"PATH=/usr/bin:/bin"}, nil, "/bin/sh", "-c", tc.shell)
			if took := time.Since(start); took > tc.bound+time.Second {
				t.Errorf("returned after %s, want at most %s (and a load margin)", took, tc.bound)
			}
		})
	}
}

// TestIssue23_7_RelativePathEntriesRefused: a relative PATH entry ("." or
// "bin") names a dir under the job's working directory, the checkout, where
// a pipeline could plant a binary. Like Go's exec.LookPath (ErrDot) it is
// refused: the name is found only in an absolute entry, and when a relative
// entry is all that has it, the error says so.
func TestIssue23_7_RelativePathEntriesRefused(t *testing.T) {
	cwd, abs := t.TempDir(), t.TempDir()
	for _, p := range []string{filepath.Join(cwd, "nsc"), filepath.Join(cwd, "bin", "nsc"), filepath.Join(abs, "nsc")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(cwd)
	for _, path := range []string{".", "bin", "./bin", "../" + filepath.Base(cwd)} {
		got, err := LookPath("nsc", path+":"+abs)
		if got != filepath.Join(abs, "nsc") || err != nil {
			t.Errorf("LookPath(nsc, %q) = %q, %v; want the absolute entry's", path+":"+abs, got, err)
		}
		got, err = LookPath("nsc", path)
		if got != "" || err == nil || !errors.Is(err, ErrRelative) || !strings.Contains(err.Error(), path) {
			t.Errorf("LookPath(nsc, %q) = %q, %v; want ErrRelative naming %q", path, got, err, path)
		}
	}
}
