package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestForkCannotPoisonTrustedCacheMounts: a pull request from a fork
// writes a cache mount (RUN --mount=type=cache); it runs on the untrusted
// pool, so the default branch's next build, on the trusted pool, does not
// see what it wrote. A trusted build that writes the same mount is seen:
// the mount really is shared on a node, which is what the fork is kept from.
func TestForkCannotPoisonTrustedCacheMounts(t *testing.T) {
	t.Parallel()
	p := startPool(t, 2)
	trusted, untrusted := p.eps[0], p.eps[1]
	dir := shortDir(t)
	config := filepath.Join(dir, "dockhand.toml")
	writeFile(t, config, p.config(filepath.Join(dir, "state"), p.fleet.Client, []string{trusted}, "")+
		fmt.Sprintf("[untrusted]\nbuilder = \"remote\"\nendpoints = [%q]\n", untrusted))
	const slug = "app"
	runs := 0
	build := func(run string) string {
		runs++ // every RUN differs, so none is a cached step
		return fmt.Sprintf(`cat > Dockerfile <<'EOF'
FROM %s
RUN --mount=type=cache,id=tools,target=/cache echo run-%d; %s
EOF
buildctl --tlsdir "$BUILDKIT_TLS_DIR" build --progress plain --frontend dockerfile.v0 --local context=. --local dockerfile=.`, p.kit.BaseImage, runs, run)
	}
	write := func(who string) string { return build("echo " + who + "-was-here > /cache/tool") }
	read := func() string { return build("cat /cache/tool 2>/dev/null || echo mount-is-clean") }
	repo := "BUILDKITE_REPO=https://github.com/org/app.git"

	fork := runBootstrap(t, config, slug, write("fork"), repo, "BUILDKITE_BRANCH=patch-1",
		"BUILDKITE_PULL_REQUEST=5", "BUILDKITE_PULL_REQUEST_REPO=https://github.com/mallory/app.git")
	if fork.code != 0 {
		t.Fatalf("fork's job: exit %d\n%s\n%s", fork.code, fork.stdout, fork.stderr)
	}
	if ep, _ := chosen(t, fork.stdout); ep != untrusted {
		t.Errorf("the fork's build ran on %s, want the untrusted pool's %s", ep, untrusted)
	}
	if !strings.Contains(fork.stdout, `builder: a pull request from a fork (github.com/mallory/app): untrusted.builder = "remote"`) {
		t.Errorf("the fork's job log does not say why it went to the untrusted pool:\n%s", section(fork.stdout))
	}

	main := runBootstrap(t, config, slug, read(), repo)
	if main.code != 0 {
		t.Fatalf("default branch's job: exit %d\n%s\n%s", main.code, main.stdout, main.stderr)
	}
	if ep, _ := chosen(t, main.stdout); ep != trusted {
		t.Errorf("the default branch's build ran on %s, want %s", ep, trusted)
	}
	if strings.Contains(main.stdout, "fork-was-here") || !regexp.MustCompile(`(?m)^#\d+ [0-9.]+ mount-is-clean$`).MatchString(main.stdout) {
		t.Errorf("the default branch's build saw the fork's cache mount:\n%s", main.stdout)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[trusted])); n != 1 {
		t.Errorf("the trusted node ran %d builds, want only the default branch's", n)
	}

	// By default a fork's job gets no builder of dockhand's at all, and
	// its probes reach no trusted node.
	plain := filepath.Join(dir, "default.toml")
	writeFile(t, plain, p.config(filepath.Join(dir, "state2"), p.fleet.Client, []string{trusted}, ""))
	none := runBootstrap(t, plain, slug, `echo "host=[$BUILDKIT_HOST] builder=[$BUILDX_BUILDER]"`, repo,
		"BUILDKITE_PULL_REQUEST=6", "BUILDKITE_PULL_REQUEST_REPO=git@github.com:mallory/app.git")
	if none.code != 0 || !strings.Contains(none.stdout, "host=[] builder=[]") || strings.Contains(none.stdout, "probe remote") || strings.Contains(none.stdout, "none configured") ||
		!strings.Contains(none.stdout, `builder: a pull request from a fork (github.com/mallory/app): untrusted.builder = "none"`) {
		t.Errorf("a fork's job with the default [untrusted] (exit %d):\n%s", none.code, none.stdout)
	}

	// The control: a trusted branch's build writes the mount on the trusted
	// node, and the default branch's next build reads it.
	if r := runBootstrap(t, config, slug, write("branch"), repo, "BUILDKITE_BRANCH=feature"); r.code != 0 {
		t.Fatalf("branch job: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	again := runBootstrap(t, config, slug, read(), repo)
	if again.code != 0 || !strings.Contains(again.stdout, "branch-was-here") {
		t.Errorf("a trusted build's cache mount is not seen by the next one on its node (exit %d): the test cannot see sharing\n%s", again.code, again.stdout)
	}
}
