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
