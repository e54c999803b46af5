// Package joblog is the one way dockhand reports to a job: every line it
// adds to the job's log goes to an io.Writer (its stderr, which the agent
// captures), prefixed "dockhand: ", and a warning's "dockhand: warning: ".
// A nil writer takes nothing, so a caller without a log passes nil.
//
// dockhand's lines sit in collapsed sections ("--- TITLE", a group of the
// agent's log); a Section expands itself at its first warning, so a
// fallback or a denied permission is never hidden in a collapsed group.
package joblog

import (
	"bytes"
	"fmt"
	"io"
)

// prefix starts every line; warningPrefix every warning's.
const (
	prefix        = "dockhand: "
	warningPrefix = prefix + "warning: "
)

// Printf writes one "dockhand: " line to w.
func Printf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, prefix+format+"\n", args...)
	}
}

// Warnf writes one "dockhand: warning: " line to w.
func Warnf(w io.Writer, format string, args ...any) {
	Printf(w, "warning: "+format, args...)
}

// expand is the agent's marker that reopens, expanded, the group it
// follows: the agent prints it after its own warnings.
const expand = "^^^ +++\n"

// Section is a collapsed section of the job log. Its lines go to the log as
// written; after the first that is a warning (whoever worded it: Warnf, or
// a Printf of a "warning: …" line) the section is expanded, once, as the
// agent expands a group after its own warnings.
type Section struct {
	w        io.Writer
	expanded bool
	warned   bool // a warning was written; expand at the end of its line
}

// OpenSection writes the header of a collapsed section titled title to w
// and returns the writer of its lines.
func OpenSection(w io.Writer, title string) *Section {
	if w != nil {
		fmt.Fprintf(w, "--- %s\n", title)
	}
	return &Section{w: w}
}

// Write writes p to the log, then the expanding marker after the first
// complete warning line.
func (s *Section) Write(p []byte) (int, error) {
	if s.w == nil {
		return len(p), nil
	}
	n, err := s.w.Write(p)
	if err != nil || s.expanded {
		return n, err
	}
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if bytes.HasPrefix(line, []byte(warningPrefix)) {
			s.warned = true
		}
	}
	if s.warned && bytes.HasSuffix(p, []byte("\n")) {
		s.expanded = true
		_, err = io.WriteString(s.w, expand)
	}
	return n, err
}
