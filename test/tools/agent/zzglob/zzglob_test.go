package zzglob

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"**/*.go", "cmd/main.go", true},
		{"src/{a,b}/x", "src/b/x", true},
		{"src/?.txt", "src/ab.txt", false},
	} {
		p, err := Parse(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(tc.name); got != tc.want {
			t.Errorf("Parse(%q).Match(%q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestGlob(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a/x.txt", "a/b/y.txt", "a/b/z.go"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	p := MustParse(filepath.ToSlash(dir) + "/a/**/*.txt")
	var got []string
	err := p.Glob(func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, name)
		got = append(got, rel)
		return nil
	}, WalkIntermediateDirs(true))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{"a", "a/b/y.txt", "a/x.txt"}
	if len(got) != len(want) {
		t.Fatalf("Glob = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Glob = %q, want %q", got, want)
		}
	}
}
