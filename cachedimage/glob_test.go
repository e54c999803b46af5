package cachedimage

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// bashExpand expands each pattern with real bash (globstar on) in dir and
// returns the words, one list per pattern.
func bashExpand(t *testing.T, dir, locale string, patterns []string) [][]string {
	t.Helper()
	var script strings.Builder
	script.WriteString("shopt -s globstar\n")
	for _, p := range patterns {
		fmt.Fprintf(&script, "for f in %s; do printf '%%s\\0' \"$f\"; done; printf '\\1\\0'\n", shellQuoteForUnquotedUse(p))
	}
	cmd := exec.Command("/bin/bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=" + locale}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash: %v\n%s", err, errb.String())
	}
	var res [][]string
	var cur []string
	for _, w := range strings.Split(strings.TrimSuffix(out.String(), "\x00"), "\x00") {
		if w == "\x01" {
			res = append(res, cur)
			cur = nil
			continue
		}
		cur = append(cur, w)
	}
	return res
}

// shellQuoteForUnquotedUse puts p in a variable and expands it unquoted, as
// the plugin does, so bash splits and globs it but does not parse it.
func shellQuoteForUnquotedUse(p string) string {
	return "$(printf '%s' '" + strings.ReplaceAll(p, "'", `'\''`) + "')"
}

// filesOnly drops the words naming directories: they add nothing to a tag
// (sha1sum fails on them) and bash spells some of them with a trailing
// slash, some without.
func filesOnly(dir string, words []string) []string {
	var out []string
	for _, w := range words {
		p := w
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, w)
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			continue
		}
		out = append(out, w)
	}
	return out
}

// TestGlobMatchesBash expands hand-picked and random patterns over random
// trees with dockhand and with bash, and wants the same files in the same
// order.
func TestGlobMatchesBash(t *testing.T) {
	fixed := []string{
		"**/package.json", "**", "**/", "*", "*/", "*/**", "a/**", "a/**/", "**/*.json", "**/b/**/*.json", "**/**/x.json",
		"./**/x.json", "a/../*", ".*", "**/.*", "**/.h/x.json", "?", "[ab]*", "[!a]*", "[^a]*", "[]a]*", "[a-c]/*",
		"[[:upper:]]*", "[[:digit:]]*", "*[", "a[", `\*`, `a\*`, `*\.json`, "a*b", "**.json", "a**", "*/*/*",
		"L/*", "L/**", "**/L/*", "a b", "nomatch*", "/nonexistent-dockhand/*", "a//*",
	}
	r := rand.New(rand.NewPCG(7, 11))
	names := []string{"a", "b", "A", "B", "a-b", "a_b", "a.b", ".h", "x.json", "y.json", "a b", "Z", "0", "é", "[a]", "a*"}
	for round := range 8 {
		dir := t.TempDir()
		files := map[string]string{}
		var dirs []string
		var walk func(prefix string, depth int)
		walk = func(prefix string, depth int) {
			for _, n := range names {
				if r.IntN(4) != 0 {
					continue
				}
				p := filepath.Join(prefix, n)
				if n != "x.json" && depth < 3 && r.IntN(2) == 0 {
					dirs = append(dirs, p)
					walk(p, depth+1)
					files[filepath.Join(p, "x.json")] = "x"
				} else {
					files[p] = n
				}
			}
		}
		walk("", 0)
		if len(dirs) > 0 {
			files["L"] = "->" + dirs[0]
			files[filepath.Join(dirs[len(dirs)-1], "M")] = "->" + filepath.Join(dir, dirs[0])
		}
		files["dangling.json"] = "->nowhere"
		tree(t, dir, files)
		patterns := slices.Clone(fixed)
		comps := []string{"*", "?", "**", "a", "x.json", "*.json", "[ab]", "[!a]*", ".*", "a*", "*b", "[[:lower:]]*", "L", "M"}
		for i := range 60 {
			n := 1 + r.IntN(4)
			var c []string
			if i%4 == 0 {
				c = append(c, ".")
			}
			for range n {
				c = append(c, comps[r.IntN(len(comps))])
			}
			patterns = append(patterns, strings.Join(c, "/"))
		}
		for _, locale := range []string{"C.UTF-8", "C"} {
			want := bashExpand(t, dir, locale, patterns)
			for i, p := range patterns {
				var got []string
				for _, w := range splitWords(p) {
					e, _ := expandWord(dir, w, locale == "C.UTF-8")
					got = append(got, e...)
				}
				if g, w := filesOnly(dir, got), filesOnly(dir, want[i]); !slices.Equal(g, w) {
					t.Errorf("round %d, %s, pattern %q:\ndockhand %q\nbash     %q", round, locale, p, g, w)
				}
			}
		}
	}
}

func TestMatchName(t *testing.T) {
	g := &globber{utf8: true}
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "abc", true}, {"*", ".abc", false}, {".*", ".abc", true}, {".*", ".", false}, {".*", "..", false},
		{`\.*`, ".abc", true}, {"[.]*", ".abc", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"a?c", "aéc", true}, {"[a-c]x", "bx", true}, {"[!a-c]x", "bx", false}, {"[^a-c]x", "dx", true},
		{"[]]", "]", true}, {"[a-]", "-", true}, {"[[:alpha:]]1", "Q1", true}, {"[[:alpha:]]1", "11", false},
		{"a[", "a[", true}, {`a\*`, "a*", true}, {`a\*`, "ab", false}, {"*.json", "x.json", true},
		{"*a*b*", "xxaxxbxx", true}, {"*a*b", "ab_a", false}, {"[[=a=]]", "a", true},
	} {
		if got := g.matchName(c.pattern, c.name); got != c.want {
			t.Errorf("matchName(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}
