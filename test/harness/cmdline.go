package harness

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// CmdlineWatch samples /proc/*/cmdline of every process on the host for
// secrets. It is a sampler, not a synchronisation: it scans as fast as it
// can until stopped.
type CmdlineWatch struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	hits  []string
	scans int
}

// WatchCmdlines starts sampling for secrets; Stop ends it.
func WatchCmdlines(secrets ...string) *CmdlineWatch {
	w := &CmdlineWatch{stop: make(chan struct{})}
	self := strconv.Itoa(os.Getpid())
	w.wg.Go(func() {
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == self {
					continue
				}
				b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				if err != nil || len(b) == 0 {
					continue
				}
				for _, s := range secrets {
					if s != "" && bytes.Contains(b, []byte(s)) {
						w.mu.Lock()
						w.hits = append(w.hits, strings.ReplaceAll(strings.ReplaceAll(string(b), "\x00", " "), s, "<SECRET>"))
						w.mu.Unlock()
					}
				}
			}
			w.mu.Lock()
			w.scans++
			w.mu.Unlock()
		}
	})
	return w
}

// Hits returns what was found so far and the number of complete scans.
func (w *CmdlineWatch) Hits() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.hits), w.scans
}

// Stop ends the sampling and returns what was found.
func (w *CmdlineWatch) Stop() ([]string, int) {
	close(w.stop)
	w.wg.Wait()
	return w.Hits()
}

// NoSecretInCmdlines watches /proc/*/cmdline for the secrets for the whole
// test and fails it if any process's command line held one.
func NoSecretInCmdlines(t testing.TB, secrets ...string) {
	t.Helper()
	w := WatchCmdlines(secrets...)
	t.Cleanup(func() {
		hits, scans := w.Stop()
		if scans == 0 {
			t.Errorf("the /proc/*/cmdline watch never completed a scan")
		}
		for _, h := range hits {
			t.Errorf("a command line held a secret: %s", h)
		}
		t.Logf("/proc/*/cmdline: %d scans of every process, no secret found", scans)
	})
}
