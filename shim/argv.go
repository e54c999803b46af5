package shim

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dockhand-ci/dockhand/buildx"
)

// This file understands the arguments docker gives its buildx plugin, the
// way pflag and cobra parse them: docker's global flags, the word "buildx",
// buildx's root flags, the subcommand (or its alias), then that command's
// flags and arguments in any order, "--" ending the flags. It only reads the
// arguments: nothing here decides what to inject.

// flagArity says whether a flag takes a value.
type flagArity int

const (
	takesValue flagArity = iota // --f v, --f=v, -fv, -f v, -f=v
	boolean                     // --f, --f=false; a value only after "="
)

// flagSpec is one flag of a command.
type flagSpec struct {
	long  string
	short byte
	arity flagArity
}

type flagSet []flagSpec

func (fs flagSet) long(name string) (flagSpec, bool) {
	for _, f := range fs {
		if f.long == name {
			return f, true
		}
	}
	return flagSpec{}, false
}

func (fs flagSet) short(c byte) (flagSpec, bool) {
	for _, f := range fs {
		if f.short != 0 && f.short == c {
			return f, true
		}
	}
	return flagSpec{}, false
}

// helpFlag is cobra's, on every command.
var helpFlag = flagSpec{"help", 'h', boolean}

// dockerGlobalFlags are docker's own (docker/cli cli/flags/options.go); they
// can only come before the plugin's name.
var dockerGlobalFlags = flagSet{
	{"config", 0, takesValue},
	{"context", 'c', takesValue},
	{"debug", 'D', boolean},
	{"host", 'H', takesValue},
	{"log-level", 'l', takesValue},
	{"tls", 0, boolean},
	{"tlscacert", 0, takesValue},
	{"tlscert", 0, takesValue},
	{"tlskey", 0, takesValue},
	{"tlsverify", 0, boolean},
	{"version", 'v', boolean},
	helpFlag,
}

// buildxRootFlags are buildx's persistent flags (commands/root.go): valid
// before the subcommand and among its own flags.
var buildxRootFlags = flagSet{
	{"builder", 0, takesValue},
	{"debug", 'D', boolean},
	helpFlag,
}

// buildFlags are `buildx build`'s flags (commands/build.go, buildx v0.38),
// hidden and legacy ones included. TestFlagTablesMatchThePinnedBuildx checks
// this table and bakeFlags against the pinned buildx's --help.
var buildFlags = append(flagSet{
	{"add-host", 0, takesValue},
	{"allow", 0, takesValue},
	{"annotation", 0, takesValue},
	{"attest", 0, takesValue},
	{"build-arg", 0, takesValue},
	{"build-context", 0, takesValue},
	{"cache-from", 0, takesValue},
	{"cache-to", 0, takesValue},
	{"call", 0, takesValue},
	{"cgroup-parent", 0, takesValue},
	{"check", 0, boolean},
	{"compress", 0, boolean},
	{"cpu-period", 0, takesValue},
	{"cpu-quota", 0, takesValue},
	{"cpu-shares", 'c', takesValue},
	{"cpuset-cpus", 0, takesValue},
	{"cpuset-mems", 0, takesValue},
	{"file", 'f', takesValue},
	{"force-rm", 0, boolean},
	{"iidfile", 0, takesValue},
	{"isolation", 0, takesValue},
	{"label", 0, takesValue},
	{"load", 0, boolean},
	{"memory", 'm', takesValue},
	{"memory-swap", 0, takesValue},
	{"metadata-file", 0, takesValue},
	{"network", 0, takesValue},
	{"no-cache", 0, boolean},
	{"no-cache-filter", 0, takesValue},
	{"output", 'o', takesValue},
	{"platform", 0, takesValue},
	{"policy", 0, takesValue},
	{"print", 0, takesValue},
	{"progress", 0, takesValue},
	{"provenance", 0, takesValue},
	{"pull", 0, boolean},
	{"push", 0, boolean},
	{"quiet", 'q', boolean},
	{"resource", 0, takesValue},
	{"rm", 0, boolean},
	{"sbom", 0, takesValue},
	{"secret", 0, takesValue},
	{"security-opt", 0, takesValue},
	{"shm-size", 0, takesValue},
	{"squash", 0, boolean},
	{"ssh", 0, takesValue},
	{"tag", 't', takesValue},
	{"target", 0, takesValue},
	{"ulimit", 0, takesValue},
}, buildxRootFlags...)

