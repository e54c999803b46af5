package cachedimage

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAdditional(t *testing.T) {
	a, err := ParseAdditional("--build-arg A=1 --build-arg=B --secret id=npmrc,src=.npmrc --ssh default --label x=y " +
		"--cache-from ref/cache:main --platform linux/amd64,linux/arm64 --add-host db:10.0.0.2 --network host " +
		"--target test --no-cache --pull --progress=plain -q")
	if err != nil {
		t.Fatal(err)
	}
	want := Additional{
		BuildArgs: []string{"A=1", "B"}, Secrets: []Secret{{ID: "npmrc", Src: ".npmrc", Raw: "id=npmrc,src=.npmrc"}},
		SSH: []string{"default"}, Labels: []string{"x=y"}, CacheFrom: []string{"ref/cache:main"},
		Platforms: []string{"linux/amd64", "linux/arm64"}, AddHosts: []string{"db:10.0.0.2"}, Network: "host",
		Target: "test", NoCache: true, Pull: true,
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("got  %+v\nwant %+v", a, want)
	}
	for in, msg := range map[string]string{
		"--shm-size 2g":        "--shm-size is not supported",
		"--build-arg":          "--build-arg needs a value",
		"--no-cache=true":      "--no-cache takes no value",
		"context-dir":          `unexpected "context-dir"`,
		"--secret NPM":         "want id=ID,src=FILE or id=ID,env=VAR",
		"--build-arg 9X=1":     `"9X" is not a variable name`,
		"--ssh= default=$SOCK": `unexpected "default=$SOCK"`,
	} {
		if _, err := ParseAdditional(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseAdditional(%q) = %v, want an error saying %q", in, err, msg)
		}
	}
}
