package bootstrap

import (
	"errors"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/config"
)

func TestTokenRefreshLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    tokenRefresh
		want string
	}{
		{"nothing due", tokenRefresh{}, ""},
		{"refreshed", tokenRefresh{hosts: []string{"a.example", "b.example"}, refreshed: 2, took: 14200 * time.Microsecond},
			"debug: ECR token refresh of a.example, b.example: refreshed in 14.2ms"},
		{"one failed", tokenRefresh{hosts: []string{"a.example", "b.example"}, refreshed: 1, err: errors.New("b.example: AccessDeniedException")},
			"debug: ECR token refresh of a.example, b.example: 1 refreshed; failed: b.example: AccessDeniedException"},
		{"cache unreadable", tokenRefresh{err: errors.New("reading the token cache: permission denied")},
			"debug: ECR token refresh: not done: reading the token cache: permission denied"},
	} {
		if got := tc.r.line(); got != tc.want {
			t.Errorf("%s: line() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// Off: nothing starts, and the job's start and end wait for nothing.
func TestTokenRefreshOff(t *testing.T) {
	cfg := config.Default("")
	cfg.Registry.RefreshTokens = false
	r := startTokenRefresh(Options{Config: cfg}, t.TempDir())
	if r != nil {
		t.Fatal("a refresh started with registry.refresh_tokens = false")
	}
	r.waitClaimed()
	if line := r.stop(time.Second); line != "" {
		t.Errorf("stop() = %q", line)
	}
}

// On, with an empty cache: the claim finds nothing due, ends at once, and
// the exit waits for nothing.
func TestTokenRefreshNothingDue(t *testing.T) {
	r := startTokenRefresh(Options{Config: config.Default("")}, t.TempDir())
	if r == nil {
		t.Fatal("no refresh with the default settings")
	}
	r.waitClaimed()
	start := time.Now()
	if line := r.stop(time.Minute); line != "" || time.Since(start) > 10*time.Second {
		t.Errorf("stop() = %q after %s", line, time.Since(start))
	}
}
