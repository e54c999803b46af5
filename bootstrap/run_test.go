package bootstrap

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestWaitChildCancelledJobGetsNoReport: the agent's cancel signals the
// whole group, so the child may end before this process reads the signal.
// A signal that came by then wins: no job report, no metrics line, every
// time (a plain select would run the report about half the time).
func TestWaitChildCancelledJobGetsNoReport(t *testing.T) {
	exit := errors.New("exit status 1")
	for range 200 {
		done, sigs := make(chan error, 1), make(chan os.Signal, 1)
		done <- exit
		sigs <- syscall.SIGTERM
		reported := false
		signalled, err := waitChild(done, sigs, func() time.Time { reported = true; return time.Time{} })
		if reported || signalled.IsZero() || !errors.Is(err, exit) {
			t.Fatalf("a cancelled job: reported %v, signalled %v, err %v; want no report, the signal noted and the child's end", reported, signalled, err)
		}
	}
}

// TestWaitChildReportsAJobThatRanToItsEnd: without a signal the report runs
// once, and a signal during it is what waitChild returns.
func TestWaitChildReportsAJobThatRanToItsEnd(t *testing.T) {
	done, sigs := make(chan error, 1), make(chan os.Signal, 1)
	done <- nil
	calls := 0
	during := time.Now()
	signalled, err := waitChild(done, sigs, func() time.Time { calls++; return during })
	if calls != 1 || !signalled.Equal(during) || err != nil {
		t.Fatalf("report ran %d times, signalled %v (want %v), err %v", calls, signalled, during, err)
	}
}
