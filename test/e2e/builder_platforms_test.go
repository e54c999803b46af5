package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestPerPlatformNodesBuildNatively: with one node per platform
// ([[remote.platform]]), a two-platform build runs each platform on its
// own node (as native builders would), and the pushed image holds both.
func TestPerPlatformNodesBuildNatively(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{NoBaseImage: true})
	fleet, err := kit.NewFleetTLS("fleet")
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*harness.Buildkitd{}
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		b, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{
			Name: "node-" + strings.ReplaceAll(platform, "/", "-"), TCP: true, TLS: &fleet.Server,
			Platforms: []string{platform}, InsecureRegistries: []string{kit.Registry.Host},
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes[platform] = b
	}
	r := newRig(t)
	writeFile(t, r.config, fmt.Sprintf(`state_dir = %q
builders = ["remote"]
[remote]
ca = %q
cert = %q
key = %q
[[remote.platform]]
platform = "linux/amd64"
endpoints = [%q]
[[remote.platform]]
platform = "linux/arm64"
endpoints = [%q]
`, r.state, fleet.Client.CA, fleet.Client.Cert, fleet.Client.Key, nodes["linux/amd64"].TCPAddr, nodes["linux/arm64"].TCPAddr))
	ref := kit.Registry.Host + "/multi/app:1"
	id, agent := r.start(fmt.Sprintf(`echo platform-file > f
printf 'FROM scratch\nARG TARGETPLATFORM\nCOPY f /f\n' > Dockerfile
docker buildx ls
docker buildx build --progress plain --platform linux/amd64,linux/arm64 --push -t %s .`, ref),
		map[string]string{"BUILDX_NO_DEFAULT_ATTESTATIONS": "1"})
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("exit %q\n%s", f.ExitStatus, log)
	}
	if !strings.Contains(log, `builder: remote "dockhand-remote" on `+nodes["linux/amd64"].TCPAddr+", "+nodes["linux/arm64"].TCPAddr) {
		t.Errorf("the builder is not one node per platform:\n%s", section(log))
	}
	for platform, b := range nodes {
		var got []string
		for _, rec := range histories(t, kit.Kit, b) {
			got = append(got, rec.Platform)
		}
		if !slices.Equal(got, []string{platform}) {
			t.Errorf("node %s built platforms %q, want only [%s]", platform, got, platform)
		}
	}
	if got := indexPlatforms(t, kit.Registry.Host, "multi/app", "1"); !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("pushed image platforms = %q, want linux/amd64 and linux/arm64", got)
	}
}

// indexPlatforms lists the platforms of a pushed image index.
func indexPlatforms(t *testing.T, host, repo, tag string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var idx struct {
		Manifests []struct {
			Platform struct{ OS, Architecture string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
		t.Fatalf("decoding the index: %v", err)
	}
	var out []string
	for _, m := range idx.Manifests {
		out = append(out, m.Platform.OS+"/"+m.Platform.Architecture)
	}
	slices.Sort(out)
	return out
}
