package bootstrap

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// StateFile holds what the bootstrap resolved for the job, so the job's shell
// and hooks act on the same configuration without reading it again.
const StateFile = "job.json"

// JobState is the content of StateFile.
type JobState struct {
	ConfigPath string `json:"config_path,omitempty"` // the configuration file the bootstrap used
	Shell      string `json:"shell"`                 // the real shell `dockhand shell` execs
	RealBuildx string `json:"real_buildx,omitempty"`
}

// WriteState records the job's state in its dir.
func WriteState(jobDir string, s JobState) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return safefile.Write(filepath.Join(jobDir, StateFile), data)
}

// ReadState reads the job's state.
func ReadState(jobDir string) (JobState, error) {
	var s JobState
	data, err := os.ReadFile(filepath.Join(jobDir, StateFile))
	if err != nil {
		return s, fmt.Errorf("reading the job state: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("reading the job state %s: %w", filepath.Join(jobDir, StateFile), err)
	}
	return s, nil
}