// bakeFlags are `buildx bake`'s flags (commands/bake.go, buildx v0.38).
var bakeFlags = append(flagSet{
	{"allow", 0, takesValue},
	{"call", 0, takesValue},
	{"check", 0, boolean},
	{"file", 'f', takesValue},
	{"jobs", 'j', takesValue},
	{"list", 0, takesValue},
	{"list-targets", 0, boolean},
	{"list-variables", 0, boolean},
	{"load", 0, boolean},
	{"metadata-file", 0, takesValue},
	{"no-cache", 0, boolean},
	{"policy", 0, takesValue},
	{"print", 0, boolean},
	{"progress", 0, takesValue},
	{"provenance", 0, takesValue},
	{"pull", 0, boolean},
	{"push", 0, boolean},
	{"sbom", 0, takesValue},
	{"set", 0, takesValue},
	{"var", 0, takesValue},
}, buildxRootFlags...)

// flagUse is one flag as given: its name, its value (for a boolean, "true"
// unless given after "="), and the index of the argument it starts at.
type flagUse struct {
	name  string
	value string
	index int
}

// parsed is a stretch of arguments read against one flag set.
type parsed struct {
	flags []flagUse
	args  []int // indexes of positional arguments
	end   int   // index after the stretch
}

// ParseError says why the arguments could not be understood.
type ParseError struct{ Msg string }

func (e *ParseError) Error() string { return e.Msg }

func parseErr(format string, a ...any) error { return &ParseError{fmt.Sprintf(format, a...)} }

// parseFlags reads args from start against fs. With stopAtArg it stops at
// the first positional argument (which it does not consume), as cobra does
// when looking for a subcommand; otherwise positionals and flags mix, and
// "--" makes the rest positional.
func parseFlags(args []string, start int, fs flagSet, stopAtArg bool) (parsed, error) {
	var p parsed
	i := start
	for i < len(args) {
		a := args[i]
		switch {
		case a == "--":
			if stopAtArg {
				return p, parseErr("%q before the command", a)
			}
			for j := i + 1; j < len(args); j++ {
				p.args = append(p.args, j)
			}
			p.end = len(args)
			return p, nil
		case len(a) < 2 || a[0] != '-':
			if stopAtArg {
				p.end = i
				return p, nil
			}
			p.args = append(p.args, i)
			i++
		case a[1] == '-':
			name, value, hasValue := strings.Cut(a[2:], "=")
			if name == "" || name[0] == '-' || name[0] == '=' {
				return p, parseErr("bad flag syntax %q", a)
			}
			f, ok := fs.long(name)
			if !ok {
				return p, parseErr("unknown flag --%s", name)
			}
			use := flagUse{name: f.long, index: i}
			switch {
			case hasValue:
				use.value = value
			case f.arity == boolean:
				use.value = "true"
			case i+1 < len(args):
				i++
				use.value = args[i]
			default:
				return p, parseErr("flag --%s needs an argument", name)
			}
			p.flags = append(p.flags, use)
			i++
		default:
			// One or more shorthands: -q, -qt tag, -ttag, -t=tag.
			start, next := i, i+1
		cluster:
			for j := 1; j < len(a); j++ {
				f, ok := fs.short(a[j])
				if !ok {
					return p, parseErr("unknown shorthand flag %q in %s", a[j], a)
				}
				use := flagUse{name: f.long, index: start}
				rest := a[j+1:]
				if f.arity == boolean {
					use.value = "true"
					if strings.HasPrefix(rest, "=") {
						use.value = rest[1:]
						p.flags = append(p.flags, use)
						break cluster
					}
					p.flags = append(p.flags, use)
					continue
				}
				switch {
				case rest != "":
					use.value = strings.TrimPrefix(rest, "=")
				case next < len(args):
					use.value = args[next]
					next++
				default:
					return p, parseErr("flag -%c needs an argument", a[j])
				}
				p.flags = append(p.flags, use)
				break cluster
			}
			i = next
		}
	}
	p.end = len(args)
	return p, nil
}

