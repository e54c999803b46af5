package main

import "path/filepath"

// mode is what one invocation of the binary does.
type mode string

const (
	modeHelp             mode = "help"
	modeVersion          mode = "version"
	modeBootstrap        mode = "bootstrap"
	modeShell            mode = "shell"
	modeHook             mode = "hook"
	modeDoctor           mode = "doctor"
	modeCachedImage      mode = "cached-image"
	modeCerts            mode = "certs"
	modeCredentialHelper mode = "credential-helper"
	modeBuildxShim       mode = "buildx-shim"
	modeUnknown          mode = "unknown"
)

// Names the binary answers to through links.
const (
	credentialHelperName = "docker-credential-dockhand"
	buildxPluginName     = "docker-buildx"
)

// subcommands maps each subcommand word to its mode; it is also the order of
// the usage text.
var subcommands = []struct {
	name    mode
	summary string
}{
	{modeBootstrap, "Run a Buildkite job: prepare it, run buildkite-agent bootstrap, clean up"},
	{modeShell, "Run a job command through the real shell, with the job's docker config checked"},
	{modeHook, "Run one of dockhand's agent hooks (environment)"},
	{modeDoctor, "Explain the resolved configuration, builders and credentials for this host"},
	{modeCachedImage, "Build or reuse a checksum-tagged dependency image (docker-ecr-cache parity)"},
	{modeCerts, "Write mTLS certificates for a remote buildkitd fleet: a CA, a server and agent clients"},
	{modeVersion, "Print the version"},
}

// resolve decides what to do from the name the binary was called under and
// its arguments, and returns the arguments left for that mode. It is pure.
func resolve(argv0 string, args []string) (mode, []string) {
	switch filepath.Base(argv0) {
	case credentialHelperName:
		return modeCredentialHelper, args
	case buildxPluginName:
		return modeBuildxShim, args
	}
	if len(args) == 0 {
		return modeHelp, nil
	}
	switch first := args[0]; first {
	case "-h", "--help", "help":
		if len(args) > 1 && isSubcommand(args[1]) {
			return mode(args[1]), []string{"--help"}
		}
		return modeHelp, nil
	case "-v", "--version":
		return modeVersion, args[1:]
	default:
		if isSubcommand(first) {
			return mode(first), args[1:]
		}
		return modeUnknown, args
	}
}

func isSubcommand(word string) bool {
	for _, s := range subcommands {
		if string(s.name) == word {
			return true
		}
	}
	return false
}
