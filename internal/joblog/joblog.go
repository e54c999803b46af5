// Package joblog is the one way dockhand reports to a job: every line it
// adds to the job's log goes through a Logger to an io.Writer (its stderr,
// which the agent captures), prefixed "dockhand: ", a warning's
// "dockhand: warning: " and an error's "dockhand: error: ". A line's
// severity is data (Line): code that finds something hands back Lines, and
// only the Logger that prints them words the prefix.
//
// dockhand's lines sit in collapsed sections ("--- TITLE", a group of the
// agent's log); a Section expands itself at its first warning or error, so
// a fallback or a denied permission is never hidden in a collapsed group.
package joblog

import (
	"fmt"
	"io"
)

// Severity is how much a line matters to whoever reads the job log.
type Severity uint8

// The severities, least first.
const (
	Note    Severity = iota // what dockhand did or found
	Warning                 // the job runs, but not as asked: slower, uncached, on another builder
	Error                   // something failed that the job may notice
)

// Line is one line for the job log, before its prefix.
type Line struct {
	Severity Severity
	Text     string
}

// Notef is a Note line.
func Notef(format string, args ...any) Line { return Line{Note, fmt.Sprintf(format, args...)} }

// Warningf is a Warning line.
func Warningf(format string, args ...any) Line { return Line{Warning, fmt.Sprintf(format, args...)} }

// String is the line as the log shows it after the program's name:
// "warning: TEXT", "error: TEXT" or "TEXT".
func (l Line) String() string {
	switch l.Severity {
	case Warning:
		return "warning: " + l.Text
	case Error:
		return "error: " + l.Text
	}
	return l.Text
}

// Name is the program name every line starts with.
const Name = "dockhand"

// expand is the agent's marker that reopens, expanded, the group it
// follows: the agent prints it after its own warnings.
const expand = "^^^ +++\n"

// Logger prints Lines. A nil *Logger, and one over a nil writer, takes
// nothing, so a caller without a log passes nil. A Logger is not for
// concurrent use.
type Logger struct {
	w       io.Writer
	name    string
	kept    *[]Line  // Keep's: lines handed back, not written
	section *section // nil outside a Section
}

// section is what a Section's Loggers share.
type section struct{ expanded bool }

// New is the Logger of the job log w, its lines prefixed "dockhand: ".
func New(w io.Writer) *Logger { return &Logger{w: w, name: Name} }

// Named is the Logger of w for a subcommand whose lines carry its own name,
// such as "dockhand cached-image".
func Named(w io.Writer, name string) *Logger { return &Logger{w: w, name: name} }

// Keep is a Logger that appends its lines to *lines instead of writing
// them, for code that hands its lines back to a caller who prints them.
func Keep(lines *[]Line) *Logger { return &Logger{kept: lines, name: Name} }

// Print writes lines. In a Section, the first warning or error is
// followed, once, by the marker that expands it.
func (l *Logger) Print(lines ...Line) {
	if l == nil {
		return
	}
	if l.kept != nil {
		*l.kept = append(*l.kept, lines...)
		return
	}
	if l.w == nil {
		return
	}
	for _, line := range lines {
		text := l.name + ": " + line.String() + "\n"
		if s := l.section; s != nil && !s.expanded && line.Severity >= Warning {
			s.expanded = true
			text += expand
		}
		_, _ = io.WriteString(l.w, text)
	}
}

// Printf writes one note: "dockhand: TEXT".
func (l *Logger) Printf(format string, args ...any) { l.Print(Notef(format, args...)) }

// Warnf writes one warning: "dockhand: warning: TEXT".
func (l *Logger) Warnf(format string, args ...any) { l.Print(Warningf(format, args...)) }

// Errorf writes one error: "dockhand: error: TEXT".
func (l *Logger) Errorf(format string, args ...any) {
	l.Print(Line{Error, fmt.Sprintf(format, args...)})
}

// Section writes the header of a collapsed section titled title and
// returns the Logger of its lines, which expands it at its first warning
// or error.
func (l *Logger) Section(title string) *Logger {
	if l == nil {
		return nil
	}
	if l.w != nil && l.kept == nil {
		_, _ = fmt.Fprintf(l.w, "--- %s\n", title)
	}
	s := *l
	s.section = &section{}
	return &s
}
