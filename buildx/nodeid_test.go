package buildx

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestNodeScopeFromEnv(t *testing.T) {
	base := map[string]string{
		"BUILDKITE_ORGANIZATION_SLUG":   "org",
		"BUILDKITE_PIPELINE_SLUG":       "app",
		"BUILDKITE_BUILD_CHECKOUT_PATH": "/var/lib/buildkite-agent/builds/host-1/org/app/",
		"BUILDKITE_REPO":                "git@github.com:org/app.git",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want NodeScope
		ok   bool
	}{
		{"slug", base, NodeScope{Pipeline: "slug:org/app", Checkout: "/var/lib/buildkite-agent/builds/host-1/org/app"}, true},
		{"pipeline id wins", with("BUILDKITE_PIPELINE_ID", "0190-abc"),
			NodeScope{Pipeline: "id:0190-abc", Checkout: "/var/lib/buildkite-agent/builds/host-1/org/app"}, true},
		{"fork", with("BUILDKITE_PULL_REQUEST", "12", "BUILDKITE_PULL_REQUEST_REPO", "https://github.com/mallory/app.git"),
			NodeScope{Pipeline: "slug:org/app", Checkout: "/var/lib/buildkite-agent/builds/host-1/org/app", Fork: "github.com/mallory/app"}, true},
		{"checkout path as the agent's bootstrap makes it", with("BUILDKITE_BUILD_CHECKOUT_PATH", "",
			"BUILDKITE_BUILD_PATH", "/var/lib/buildkite-agent/builds", "BUILDKITE_AGENT_NAME", "ip-10-0-1-2.ec2_internal-3"),
			NodeScope{Pipeline: "slug:org/app", Checkout: "/var/lib/buildkite-agent/builds/ip-10-0-1-2-ec2-internal-3/org/app"}, true},
		{"no checkout path", with("BUILDKITE_BUILD_CHECKOUT_PATH", ""), NodeScope{Pipeline: "slug:org/app"}, true},
		{"no pipeline", map[string]string{"BUILDKITE_BUILD_CHECKOUT_PATH": "/b"}, NodeScope{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fork := ""
			if tc.env["BUILDKITE_PULL_REQUEST_REPO"] != "" {
				fork = tc.want.Fork
			}
			got, ok := NodeScopeFromEnv(func(k string) string { return tc.env[k] }, fork)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %+v %v, want %+v %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestNodeIDSeparatesScopes(t *testing.T) {
	key := bytes.Repeat([]byte{7}, nodeKeyLen)
	a := NodeScope{Pipeline: "slug:org/a", Checkout: "/b/host-1/org/a"}
	scopes := map[string]NodeScope{
		"a":                 a,
		"other pipeline":    {Pipeline: "slug:org/b", Checkout: a.Checkout},
		"other checkout":    {Pipeline: a.Pipeline, Checkout: "/b/host-2/org/a"},
		"fork":              {Pipeline: a.Pipeline, Checkout: a.Checkout, Fork: "github.com/x/a"},
		"fields shifted":    {Pipeline: a.Pipeline + "/b/host-1/org/a", Checkout: ""},
		"no checkout":       {Pipeline: a.Pipeline},
		"other org":         {Pipeline: "slug:org2/a", Checkout: a.Checkout},
		"pipeline id":       {Pipeline: "id:a", Checkout: a.Checkout},
		"checkout in fork":  {Pipeline: a.Pipeline, Fork: a.Checkout},
		"empty everything":  {},
		"pipeline is empty": {Checkout: a.Checkout},
	}
	seen := map[string]string{}
	for name, s := range scopes {
		id := NodeID(key, s)
		if len(id) != 32 {
			t.Errorf("%s: id %q is not 32 hex digits", name, id)
		}
		if prev, dup := seen[id]; dup {
			t.Errorf("%s and %s share the node id %s", name, prev, id)
		}
		seen[id] = name
	}
	if first := NodeID(key, a); NodeID(key, a) != first {
		t.Error("the same scope and key gave two ids")
	}
	if NodeID(bytes.Repeat([]byte{8}, nodeKeyLen), a) == NodeID(key, a) {
		t.Error("another host's key gave the same id")
	}
}

func TestHostNodeKeyOneKeyPerHost(t *testing.T) {
	state := t.TempDir()
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = HostNodeKey(t.Context(), state)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("concurrent first jobs got different keys: %x and %x", keys[0], keys[i])
		}
	}
	path := filepath.Join(state, NodeKeyDir, "key")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %o, want 600", fi.Mode().Perm())
	}
	again, err := HostNodeKey(t.Context(), state)
	if err != nil || !bytes.Equal(again, keys[0]) {
		t.Errorf("a later job got %x (%v), want the same key", again, err)
	}
	// A damaged key is replaced, not fatal.
	os.WriteFile(path, []byte("short\n"), 0o600)
	fresh, err := HostNodeKey(t.Context(), state)
	if err != nil || len(fresh) != nodeKeyLen || bytes.Equal(fresh, keys[0]) {
		t.Errorf("damaged key: got %x, %v", fresh, err)
	}
}

func TestSeedNodeID(t *testing.T) {
	dir := t.TempDir()
	if err := SeedNodeID(dir, "0123456789abcdef0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".buildNodeID"))
	if err != nil || string(b) != "0123456789abcdef0123456789abcdef" {
		t.Errorf("got %q, %v", b, err)
	}
}
