package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

// reraiseSignalVar makes the test binary, run as a child, end by reraise.
const reraiseSignalVar = "DOCKHAND_TEST_RERAISE_SIGNAL"

// TestReraiseDiesByTheSignal checks that dockhand ends by the child's
// signal itself, as the agent expects of a bootstrap: also for the signals
// whose Go default is a stack dump and exit status 2.
func TestReraiseDiesByTheSignal(t *testing.T) {
	if v := os.Getenv(reraiseSignalVar); v != "" {
		n, _ := strconv.Atoi(v)
		_ = syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}) // no core file from SIGQUIT or SIGABRT
		reraise(syscall.Signal(n))
		return
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGABRT} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReraiseDiesByTheSignal$")
		cmd.Env = append(os.Environ(), reraiseSignalVar+"="+strconv.Itoa(int(sig)), "GOTRACEBACK=single")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%v: child ended with %v, want death by the signal", sig, err)
		}
		ws := ee.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != sig {
			t.Errorf("%v: child ended with %v (exit %d), want death by %v; stderr:\n%.300s", sig, ws, ws.ExitStatus(), sig, stderr.String())
		}
		if bytes.Contains(stderr.Bytes(), []byte("goroutine ")) {
			t.Errorf("%v: a stack dump reached stderr:\n%.300s", sig, stderr.String())
		}
	}
}
