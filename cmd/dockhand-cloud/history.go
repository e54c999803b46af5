package main

import (
	"context"
	"time"

	"github.com/dockhand-ci/dockhand/builder/buildkit"
	"github.com/dockhand-ci/dockhand/cloud"
)

// maxHistoryWait bounds one `history` call: it runs at the end of a job.
const maxHistoryWait = 5 * time.Second

// historyCommand is `dockhand-cloud history`: a cloud.HistoryRequest as JSON
// on stdin, a cloud.HistoryResponse as JSON on stdout.
var historyCommand = jsonCommand(func(ctx context.Context, req cloud.HistoryRequest) (cloud.HistoryResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, maxHistoryWait)
	defer cancel()
	return buildkit.History(ctx, req), nil
})
