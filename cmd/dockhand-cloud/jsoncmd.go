package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// jsonCommand makes a subcommand that reads one request as JSON on stdin and
// writes handle's answer as JSON on stdout: how dockhand talks to the
// commands it runs here (probe, history).
func jsonCommand[Req any](handle func(Req) any) func(args []string, stdout, stderr io.Writer) error {
	return func(args []string, stdout, _ io.Writer) error {
		if len(args) > 0 {
			return fmt.Errorf("unexpected argument %q (the request comes as JSON on stdin)", args[0])
		}
		var req Req
		if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
			return fmt.Errorf("reading the request on stdin: %w", err)
		}
		return json.NewEncoder(stdout).Encode(handle(req))
	}
}
