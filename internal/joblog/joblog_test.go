package joblog

import (
	"bytes"
	"testing"
)

func TestLines(t *testing.T) {
	var b bytes.Buffer
	Printf(&b, "cache %s", "off")
	Warnf(&b, "ignoring %s=%q", "DOCKHAND_CACHE", "x")
	Warnf(&b, "%v", "100% sure") // a message is an argument, never a format
	want := "dockhand: cache off\ndockhand: warning: ignoring DOCKHAND_CACHE=\"x\"\ndockhand: warning: 100% sure\n"
	if b.String() != want {
		t.Errorf("wrote %q, want %q", b.String(), want)
	}
	Printf(nil, "nothing") // a nil log takes nothing, without a panic
}

// TestSectionExpandsAtItsFirstWarning: a section opens collapsed; its
// first warning line, however worded, is followed by the agent's "^^^ +++"
// (once, at the end of a line), and a section without warnings stays
// collapsed.
func TestSectionExpandsAtItsFirstWarning(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(s *Section)
		want  string
	}{
		{"no warning", func(s *Section) { Printf(s, "ready") }, "--- T\ndockhand: ready\n"},
		{"two warnings", func(s *Section) {
			Printf(s, "job dir")
			Warnf(s, "cache repository denied")
			Printf(s, "%s", "warning: builder fell back")
			Printf(s, "ready")
		}, "--- T\ndockhand: job dir\ndockhand: warning: cache repository denied\n^^^ +++\ndockhand: warning: builder fell back\ndockhand: ready\n"},
		{"a warning worded by Printf", func(s *Section) { Printf(s, "%s", "warning: no cache summary") },
			"--- T\ndockhand: warning: no cache summary\n^^^ +++\n"},
		{"a warning written in parts", func(s *Section) {
			s.Write([]byte("dockhand: warning: half"))
			s.Write([]byte(" and half\ndockhand: ready\n"))
		}, "--- T\ndockhand: warning: half and half\ndockhand: ready\n^^^ +++\n"},
		{"the word elsewhere", func(s *Section) { Printf(s, "no warning: here") }, "--- T\ndockhand: no warning: here\n"},
	} {
		var b bytes.Buffer
		tc.write(OpenSection(&b, "T"))
		if b.String() != tc.want {
			t.Errorf("%s: wrote %q, want %q", tc.name, b.String(), tc.want)
		}
	}
	Warnf(OpenSection(nil, "T"), "nothing") // no log: nothing, without a panic
}
