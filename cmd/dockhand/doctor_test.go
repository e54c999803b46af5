package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDoctorNamesTheBadLineAndKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(path, []byte("# dockhand\nstate_dir = \"/var/lib/dockhand\"\nbuilders = [\"remote\", \"local\"]\n\n\n[cache]\nmod = \"auto\"\n"), 0o600)
	var out, errb bytes.Buffer
	code := run([]string{"dockhand", "doctor", "--config", path}, nil, stdio{in: strings.NewReader(""), out: &out, err: &errb})
	if code == 0 {
		t.Fatalf("doctor accepted an invalid file; stdout %q", out.String())
	}
	if !strings.Contains(errb.String(), path+":7:") || !strings.Contains(errb.String(), `"cache.mod"`) {
		t.Errorf("stderr = %q, want the file, line 7 and the key", errb.String())
	}
}

func TestDoctorJSONShowsSources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "good.toml")
	os.WriteFile(path, []byte("probe_timeout = \"2s\"\n[queue.build]\nbuilders = [\"remote\"]\n"), 0o600)
	var out, errb bytes.Buffer
	env := []string{"BUILDKITE_AGENT_META_DATA_QUEUE=build", "DOCKHAND_CACHE=off"}
	if code := run([]string{"dockhand", "doctor", "--config", path, "--json"}, env, stdio{in: strings.NewReader(""), out: &out, err: &errb}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got struct {
		Settings []struct {
			Key    string `json:"key"`
			Source string `json:"source"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"probe_timeout": path + ":1",
		"builders":      path + ":3 [queue.build]",
		"cache.mode":    "env DOCKHAND_CACHE",
		"shell":         "default",
	}
	for _, s := range got.Settings {
		if w, ok := want[s.Key]; ok && s.Source != w {
			t.Errorf("%s source = %q, want %q", s.Key, s.Source, w)
		}
		delete(want, s.Key)
	}
	if len(want) > 0 {
		t.Errorf("keys missing from the JSON: %v", want)
	}
}
