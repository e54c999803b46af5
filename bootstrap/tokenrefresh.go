package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/registry"
)

// The host's recently used ECR tokens are refreshed beside the job (see
// registry/tokenrefresh.go): a goroutine of the bootstrap, which lives as
// long as the job. The job waits for nothing but the claim of the due
// tokens' fetch locks (a file read and a non-blocking lock each), so a get
// of the job that comes while a fetch runs waits for that fetch instead of
// making its own; the bootstrap's exit waits at most refreshExitWait, then
// cancels it (its dockhand-cloud child is killed within proc.WaitDelay).

// Bounds of the background refresh on the bootstrap's side.
const (
	// refreshClaimWait bounds the job's start waiting for the claim,
	// which is done long before setup is.
	refreshClaimWait = 500 * time.Millisecond
	// refreshExitWait bounds the bootstrap's exit waiting for a fetch
	// still running when the job ended; then it is cancelled.
	refreshExitWait = time.Second
	// refreshTimeout bounds the whole refresh, as a get's fetch is.
	refreshTimeout = registry.DefaultLookupTimeout
)

// tokenRefresh is a refresh running beside the job.
type tokenRefresh struct {
	cancel  context.CancelFunc
	claimed chan struct{} // closed once the due tokens' locks are held
	done    chan struct{} // closed when the refresh ended
	start   time.Time

	// Set before done is closed.
	hosts     []string
	refreshed int
	err       error
	took      time.Duration
}

// startTokenRefresh starts refreshing, beside setup and the job, the due
// tokens of the host's cache in state under the bootstrap's identity; nil
// when the registry.refresh_tokens setting is off.
func startTokenRefresh(o Options, state string) *tokenRefresh {
	if !o.Config.Registry.RefreshTokens {
		return nil
	}
	// Its own root: it serves the host's tokens, not this job's setup, and
	// outlives setup's context; stop is what ends it.
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	r := &tokenRefresh{cancel: cancel, claimed: make(chan struct{}), done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(r.done)
		defer cancel()
		claim, err := registry.ClaimRefresh(registry.RefreshOptions{
			StateDir: state, Env: o.Env, UID: o.UID, Cloud: cloud.Path(o.Self),
		})
		r.hosts = claim.Registries()
		close(r.claimed)
		if err != nil {
			r.err = err
			return
		}
		r.refreshed, r.err = claim.Run(ctx)
		r.took = time.Since(r.start)
	}()
	return r
}

// waitClaimed waits, at most refreshClaimWait, until the due tokens'
// locks are held: from then on a get of the job waits for their fetch.
func (r *tokenRefresh) waitClaimed() {
	if r == nil {
		return
	}
	t := time.NewTimer(refreshClaimWait)
	defer t.Stop()
	select {
	case <-r.claimed:
	case <-t.C:
	}
}

// stop gives the refresh at most wait to end, then cancels it and waits for
// it to let its locks go. It returns the debug line ("" when nothing was
// due).
func (r *tokenRefresh) stop(wait time.Duration) string {
	if r == nil {
		return ""
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		r.cancel()
		<-r.done
	}
	return r.line()
}

// line is the debug line about the refresh: one, whatever happened.
func (r *tokenRefresh) line() string {
	switch {
	case r.err != nil && len(r.hosts) == 0:
		return fmt.Sprintf("debug: ECR token refresh: not done: %v", r.err)
	case len(r.hosts) == 0:
		return ""
	case r.err != nil:
		return fmt.Sprintf("debug: ECR token refresh of %s: %d refreshed; failed: %v", strings.Join(r.hosts, ", "), r.refreshed, r.err)
	}
	return fmt.Sprintf("debug: ECR token refresh of %s: refreshed in %s", strings.Join(r.hosts, ", "), msString(r.took))
}
