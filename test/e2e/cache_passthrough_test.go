package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestCachePassThrough: with cache injection on, every call the shim must
// not touch reaches the real buildx unchanged and still works: a build with
// the user's own cache flags, --call=check, ls, imagetools, a build whose
// Dockerfile comes on stdin, a flag the shim has never seen (one warning
// line; DOCKHAND_STRICT=1 fails instead), and a step with DOCKHAND_CACHE=off.
func TestCachePassThrough(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	repo := kit.Registry.Host + "/cache"
	r := cacheRig(t, fmt.Sprintf("[cache]\nrepository = %q\n", repo))
	userRef := kit.Registry.Host + "/user/cache:mine"
	command := fmt.Sprintf(`cat > Dockerfile <<'DOCKERFILE'
FROM %[1]s
RUN echo ran-step-one
DOCKERFILE
docker buildx create --name kit --driver remote %[2]s >/dev/null
echo "== user cache flags"
docker buildx build --builder kit --progress plain --cache-from type=registry,ref=%[3]s --cache-to type=registry,ref=%[3]s,mode=max .
echo "== call check"
docker buildx build --builder kit --call=check . 2>&1 | sed 's/^/check: /'
echo "== ls"
docker buildx ls | sed 's/^/ls: /'
echo "== version"
docker buildx version | sed 's/^/version: /'
echo "== imagetools"
docker buildx imagetools inspect %[1]s | sed 's/^/imagetools: /'
echo "== stdin"
docker build --builder kit --progress plain - < Dockerfile 2>&1 | sed 's/^/stdin: /'
echo "== unknown flag"
if docker buildx build --builder kit --dockhand-never-seen . 2>unknown.err; then echo "an unknown flag was accepted"; exit 1; fi
sed 's/^/unknown: /' unknown.err
echo "== strict"
if DOCKHAND_STRICT=1 docker buildx build --builder kit --dockhand-never-seen=1 . 2>strict.err; then echo "strict passed"; exit 1; fi
sed 's/^/strict: /' strict.err
echo "== off"
DOCKHAND_CACHE=off docker buildx build --builder kit --progress plain . 2>&1 | sed 's/^/off: /'
echo "== end"`, kit.BaseImage, kit.Buildkitd.Addr, userRef)
	log := runJob(t, r, command, branchEnv("main"))

	if !strings.Contains(log, "== end") {
		t.Fatalf("the job did not get to its end:\n%s", log)
	}
	if keys := injectedKeys(log); len(keys) != 0 {
		t.Errorf("cache was injected into a pass-through call (keys %q):\n%s", keys, log)
	}
	if state := registryState(t, kit.Registry.Host, "cache/pipeline"); len(state) != 0 {
		t.Errorf("dockhand cache refs were written: %v", state)
	}
	if manifestDigest(t, kit.Registry.Host, "user/cache", "mine") == "" {
		t.Errorf("the user's own --cache-to %s was not written", userRef)
	}
	for _, want := range []string{
		"check: Check complete, no warnings found.",
		"ls: kit",
		"version: github.com/docker/buildx",
		"imagetools: Name:",
		"stdin: #0 building with \"kit\" instance using remote driver",
		"unknown: dockhand: cache not injected: unknown flag --dockhand-never-seen",
		"unknown: unknown flag: --dockhand-never-seen",
		"strict: dockhand: cache not injected: unknown flag --dockhand-never-seen",
		"off: #0 building with \"kit\" instance using remote driver",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log has no %q", want)
		}
	}
	if strings.Contains(log, "strict: unknown flag") {
		t.Errorf("with DOCKHAND_STRICT=1 the call still reached buildx")
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}
