package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/config"
)

// AnnotateWait bounds `buildkite-agent annotate` (it retries a failed
// request a few times, a second apart).
const AnnotateWait = 15 * time.Second

// Context is the annotation context of a job: unique per job, so parallel
// jobs of a build each keep their own annotation.
func Context(jobID string) string { return "dockhand-" + jobID }

// Wanted reports whether the mode asks for an annotation of r.
func Wanted(mode string, r Report) bool {
	switch mode {
	case config.AnnotateOff:
		return false
	case config.AnnotateAlways:
		return r.Builder.Kind != ""
	default:
		return len(r.Builds) > 0
	}
}

// Annotate runs the real `buildkite-agent annotate` with the job's
// environment (its agent access token and endpoint are there), the body on
// stdin: --style info, --context unique to the job. An error carries the
// agent's last line.
func Annotate(ctx context.Context, agent string, env []string, jobID, body string) error {
	ctx, cancel := context.WithTimeout(ctx, AnnotateWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, agent, "annotate", "--style", "info", "--context", Context(jobID))
	cmd.Env = env
	cmd.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("buildkite-agent annotate did not finish within %s", AnnotateWait)
		}
		if line := lastLine(out.String()); line != "" {
			return errors.New(line)
		}
		return err
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}
