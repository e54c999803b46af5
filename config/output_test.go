package config

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

const outputFile = `builders = ["remote"]
probe_timeout = "2s"
[remote]
endpoints = ["tcp://a:1234"]
[[remote.platform]]
platform = "linux/arm64"
endpoints = ["tcp://arm:1234"]
[queue.build.cache]
mode = "off"
`

func outputConfig(t *testing.T) *Config {
	t.Helper()
	c, warnings, err := Load(Options{
		Env:      FromSlice([]string{"BUILDKITE_AGENT_META_DATA_QUEUE=build", "DOCKHAND_DEBUG=true"}),
		ReadFile: files(map[string]string{DefaultPath: outputFile}),
	})
	if err != nil || len(warnings) > 0 {
		t.Fatalf("Load: %v %q", err, warnings)
	}
	return c
}

func TestEntries(t *testing.T) {
	c := outputConfig(t)
	entries := c.Entries()
	if len(entries) != len(schema()) {
		t.Fatalf("%d entries, want %d", len(entries), len(schema()))
	}
	if !slices.IsSortedFunc(entries, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) }) {
		t.Error("entries are not sorted")
	}
	for _, e := range entries {
		if e.Key == "cache.mode" && (e.Value != "off" || e.Source.String() != DefaultPath+":9 [queue.build]") {
			t.Errorf("cache.mode entry = %+v", e)
		}
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := outputConfig(t).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if lines[0] != "# configuration file: "+DefaultPath || lines[1] != "# queue: build" {
		t.Errorf("header = %q", lines[:2])
	}
	table := lines[2:]
	if len(table) != len(schema()) {
		t.Fatalf("%d lines, want %d:\n%s", len(table), len(schema()), b.String())
	}
	eq, hash := strings.Index(table[0], "= "), strings.Index(table[0], "  # ")
	for _, want := range []string{
		`builders                 = ["remote"]`,
		`cache.mode               = "off"`,
		`debug                    = true`,
		`probe_timeout            = "2s"`,
		`remote.platform          = [{platform = "linux/arm64", endpoints = ["tcp://arm:1234"]}]`,
		`cache.local.max_size     = 20000000000`,
	} {
		found := false
		for _, l := range table {
			if strings.HasPrefix(l, want+" ") {
				found = true
			}
		}
		if !found {
			t.Errorf("no line starting %q in\n%s", want, b.String())
		}
	}
	for _, l := range table {
		if strings.Index(l, "= ") != eq || strings.Index(l, "  # ") != hash {
			t.Errorf("line not aligned: %q", l)
		}
	}
	for key, src := range map[string]string{"builders": DefaultPath + ":1", "cache.mode": DefaultPath + ":9 [queue.build]", "debug": "env DOCKHAND_DEBUG", "shell": "default"} {
		found := false
		for _, l := range table {
			if strings.HasPrefix(l, key+" ") && strings.HasSuffix(l, "# "+src) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line for %s from %s", key, src)
		}
	}

	// The table is valid TOML that reads back to the same values.
	c2, err := Parse("/printed.toml", []byte(strings.Join(table, "\n")), "")
	if err != nil {
		t.Fatalf("printed config does not parse: %v", err)
	}
	for _, e := range outputConfig(t).Entries() {
		f, _ := fieldByKey(e.Key)
		if got, want := formatValue(f.get(c2)), formatValue(e.Value); got != want {
			t.Errorf("%s read back as %s, want %s", e.Key, got, want)
		}
	}

	b.Reset()
	if err := Default("").WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "# configuration file: none (built-in defaults)\n# queue: none\n") {
		t.Errorf("defaults header: %q", b.String()[:80])
	}
}

func TestMarshalJSON(t *testing.T) {
	data, err := json.Marshal(outputConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Path     string
		Queue    string
		Settings []struct {
			Key    string
			Value  any
			Source string
		}
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Path != DefaultPath || got.Queue != "build" || len(got.Settings) != len(schema()) {
		t.Fatalf("got %s", data)
	}
	want := map[string]string{
		"builders":             `{"key":"builders","value":["remote"],"source":"` + DefaultPath + `:1"}`,
		"probe_timeout":        `{"key":"probe_timeout","value":"2s","source":"` + DefaultPath + `:2"}`,
		"cache.mode":           `{"key":"cache.mode","value":"off","source":"` + DefaultPath + `:9 [queue.build]"}`,
		"debug":                `{"key":"debug","value":true,"source":"env DOCKHAND_DEBUG"}`,
		"cache.local.max_size": `{"key":"cache.local.max_size","value":20000000000,"source":"default"}`,
		"cache.max_age_days":   `{"key":"cache.max_age_days","value":14,"source":"default"}`,
		"packages.registries":  `{"key":"packages.registries","value":[],"source":"default"}`,
		"remote.platform":      `{"key":"remote.platform","value":[{"platform":"linux/arm64","endpoints":["tcp://arm:1234"]}],"source":"` + DefaultPath + `:5"}`,
	}
	for key, w := range want {
		if !strings.Contains(string(data), w) {
			t.Errorf("no %s setting %s in\n%s", key, w, data)
		}
	}
	if !strings.HasPrefix(string(data), `{"path":"`+DefaultPath+`","queue":"build","settings":[{"key":"annotate"`) {
		t.Errorf("JSON starts %.80s", data)
	}
}

func TestSensitive(t *testing.T) {
	for key, want := range map[string]bool{
		"namespace.api_token": true, "cache.s3.secret_key": true, "registry.Password": true,
		"remote.key": false, "cache.s3.bucket": false, "token_dir.path": false,
	} {
		if got := sensitive(key); got != want {
			t.Errorf("sensitive(%q) = %v", key, got)
		}
	}
}
