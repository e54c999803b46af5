package harness

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestCmdlineWatchSeesSecrets checks the watch: a process whose
// command line holds a canary is found.
func TestCmdlineWatchSeesSecrets(t *testing.T) {
	const canary = "cmdline-watch-canary-7f3a"
	w := WatchCmdlines(canary)
	cmd := exec.Command("/bin/sh", "-c", "read _", canary)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	// Two complete scans after the start: the process was there for both.
	_, at := w.Hits()
	for {
		hits, scans := w.Hits()
		if len(hits) > 0 {
			break
		}
		if scans > at+2 {
			t.Fatalf("the watch did not see %q in a running process's command line", canary)
		}
		runtime.Gosched()
	}
	hits, _ := w.Stop()
	if !strings.Contains(hits[0], "<SECRET>") || strings.Contains(hits[0], canary) {
		t.Errorf("hit = %q, want the canary masked", hits[0])
	}
}
