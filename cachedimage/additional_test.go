package cachedimage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseAdditional(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ci.env", "dev.env", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"SSH_AUTH_SOCK": "/tmp/agent.sock", "KEY_DIR": "/keys", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, c := range []struct {
		in    string
		words []string
		tags  []string
		notes int
	}{
		{"", nil, nil, 0},
		// Passed through as docker receives them from the plugin, flags
		// dockhand knows nothing about included.
		{"--build-arg A=1 --build-context\tlib=../lib\n--secret id=x,env=X --shm-size 2g --no-cache",
			[]string{"--build-arg", "A=1", "--build-context", "lib=../lib", "--secret", "id=x,env=X", "--shm-size", "2g", "--no-cache"}, nil, 0},
		// Quotes and $ are not interpreted outside --ssh, as bash's
		// unquoted expansion does not.
		{`--label "a b" --build-arg V=$HOME`, []string{"--label", `"a`, `b"`, "--build-arg", "V=$HOME"}, nil, 0},
		// Globbing in the checkout; ** is * (no globstar); no match stays.
		{"--build-arg-file *.env --x=[n]otes.* --y **.txt --z *.none",
			[]string{"--build-arg-file", "ci.env", "dev.env", "--x=[n]otes.*", "--y", "notes.txt", "--z", "*.none"}, nil, 0},
		// The plugin README's form, with the variable left for later.
		{`--ssh= default=$SSH_AUTH_SOCK`, []string{"--ssh=default=/tmp/agent.sock"}, nil, 2},
		{`--ssh default=$SSH_AUTH_SOCK --ssh=deploy=${KEY_DIR}/id,$KEY_DIR/id2`,
			[]string{"--ssh", "default=/tmp/agent.sock", "--ssh=deploy=/keys/id,/keys/id2"}, nil, 2},
		{`--ssh default --ssh=k=$UNSET,$EMPTY,$,${,$1`, []string{"--ssh", "default", "--ssh=k=$UNSET,,$,${,$1"}, nil, 1},
		// A flag value that is a flag, or `--x=` at the end, is docker's to judge.
		{"--label= --pull --platform=", []string{"--label=", "--pull", "--platform="}, nil, 0},
		{"-t a:1 --tag b:2 --tag=c:3 -td:4 -t=e:5 --target t -q",
			[]string{"--target", "t", "-q"}, []string{"a:1", "b:2", "c:3", "d:4", "e:5"}, 5},
		{"--tag= x:1 -t", []string{"-t"}, []string{"x:1"}, 2},
	} {
		a := ParseAdditional(c.in, dir, true, lookup)
		if !reflect.DeepEqual(a.Words, c.words) || !reflect.DeepEqual(a.Tags, c.tags) || len(a.Notes) != c.notes {
			t.Errorf("ParseAdditional(%q):\nwords %q\ntags  %q\nnotes %q\nwant  %q %q and %d notes", c.in, a.Words, a.Tags, a.Notes, c.words, c.tags, c.notes)
		}
	}
	a := ParseAdditional("--ssh= default=$SSH_AUTH_SOCK", dir, true, lookup)
	if len(a.Notes) == 2 && (!strings.Contains(a.Notes[0], `read "--ssh=" "default=$SSH_AUTH_SOCK" as "--ssh=default=$SSH_AUTH_SOCK"`) ||
		!strings.Contains(a.Notes[1], "the job's variables give default=/tmp/agent.sock")) {
		t.Errorf("notes %q", a.Notes)
	}
}

// TestAdditionalWordsMatchBash: without the repairs, the words are the ones
// the plugin's unquoted expansion gives docker, by real bash in the same
// directory.
func TestAdditionalWordsMatchBash(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.env", "b.env", ".hidden.env", "sub/c.env", "x y.txt", "[x].txt"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range []string{
		"--build-arg A=1   --no-cache\t--platform linux/amd64,linux/arm64\n",
		"*.env .*.env */*.env **/*.env ** sub/** --f=*.env",
		`x\ y.txt "x y.txt" 'q' \*.env [x].txt \[x\].txt ?.env *.nothing [ab].env`,
		"  leading and trailing  ",
	} {
		cmd := exec.Command("/bin/bash", "-c", `set -- $V; for w in "$@"; do printf '%s\0' "$w"; done`)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "V=" + in}
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		var want []string
		if out.Len() > 0 {
			want = strings.Split(strings.TrimSuffix(out.String(), "\x00"), "\x00")
		}
		got := ParseAdditional(in, dir, true, func(string) (string, bool) { return "", false }).Words
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\ndockhand %q\nbash     %q", in, got, want)
		}
	}
}
