package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name     string
		argv0    string
		args     []string
		wantMode mode
		wantArgs []string
	}{
		{"no args is help", "dockhand", nil, modeHelp, nil},
		{"help flag", "/usr/local/bin/dockhand", []string{"--help"}, modeHelp, nil},
		{"short help", "dockhand", []string{"-h"}, modeHelp, nil},
		{"help word", "dockhand", []string{"help"}, modeHelp, nil},
		{"help for a subcommand", "dockhand", []string{"help", "doctor"}, modeDoctor, []string{"--help"}},
		{"help for an unknown word", "dockhand", []string{"help", "nope"}, modeHelp, nil},
		{"version word", "dockhand", []string{"version"}, modeVersion, []string{}},
		{"version flag", "dockhand", []string{"--version"}, modeVersion, []string{}},
		{"bootstrap", "dockhand", []string{"bootstrap"}, modeBootstrap, []string{}},
		{"shell keeps every argument", "dockhand", []string{"shell", "-e", "-c", "echo --help"}, modeShell, []string{"-e", "-c", "echo --help"}},
		{"hook", "dockhand", []string{"hook", "environment"}, modeHook, []string{"environment"}},
		{"doctor flags", "dockhand", []string{"doctor", "--config", "x.toml", "--json"}, modeDoctor, []string{"--config", "x.toml", "--json"}},
		{"cached-image", "dockhand", []string{"cached-image", "--help"}, modeCachedImage, []string{"--help"}},
		{"unknown subcommand", "dockhand", []string{"bootstrapp"}, modeUnknown, []string{"bootstrapp"}},
		{"unknown flag", "dockhand", []string{"--frobnicate"}, modeUnknown, []string{"--frobnicate"}},
		{"credential helper by name", "/tmp/job/bin/docker-credential-dockhand", []string{"get"}, modeCredentialHelper, []string{"get"}},
		{"credential helper ignores subcommand words", "docker-credential-dockhand", []string{"shell"}, modeCredentialHelper, []string{"shell"}},
		{"buildx shim by name", "/job/docker/cli-plugins/docker-buildx", []string{"buildx", "build", "."}, modeBuildxShim, []string{"buildx", "build", "."}},
		{"buildx shim metadata", "docker-buildx", []string{"docker-cli-plugin-metadata"}, modeBuildxShim, []string{"docker-cli-plugin-metadata"}},
		{"another name acts as dockhand", "dh", []string{"doctor"}, modeDoctor, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotMode, gotArgs := resolve(tc.argv0, tc.args)
			if gotMode != tc.wantMode || !slices.Equal(gotArgs, tc.wantArgs) {
				t.Errorf("resolve(%q, %q) = %s %q, want %s %q", tc.argv0, tc.args, gotMode, gotArgs, tc.wantMode, tc.wantArgs)
			}
		})
	}
}

func TestRunExitCodesAndHelp(t *testing.T) {
	for _, tc := range []struct {
		name       string
		argv       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"usage", []string{"dockhand"}, 0, "Commands:", ""},
		{"unknown command", []string{"dockhand", "nope"}, 2, "", `unknown command "nope"`},
		{"version", []string{"dockhand", "version"}, 0, "dockhand dev", ""},
		{"doctor help", []string{"dockhand", "doctor", "--help"}, 0, "-config", ""},
		{"bootstrap help", []string{"dockhand", "bootstrap", "--help"}, 0, "Usage: dockhand bootstrap", ""},
		{"hook help", []string{"dockhand", "hook", "--help"}, 0, "Usage: dockhand hook", ""},
		{"cached-image help", []string{"dockhand", "cached-image", "--help"}, 0, "Usage: dockhand cached-image", ""},
		{"shell help", []string{"dockhand", "shell", "--help"}, 0, "Usage: dockhand shell", ""},
		{"bad flag", []string{"dockhand", "doctor", "--nope"}, 2, "", "flag provided but not defined"},
		{"stray argument", []string{"dockhand", "version", "x"}, 2, "", `unexpected argument "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.argv, nil, stdio{in: strings.NewReader(""), out: &out, err: &errb})
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tc.wantCode, errb.String())
			}
			if !strings.Contains(out.String(), tc.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", out.String(), tc.wantStdout)
			}
			if !strings.Contains(errb.String(), tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", errb.String(), tc.wantStderr)
			}
		})
	}
}
