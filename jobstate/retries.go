package jobstate

import (
	"context"
	"path/filepath"
	"time"

	"github.com/dockhand-ci/dockhand/internal/jsonfile"
)

// Retry is one lost build run again, as RetriesFile records it for the job
// report.
type Retry struct {
	Lost   string    `json:"lost"`            // the node that was lost
	Reason string    `json:"reason"`          // the build's last error line
	Node   string    `json:"node,omitempty"`  // where it ran again ("": nowhere)
	Error  string    `json:"error,omitempty"` // why the rerun failed too, when it did
	At     time.Time `json:"at"`
}

// RetriesFile is where the shim records retries in the job dir.
const RetriesFile = "retries.json"

// RecordRetry adds r to the job's RetriesFile, under its lock: a job's
// builds may run at once. It waits for the lock 5s at most and no longer
// than ctx lasts.
func RecordRetry(ctx context.Context, jobDir string, r Retry) error {
	path := filepath.Join(jobDir, RetriesFile)
	release, err := jsonfile.Lock(ctx, path+".lock", 5*time.Second)
	if err != nil {
		return err
	}
	defer release()
	rs, _ := jsonfile.Read[[]Retry](path)
	return jsonfile.Write(path, append(rs, r))
}

// ReadRetries reads the job's retries ("" dir or no file: none).
func ReadRetries(jobDir string) []Retry {
	if jobDir == "" {
		return nil
	}
	rs, _ := jsonfile.Read[[]Retry](filepath.Join(jobDir, RetriesFile))
	return rs
}
