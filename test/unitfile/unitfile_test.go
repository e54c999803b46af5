package unitfile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{in: "", want: nil},
		{in: "a b\tc", want: []string{"a", "b", "c"}},
		{in: "  padded   words  ", want: []string{"padded", "words"}},
		{in: `"A=b c" D=e`, want: []string{"A=b c", "D=e"}},
		{in: `'single quoted' "double"`, want: []string{"single quoted", "double"}},
		{in: `"with \"escaped\" quotes"`, want: []string{`with "escaped" quotes`}},
		{in: `a\sb c\\d`, want: []string{"a b", `c\d`}},
		{in: `tab\there`, want: []string{"tab\there"}},
		{in: `"BUILDKITE_SHELL=/usr/local/bin/dockhand shell -e -c"`, want: []string{"BUILDKITE_SHELL=/usr/local/bin/dockhand shell -e -c"}},
		{in: "100%%", want: []string{"100%"}},
		{in: `SSH_AUTH_SOCK=%t/ssh-agent.socket`, err: "specifier"},
		{in: `"unterminated`, err: "unterminated"},
		{in: `"a"b`, err: "must end at its closing quote"},
		{in: `a"b c"`, want: []string{`a"b`, `c"`}},
		{in: `bad\q`, err: `unsupported escape \q`},
		{in: `trailing\`, err: "trailing backslash"},
	} {
		got, err := SplitWords(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SplitWords(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("SplitWords(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	unit := `# a comment
; another
[Unit]
Description = spaced out

[Service]
Environment="A=1 2" B=3
Environment=A=4
Environment="C=long\
  continued"
ExecStart=-/usr/bin/thing --flag "two words"
ExecStartPre=/bin/true
ExecStartPre=
ExecStartPre=/bin/false
`
	u, err := Parse([]byte(unit))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Values("Unit", "Description"); !slices.Equal(got, []string{"spaced out"}) {
		t.Errorf("Description = %q", got)
	}
	env, err := u.Environment()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=4", "B=3", "C=long continued"}; !slices.Equal(env, want) {
		t.Errorf("Environment = %q, want %q", env, want)
	}
	argv, err := u.ExecStart()
	if err != nil || !slices.Equal(argv, []string{"/usr/bin/thing", "--flag", "two words"}) {
		t.Errorf("ExecStart = %q, %v", argv, err)
	}
	if got := u.Values("Service", "ExecStartPre"); !slices.Equal(got, []string{"/bin/false"}) {
		t.Errorf("an empty assignment must reset the list: %q", got)
	}

	for _, tc := range []struct{ unit, err string }{
		{"Key=value\n", "outside any section"},
		{"[Service\n", "bad section header"},
		{"[Service]\njust words\n", "not KEY=VALUE"},
		{"[Service]\nEnvironment=\"x\n", "unterminated"},
		{"[Service]\nEnvironment=NOVALUE\n", "not NAME=VALUE"},
		{"[Service]\nExecStart=relative/path\n", "not an absolute path"},
		{"[Service]\nExecStart=/a\nExecStart=/b\n", "want one ExecStart"},
	} {
		u, err := Parse([]byte(tc.unit))
		if err == nil {
			_, err = u.Environment()
		}
		if err == nil && strings.Contains(tc.unit, "ExecStart") {
			_, err = u.ExecStart()
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: error %v, want one with %q", tc.unit, err, tc.err)
		}
	}
}

func TestReadFileNamesTheFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.service")
	if _, err := ReadFile(path); err == nil {
		t.Fatal("ReadFile of a missing file succeeded")
	}
	if err := os.WriteFile(path, []byte("[Service]\nExecStart=/bin/true\nnot an assignment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path+": line 3:") {
		t.Fatalf("ReadFile = %v, want an error naming %s and line 3", err, path)
	}
}
