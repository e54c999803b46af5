package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/bootstrap"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
)

// version is set at link time by `make build`.
var version = "dev"

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// Exit codes. They are chosen in exitCode and nowhere else.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	exitSetup   = 125 // dockhand's own setup failed before the job ran
)

// usageError is a bad invocation: wrong flags, unknown subcommand.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// errHelp is returned when --help was asked for and printed.
var errHelp = flag.ErrHelp

func run(argv []string, environ []string, io stdio) int {
	argv0 := "dockhand"
	if len(argv) > 0 {
		argv0 = argv[0]
	}
	m, args := resolve(argv0, argv[1:])
	// The process's root. Only the bootstrap catches the job's signals (and
	// makes its own root from them, bootstrap.Run); every other mode ends
	// with them as the program it stands in for would, so nothing cancels
	// this one.
	ctx := context.Background()
	err := dispatch(ctx, m, args, agentenv.FromSlice(environ), io)
	var ce childExit
	var pe protocolError
	switch {
	case err == nil, errors.Is(err, errHelp), errors.As(err, &ce):
	case errors.As(err, &pe):
		fmt.Fprintln(io.out, pe.err) // the credential-helper protocol answers on stdout
	default:
		fmt.Fprintf(io.err, "dockhand %s: %v\n", m, err)
	}
	return exitCode(err)
}

// exitCode maps an error to the process exit status, in one place.
func exitCode(err error) int {
	var ue usageError
	var ce childExit
	var se *bootstrap.SetupError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &se):
		return exitSetup
	default:
		return exitFailure
	}
}

func dispatch(ctx context.Context, m mode, args []string, e *agentenv.Environment, io stdio) error {
	switch m {
	case modeHelp:
		printUsage(io.out)
		return nil
	case modeUnknown:
		printUsage(io.err)
		return usageError{fmt.Sprintf("unknown command %q", args[0])}
	case modeVersion:
		if _, err := newFlags(m, "", io).parse(args); err != nil {
			return err
		}
		fmt.Fprintf(io.out, "dockhand %s\n", version)
		return nil
	case modeDoctor:
		return runDoctor(ctx, args, e, io)
	case modeShell:
		if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
			fmt.Fprint(io.out, shellHelp)
			return nil
		}
		return shell(ctx, args, e, io)
	case modeBootstrap:
		return runBootstrap(args, e, io)
	case modeHook:
		return hook(ctx, args, e, io)
	case modeCredentialHelper:
		return credentialHelper(args, e, io)
	case modeBuildxShim:
		return buildxShim(ctx, args, e, io)
	case modeCachedImage:
		return cachedImage(args, e, io)
	case modeCerts:
		// crypto/x509 lives in dockhand-cloud, off the job path.
		return cloud.Exec(cloudBinary(), cloud.Certs, args, e.ToSlice())
	default:
		return fmt.Errorf("no handler for mode %q", m) // a new subcommand without its case above
	}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "Usage: dockhand COMMAND [flags]\n\nCommands:\n")
	for _, s := range subcommands {
		fmt.Fprintf(w, "  %-13s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "\nAlso runs as %s (docker credential helper) and %s (buildx shim) when linked under those names.\n",
		credentialHelperName, buildxPluginName)
	fmt.Fprint(w, "Run 'dockhand COMMAND --help' for a command's flags.\n")
}

const shellHelp = `Usage: dockhand shell [SHELL FLAGS] COMMAND

Runs the job command exactly as the configured real shell (default /bin/bash)
would, after checking that DOCKER_CONFIG still points at the job's docker
config. Set it as the agent's shell:

  shell="/usr/local/bin/dockhand shell -e -c"
`

// flags is a subcommand's flag set with dockhand's help conventions.
type flags struct {
	*flag.FlagSet
	io stdio
}

func newFlags(m mode, usage string, io stdio) *flags {
	fs := flag.NewFlagSet("dockhand "+string(m), flag.ContinueOnError)
	fs.SetOutput(io.err)
	f := &flags{FlagSet: fs, io: io}
	fs.Usage = func() {
		fmt.Fprintf(io.out, "Usage: dockhand %s [flags]%s\n", m, usage)
		for _, s := range subcommands {
			if s.name == m {
				fmt.Fprintf(io.out, "\n%s.\n", s.summary)
			}
		}
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(io.out, "\nFlags:\n")
			fs.SetOutput(io.out)
			fs.PrintDefaults()
			fs.SetOutput(io.err)
		}
	}
	return f
}

// parse parses args, turning flag errors into usage errors and refusing
// positional arguments.
func (f *flags) parse(args []string) ([]string, error) {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, usageError{err.Error()}
	}
	if f.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q", f.Arg(0))}
	}
	return f.Args(), nil
}

// runDoctor is `dockhand doctor`: the configuration, the state dir, the
// credential sources and the builder a job would get (buildx/doctor).
func runDoctor(ctx context.Context, args []string, e *agentenv.Environment, io stdio) error {
	f := newFlags(modeDoctor, "", io)
	configPath := f.String("config", "", "configuration file (env DOCKHAND_CONFIG; default "+config.DefaultPath+")")
	asJSON := f.Bool("json", false, "print JSON instead of text")
	var registries hostList
	f.Var(&registries, "registry", "also check the credentials of this registry host (repeatable)")
	if _, err := f.parse(args); err != nil {
		return err
	}
	cfg, warnings, err := config.Load(config.Options{Flag: *configPath, Env: e})
	log := joblog.Named(io.err, "dockhand doctor")
	for _, w := range warnings {
		log.Warnf("%s", w)
	}
	if err != nil {
		return err
	}
	stateProblems := bootstrap.CheckStateDir(ctx, cfg.StateDir, os.Getuid())
	builder := diagnoseBuilder(ctx, cfg, e)
	checks := checkCredentials(ctx, helperFor(cfg, e, io.err), configuredRegistries(cfg, registries))
	if *asJSON {
		b, err := cfg.MarshalJSON()
		if err == nil {
			b, err = withField(b, "state", map[string]any{"dir": cfg.StateDir, "problems": stateProblems})
		}
		if err == nil {
			b, err = withField(b, "builder", builder.JSON())
		}
		if err == nil {
			b, err = withField(b, "credentials", checks)
		}
		if err != nil {
			return fmt.Errorf("encoding configuration: %w", err)
		}
		if _, err = fmt.Fprintf(io.out, "%s\n", b); err != nil {
			return err
		}
		return stateError(cfg.StateDir, stateProblems)
	}
	if err := cfg.WriteText(io.out); err != nil {
		return err
	}
	writeState(io.out, cfg.StateDir, stateProblems)
	writeBuilder(io.out, builder)
	writeCredentialChecks(io.out, cfg, checks)
	return stateError(cfg.StateDir, stateProblems)
}

// writeState prints the state section of `dockhand doctor`.
func writeState(w io.Writer, dir string, problems []string) {
	fmt.Fprintln(w, "\n# state")
	if len(problems) == 0 {
		fmt.Fprintf(w, "state: %s: ok\n", dir)
	}
	for _, p := range problems {
		fmt.Fprintf(w, "state: %s: error: %s\n", dir, p)
	}
}

// stateError fails doctor when the state dir has problems.
func stateError(dir string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("state dir %s: %d problem(s); see the state section", dir, len(problems))
}
