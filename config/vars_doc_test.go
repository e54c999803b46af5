package config

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/variables.md from the Variables table")

func TestVariablesDoc(t *testing.T) {
	const path = "../docs/variables.md"
	want := VariablesMarkdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with env/vars.go: run go test ./config -run TestVariablesDoc -update", path)
	}
}
