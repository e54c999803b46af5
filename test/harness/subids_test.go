package harness

import (
	"os"
	"testing"
)

func TestSubIDRanges(t *testing.T) {
	for _, tc := range []struct {
		file    string
		has     bool
		end     int
		comment string
	}{
		{"", false, 0, "no file"},
		{"ubuntu:100000:65536\n", false, 165536, "another user's range: the next starts after it"},
		{"ubuntu:100000:65536\nbuildkite-agent:165536:65536\n", true, 231072, "its own"},
		{"buildkite-agent:x:65536\n#c\n", false, 0, "malformed lines are no range"},
	} {
		if has, end := subIDRanges([]byte(tc.file), "buildkite-agent"); has != tc.has || end != tc.end {
			t.Errorf("%s: got %v %d, want %v %d", tc.comment, has, end, tc.has, tc.end)
		}
	}
}

// TestStackUserHasSubIDs: the stack user the kit makes has the ranges
// rootless buildkitd maps, as the agent AMI provisions them.
func TestStackUserHasSubIDs(t *testing.T) {
	u := MustStackUser(t)
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := readFileOrEmpty(f)
		if err != nil {
			t.Fatal(err)
		}
		if has, _ := subIDRanges(b, u.Name); !has {
			t.Errorf("%s has no range for %s:\n%s", f, u.Name, b)
		}
	}
}

func readFileOrEmpty(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	return b, err
}
