package shim

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// hiddenFlags are the flags of the tables that `--help` does not show, even
// with BUILDX_EXPERIMENTAL=1: legacy `docker build` flags buildx accepts and
// ignores, and hidden bake listings. They cannot be checked against the help
// text; everything else in the tables is.
var hiddenFlags = map[Command][]string{
	CommandBuild: {"compress", "cpu-period", "cpu-quota", "cpu-shares", "cpuset-cpus", "cpuset-mems", "force-rm",
		"isolation", "memory", "memory-swap", "print", "rm", "security-opt", "squash"},
	CommandBake: {"list-targets", "list-variables"},
}

// helpFlagLine is one flag of cobra's usage: "  -t, --tag stringArray  Image…"
// or "      --push  Shorthand…". A type word after the name means a value.
var helpFlagLine = regexp.MustCompile(`^\s+(?:-([a-zA-Z]), )?--([a-z0-9-]+)(?: ([a-zA-Z]+))?(?:\s{2,}|$)`)

// notYetIn are the flags of the tables that an older buildx the shim also
// runs with (the Elastic CI Stack's, harness.Stack) does not have: a call
// giving one fails in that buildx itself, with or without dockhand, so the
// shim reading it does no harm. Every other flag is checked against that
// buildx's help as against the current one's.
var notYetIn = map[string]map[Command][]string{
	harness.Stack.Buildx: {CommandBuild: {"resource"}, CommandBake: {"jobs"}},
}

// helpFlags runs that buildx's `SUBCOMMAND --help` with experimental flags
// shown and returns its flags, local and global.
func helpFlags(t *testing.T, buildx, sub string) flagSet {
	t.Helper()
	cmd := exec.Command(buildx, sub, "--help")
	cmd.Env = append(os.Environ(), "BUILDX_EXPERIMENTAL=1", "HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s --help: %v\n%s", buildx, sub, err, out)
	}
	var fs flagSet
	for line := range strings.Lines(string(out)) {
		m := helpFlagLine.FindStringSubmatch(strings.TrimRight(line, "\n"))
		if m == nil {
			continue
		}
		f := flagSpec{long: m[2], arity: boolean}
		if m[1] != "" {
			f.short = m[1][0]
		}
		if m[3] != "" {
			f.arity = takesValue
		}
		fs = append(fs, f)
	}
	if len(fs) < 10 {
		t.Fatalf("read only %d flags from %s %s --help; has its layout changed?\n%s", len(fs), buildx, sub, out)
	}
	return fs
}

// TestFlagTablesMatchThePinnedBuildx compares the shim's copy of buildx's
// flag tables with the own help of each pinned buildx, the current one and
// the Elastic CI Stack's: a flag buildx adds (which the shim would misread,
// taking its value for the build context), a changed shorthand or
// value-taking, or a flag buildx dropped fails here instead of silently
// passing through.
func TestFlagTablesMatchThePinnedBuildx(t *testing.T) {
	bin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"", harness.Stack.Buildx} {
		buildx, err := harness.VersionedBin(bin, "docker-buildx", version)
		if err != nil {
			t.Fatalf("the pinned buildx: %v", err)
		}
		name := "current"
		if version != "" {
			name = version
		}
		t.Run(name, func(t *testing.T) { checkFlagTables(t, buildx, notYetIn[version]) })
	}
}

// checkFlagTables checks the tables against one buildx's help, but for the
// flags it does not have yet.
func checkFlagTables(t *testing.T, buildx string, notYet map[Command][]string) {
	for _, c := range []struct {
		cmd   Command
		sub   string
		table flagSet
	}{
		{CommandBuild, "build", buildFlags},
		{CommandBake, "bake", bakeFlags},
	} {
		t.Run(c.sub, func(t *testing.T) {
			help := helpFlags(t, buildx, c.sub)
			for _, h := range help {
				f, ok := c.table.long(h.long)
				switch {
				case !ok:
					t.Errorf("buildx %s has --%s, which the shim's table lacks (shim/argv.go)", c.sub, h.long)
				case f.short != h.short:
					t.Errorf("buildx %s --%s: shorthand %q in buildx, %q in the table", c.sub, h.long, h.short, f.short)
				case f.arity != h.arity:
					t.Errorf("buildx %s --%s: takes a value in buildx: %v, in the table: %v", c.sub, h.long,
						h.arity == takesValue, f.arity == takesValue)
				}
			}
			for _, f := range c.table {
				_, shown := help.long(f.long)
				hidden := slices.Contains(hiddenFlags[c.cmd], f.long)
				newer := slices.Contains(notYet[c.cmd], f.long)
				switch {
				case newer && shown:
					t.Errorf("buildx %s --%s is listed in notYetIn but this buildx has it: check it like the others", c.sub, f.long)
				case newer:
				case !shown && !hidden:
					t.Errorf("the table's buildx %s --%s is not in buildx's help (dropped, or hidden: then list it in hiddenFlags)", c.sub, f.long)
				case shown && hidden:
					t.Errorf("buildx %s --%s is listed in hiddenFlags but its help shows it: check it like the others", c.sub, f.long)
				}
			}
			for _, name := range append(slices.Clone(hiddenFlags[c.cmd]), notYet[c.cmd]...) {
				if _, ok := c.table.long(name); !ok {
					t.Errorf("hiddenFlags or notYetIn lists buildx %s --%s, which the table lacks", c.sub, name)
				}
			}
		})
	}
}
