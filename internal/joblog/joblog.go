// Package joblog is the one way dockhand reports to a job: every line it
// adds to the job's log goes to an io.Writer (its stderr, which the agent
// captures), prefixed "dockhand: ", and a warning's "dockhand: warning: ".
// A nil writer takes nothing, so a caller without a log passes nil.
package joblog

import (
	"fmt"
	"io"
)

// Printf writes one "dockhand: " line to w.
func Printf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "dockhand: "+format+"\n", args...)
	}
}

// Warnf writes one "dockhand: warning: " line to w.
func Warnf(w io.Writer, format string, args ...any) {
	Printf(w, "warning: "+format, args...)
}
