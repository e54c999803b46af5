package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// SubIDCount is the size of the subordinate uid and gid ranges the kit
// gives the stack user, as the agent AMI does: what rootless buildkitd maps.
const SubIDCount = 65536

// ensureSubIDs gives user a subordinate uid and gid range (for rootless
// buildkitd under rootlesskit) unless /etc/subuid and /etc/subgid already
// have one: the first SubIDCount ids from 100000 that no other range uses.
func ensureSubIDs(name string) error {
	var args []string
	for _, f := range []struct{ file, flag string }{{"/etc/subuid", "--add-subuids"}, {"/etc/subgid", "--add-subgids"}} {
		b, err := os.ReadFile(f.file)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		has, end := subIDRanges(b, name)
		if !has {
			start := max(100000, end)
			args = append(args, f.flag, fmt.Sprintf("%d-%d", start, start+SubIDCount-1))
		}
	}
	if len(args) == 0 {
		return nil
	}
	if out, err := exec.Command("usermod", append(args, name)...).CombinedOutput(); err != nil {
		return fmt.Errorf("usermod %s: %w: %s", strings.Join(append(args, name), " "), err, out)
	}
	return nil
}

// subIDRanges reports whether a subuid/subgid file has a range for name,
// and where the highest range in it ends.
func subIDRanges(file []byte, name string) (has bool, end int) {
	s := bufio.NewScanner(bytes.NewReader(file))
	for s.Scan() {
		f := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(f) != 3 {
			continue
		}
		first, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		has = has || f[0] == name
		end = max(end, first+count)
	}
	return has, end
}
