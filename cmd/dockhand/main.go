// Command dockhand is the Buildkite job bootstrap, job shell, docker credential
// helper and buildx shim, in one binary that acts by the name it is called
// under and then by subcommand. main only wires the process to run.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Environ(), stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}))
}
