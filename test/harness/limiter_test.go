package harness

import (
	"testing"
)

func TestParallelFromEnv(t *testing.T) {
	for _, tc := range []struct {
		environ []string
		want    int
		bad     bool
	}{
		{nil, DefaultParallel, false},
		{[]string{ParallelVar + "="}, DefaultParallel, false},
		{[]string{"OTHER=7", ParallelVar + "=1"}, 1, false},
		{[]string{ParallelVar + "=12"}, 12, false},
		{[]string{ParallelVar + "=0"}, 0, true},
		{[]string{ParallelVar + "=-2"}, 0, true},
		{[]string{ParallelVar + "=two"}, 0, true},
	} {
		n, err := ParallelFromEnv(tc.environ)
		if (err != nil) != tc.bad || n != tc.want {
			t.Errorf("ParallelFromEnv(%q) = %d, %v; want %d (error: %v)", tc.environ, n, err, tc.want, tc.bad)
		}
	}
}

// tryAcquire is acquire that does not wait: false when it would have.
func (l *Limiter) tryAcquire(key string) (func(), bool) {
	l.mu.Lock()
	shared := l.sharedLocked(key)
	l.mu.Unlock()
	if shared {
		return nil, true
	}
	select {
	case l.slots <- struct{}{}:
		<-l.slots
	default:
		return nil, false
	}
	return l.acquire(key), true
}

func TestLimiterBoundsAndHoldsOneSlotPerTest(t *testing.T) {
	l := NewLimiter(2)
	a, _ := l.tryAcquire("TestA")
	if again, ok := l.tryAcquire("TestA"); !ok || again != nil || l.InUse() != 1 {
		t.Fatalf("a second acquire for TestA: release %v, ok %v, %d slots in use; want no new slot, 1 in use", again != nil, ok, l.InUse())
	}
	b, _ := l.tryAcquire("TestB")
	if b == nil || l.InUse() != 2 {
		t.Fatalf("TestB: %d slots in use, want 2", l.InUse())
	}
	if _, ok := l.tryAcquire("TestC"); ok {
		t.Fatal("a third test got a slot of two")
	}
	// A test waiting for a slot gets it when one is given back.
	got := make(chan func())
	go func() { got <- l.acquire("TestC") }()
	a()
	c := <-got
	if c == nil || l.InUse() != 2 {
		t.Fatalf("TestC after TestA ended: %d slots in use, want 2", l.InUse())
	}
	// A subtest shares its test's slot; one whose ancestors hold none
	// (TestC holds one, TestCache is another test) needs its own.
	if sub, ok := l.tryAcquire("TestC/sub/row"); !ok || sub != nil {
		t.Fatalf("a subtest of TestC: release %v, ok %v; want TestC's slot, shared", sub != nil, ok)
	}
	if _, ok := l.tryAcquire("TestCache/sub"); ok {
		t.Fatal("TestCache/sub shared TestC's slot")
	}
	// TestA's slot went back with it: it may take one again later.
	b()
	if a2, ok := l.tryAcquire("TestA"); !ok || a2 == nil {
		t.Fatal("TestA could not take a slot again after giving its first back")
	}
}

func TestLimiterSlotIsSharedWithSubtestsAndEndsWithItsTest(t *testing.T) {
	l := NewLimiter(1)
	t.Run("first", func(t *testing.T) {
		l.Acquire(t)
		t.Run("nested", func(t *testing.T) {
			l.Acquire(t) // its parent's slot: it must not wait for a second of one
			if l.InUse() != 1 {
				t.Errorf("%d slots in use inside a subtest, want 1", l.InUse())
			}
		})
		if l.InUse() != 1 {
			t.Errorf("%d slots in use after the nested subtest, want still 1 (it took none)", l.InUse())
		}
	})
	if l.InUse() != 0 {
		t.Errorf("%d slots in use after the subtest that took it ended, want 0", l.InUse())
	}
}
