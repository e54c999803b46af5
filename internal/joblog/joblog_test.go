package joblog

import (
	"bytes"
	"slices"
	"testing"
)

// TestLogger: the printer alone words a line's prefix from its severity,
// and a section is expanded ("^^^ +++") once, right after its first warning
// or error, and never without one; a logger outside a section expands
// nothing.
func TestLogger(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(l *Logger)
		want  string
	}{
		{"severities", func(l *Logger) {
			l.Printf("cache %s", "off")
			l.Warnf("ignoring %s=%q", "DOCKHAND_CACHE", "x")
			l.Errorf("job state: %v", "unreadable")
			l.Warnf("%v", "100% sure") // a message is an argument, never a format
		}, "dockhand: cache off\ndockhand: warning: ignoring DOCKHAND_CACHE=\"x\"\ndockhand: error: job state: unreadable\ndockhand: warning: 100% sure\n"},
		{"lines handed back", func(l *Logger) {
			l.Print(Notef("builder: %s", "local"), Line{Warning, "builder: namespace failed"}, Line{Text: "ready"})
		}, "dockhand: builder: local\ndockhand: warning: builder: namespace failed\ndockhand: ready\n"},
		{"a note that mentions warnings", func(l *Logger) { l.Printf("%s", "warning: not one") }, "dockhand: warning: not one\n"},
		{"no section, no expanding", func(l *Logger) { l.Warnf("outside") }, "dockhand: warning: outside\n"},
		{"a section without warnings stays collapsed", func(l *Logger) {
			s := l.Section("T")
			s.Printf("ready")
			s.Printf("%s", "warning: a note's own words")
		}, "--- T\ndockhand: ready\ndockhand: warning: a note's own words\n"},
		{"two warnings expand once", func(l *Logger) {
			s := l.Section("T")
			s.Printf("job dir")
			s.Warnf("cache repository denied")
			s.Print(Warningf("builder fell back"))
			s.Printf("ready")
		}, "--- T\ndockhand: job dir\ndockhand: warning: cache repository denied\n^^^ +++\ndockhand: warning: builder fell back\ndockhand: ready\n"},
		{"an error expands", func(l *Logger) { l.Section("T").Errorf("no metrics line") },
			"--- T\ndockhand: error: no metrics line\n^^^ +++\n"},
		{"each section once", func(l *Logger) {
			l.Section("A").Warnf("a")
			s := l.Section("B")
			s.Warnf("b")
			s.Warnf("c")
		}, "--- A\ndockhand: warning: a\n^^^ +++\n--- B\ndockhand: warning: b\n^^^ +++\ndockhand: warning: c\n"},
	} {
		var b bytes.Buffer
		tc.write(New(&b))
		if b.String() != tc.want {
			t.Errorf("%s: wrote %q, want %q", tc.name, b.String(), tc.want)
		}
	}
}

func TestNamed(t *testing.T) {
	var b bytes.Buffer
	l := Named(&b, "dockhand cached-image")
	l.Warnf("cache-on %q matched no file", "*.lock")
	l.Printf("built")
	if want := "dockhand cached-image: warning: cache-on \"*.lock\" matched no file\ndockhand cached-image: built\n"; b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
}

// TestKeep: a kept logger hands its lines back with their severity, writes
// nothing, and its sections have no header.
func TestKeep(t *testing.T) {
	var lines []Line
	l := Keep(&lines)
	l.Printf("carried over %d", 2)
	l.Section("T").Warnf("denied")
	want := []Line{{Note, "carried over 2"}, {Warning, "denied"}}
	if !slices.Equal(lines, want) {
		t.Errorf("kept %v, want %v", lines, want)
	}
}

func TestNil(t *testing.T) {
	// No log: nothing, without a panic.
	New(nil).Section("T").Warnf("nothing")
	var l *Logger
	l.Printf("nothing")
	l.Section("T").Errorf("nothing")
}