// Command is the buildx command an invocation runs, after aliases.
type Command string

const (
	CommandOther Command = ""
	CommandBuild Command = "build"
	CommandBake  Command = "bake"
)

// Invocation is what the shim understood of one call of the plugin.
type Invocation struct {
	Command Command
	// SubIndex is the index of the subcommand word in the arguments:
	// injected flags go right after it.
	SubIndex int
	Builder  string // --builder, "" when not given
	Help     bool
	flags    []flagUse
	args     []string // the command's positional arguments
}

// values returns every value given to a flag, in order.
func (inv Invocation) values(name string) []string {
	var out []string
	for _, f := range inv.flags {
		if f.name == name {
			out = append(out, f.value)
		}
	}
	return out
}

// bakeFromStdin reports whether a bake call reads (part of) its definition
// from stdin: `--file -`, as docker compose gives its services to bake.
func (inv Invocation) bakeFromStdin() bool {
	return inv.Command == CommandBake && slices.Contains(inv.values("file"), "-")
}

// progressMode is the progress output the call asks for: its --progress,
// else BUILDKIT_PROGRESS, as buildx reads them ("" for buildx's default).
func (inv Invocation) progressMode(lookup func(string) string) string {
	if v, ok := inv.last("progress"); ok {
		return v
	}
	return lookup("BUILDKIT_PROGRESS")
}

// last returns the last value given to a flag (pflag keeps the last).
func (inv Invocation) last(name string) (string, bool) {
	v := inv.values(name)
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// flagTrue reports whether a boolean flag ended up true.
func (inv Invocation) flagTrue(name string) bool {
	v, ok := inv.last(name)
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// MetadataCommand is how docker asks a plugin to describe itself.
const MetadataCommand = "docker-cli-plugin-metadata"

// errNotBuildx: the arguments are not a buildx plugin call (docker's
// arguments must name the plugin before its command).
var errNotBuildx = errors.New("the arguments do not name the buildx plugin")

// ParseInvocation reads the plugin's arguments. standalone is true when the
// plugin was run by hand rather than by docker (no
// DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND): then there are no docker global
// flags and no "buildx" word. A command other than build and bake is not
// read further: it passes through whatever its arguments are.
func ParseInvocation(args []string, standalone bool) (Invocation, error) {
	inv := Invocation{SubIndex: -1}
	if len(args) > 0 && args[0] == MetadataCommand {
		return inv, nil
	}
	i := 0
	if !standalone {
		g, err := parseFlags(args, 0, dockerGlobalFlags, true)
		if err != nil {
			return inv, err
		}
		for _, f := range g.flags {
			if f.name == "help" || f.name == "version" {
				inv.Help = true
			}
		}
		if g.end >= len(args) || args[g.end] != buildx.PluginName[len("docker-"):] {
			return inv, errNotBuildx
		}
		i = g.end + 1
	}
	root, err := parseFlags(args, i, buildxRootFlags, true)
	if err != nil {
		return inv, err
	}
	if root.end >= len(args) {
		return inv, nil // `docker buildx` alone: its help
	}
	inv.SubIndex = root.end
	var fs flagSet
	switch args[root.end] {
	case "build", "b":
		inv.Command, fs = CommandBuild, buildFlags
	case "bake", "f":
		inv.Command, fs = CommandBake, bakeFlags
	default:
		return inv, nil
	}
	sub, err := parseFlags(args, root.end+1, fs, false)
	if err != nil {
		return inv, err
	}
	inv.flags = append(root.flags, sub.flags...)
	for _, j := range sub.args {
		inv.args = append(inv.args, args[j])
	}
	if b, ok := inv.last("builder"); ok {
		inv.Builder = b
	}
	inv.Help = inv.Help || inv.flagTrue("help")
	return inv, nil
}
