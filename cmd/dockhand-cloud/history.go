package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/buildx/probe"
)

// maxHistoryWait bounds one `history` call: it runs at the end of a job.
const maxHistoryWait = 5 * time.Second

// historyCommand is `dockhand-cloud history`: a buildx.HistoryRequest as JSON
// on stdin, a buildx.HistoryResponse as JSON on stdout.
func historyCommand(args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q (the request comes as JSON on stdin)", args[0])
	}
	var req buildx.HistoryRequest
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		return fmt.Errorf("reading the request on stdin: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), maxHistoryWait)
	defer cancel()
	return json.NewEncoder(stdout).Encode(probe.History(ctx, req))
}
