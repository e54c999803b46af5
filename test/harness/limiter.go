package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ParallelVar sets how many end-to-end tests run at once: each parallel test
// holds one of that many slots from its first harness call (Start,
// DockhandBin, MustStackUser) until it ends.
const ParallelVar = "DOCKHAND_E2E_PARALLEL"

// DefaultParallel is the slots when ParallelVar is unset. On a shared
// 2-core machine the e2e lane took 484 s with 2 and 473 s with 3 (README.md,
// "Make targets"): no faster for the extra load, under which a healthy
// node's probe already took over a second once.
const DefaultParallel = 2

// ParallelFromEnv reads ParallelVar from environ: a whole number from 1 up,
// DefaultParallel when unset or empty.
func ParallelFromEnv(environ []string) (int, error) {
	for _, kv := range environ {
		v, ok := strings.CutPrefix(kv, ParallelVar+"=")
		if !ok || v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("%s=%q: want a whole number from 1 up", ParallelVar, v)
		}
		return n, nil
	}
	return DefaultParallel, nil
}

// Limiter bounds how many tests hold a slot at once. A test holds at most
// one, whatever number of harness calls it makes, and its subtests share it;
// a subtest whose ancestors hold none takes one of its own (so the parallel
// subtests of a test that starts nothing itself each wait for a slot). A
// slot goes back when the test that took it ends.
type Limiter struct {
	slots chan struct{}
	mu    sync.Mutex
	held  map[string]bool // names of the tests holding a slot
}

// NewLimiter makes a limiter of n slots.
func NewLimiter(n int) *Limiter {
	return &Limiter{slots: make(chan struct{}, n), held: map[string]bool{}}
}

// Acquire takes a slot for t, waiting for one to be free, unless t or one
// of its ancestors holds one already; t's cleanup gives it back.
func (l *Limiter) Acquire(t testing.TB) {
	t.Helper()
	if release := l.acquire(t.Name()); release != nil {
		t.Cleanup(release)
	}
}

// acquire takes a slot for the test named key and returns what gives it
// back, or nil when key or an ancestor ("key" up to a "/") holds one.
func (l *Limiter) acquire(key string) func() {
	l.mu.Lock()
	if l.sharedLocked(key) {
		l.mu.Unlock()
		return nil
	}
	l.held[key] = true // before waiting: a second call for key must not take a second slot
	l.mu.Unlock()
	l.slots <- struct{}{}
	return func() {
		<-l.slots
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
	}
}

// sharedLocked reports whether the test named key or an ancestor ("key" up
// to a "/") holds a slot; l.mu is held.
func (l *Limiter) sharedLocked(key string) bool {
	for held := range l.held {
		if key == held || strings.HasPrefix(key, held+"/") {
			return true
		}
	}
	return false
}

// InUse is how many slots are taken.
func (l *Limiter) InUse() int { return len(l.slots) }

// testSlots is the limiter of this test process's end-to-end tests, sized
// by ParallelVar the first time a test asks for a slot.
var testSlots = sync.OnceValues(func() (*Limiter, error) {
	n, err := ParallelFromEnv(os.Environ())
	if err != nil {
		return nil, err
	}
	return NewLimiter(n), nil
})

// Slot holds one of the end-to-end slots for t until it ends, unless t or
// an ancestor holds one (see ParallelVar and Limiter). Start, DockhandBin and MustStackUser call it, so a
// test that calls t.Parallel runs under the limit without asking; a serial
// test takes a free slot at once, since parallel tests wait until every
// serial one has ended.
func Slot(t testing.TB) {
	t.Helper()
	l, err := testSlots()
	if err != nil {
		t.Fatal(err)
	}
	l.Acquire(t)
}
