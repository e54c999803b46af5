package cachedimage

import (
	"fmt"
	"strings"
)

// Additional is what dockhand's BuildKit build takes from
// additional-build-args, a string of `docker build` flags that the plugin
// splits on whitespace and passes on.
type Additional struct {
	BuildArgs []string // NAME=value or NAME
	Secrets   []Secret
	SSH       []string // default, or ID=PATH[,PATH]
	Labels    []string // KEY=VALUE
	CacheFrom []string // a ref, or type=…,ref=… CSV
	Platforms []string
	AddHosts  []string // HOST:IP
	Network   string
	Target    string
	NoCache   bool
	Pull      bool
}

// additionalFlags maps the supported docker build flags to whether they take
// a value.
var additionalFlags = map[string]bool{
	"--build-arg": true, "--secret": true, "--ssh": true, "--label": true, "--cache-from": true,
	"--platform": true, "--add-host": true, "--network": true, "--target": true, "--progress": true,
	"--no-cache": false, "--pull": false, "--quiet": false, "-q": false,
}

// ParseAdditional reads additional-build-args. Flags with no BuildKit
// equivalent in dockhand's build are errors naming the flag.
func ParseAdditional(s string) (Additional, error) {
	var a Additional
	words := splitWords(s)
	for i := 0; i < len(words); i++ {
		w := words[i]
		name, value, hasValue := strings.Cut(w, "=")
		takes, known := additionalFlags[name]
		if !strings.HasPrefix(w, "-") {
			return a, fmt.Errorf("additional-build-args: unexpected %q (dockhand builds the context the options name)", w)
		}
		if !known {
			return a, fmt.Errorf("additional-build-args: %s is not supported by dockhand's BuildKit build "+
				"(supported: --build-arg, --secret, --ssh, --label, --cache-from, --platform, --add-host, --network, "+
				"--target, --no-cache, --pull, --progress, --quiet)", name)
		}
		if takes && !hasValue {
			if i+1 >= len(words) {
				return a, fmt.Errorf("additional-build-args: %s needs a value", name)
			}
			i++
			value = words[i]
		}
		if !takes && hasValue {
			return a, fmt.Errorf("additional-build-args: %s takes no value", name)
		}
		switch name {
		case "--build-arg":
			if n, _, _ := strings.Cut(value, "="); !isName(n) {
				return a, fmt.Errorf("additional-build-args: --build-arg %q: %q is not a variable name", value, n)
			}
			a.BuildArgs = append(a.BuildArgs, value)
		case "--secret":
			sec, err := parseSecret(value)
			if !strings.HasPrefix(value, "id=") {
				err = fmt.Errorf("want id=ID,src=FILE or id=ID,env=VAR")
			}
			if err != nil {
				return a, fmt.Errorf("additional-build-args: --secret %q: %w", value, err)
			}
			a.Secrets = append(a.Secrets, sec)
		case "--ssh":
			a.SSH = append(a.SSH, value)
		case "--label":
			a.Labels = append(a.Labels, value)
		case "--cache-from":
			a.CacheFrom = append(a.CacheFrom, value)
		case "--platform":
			a.Platforms = append(a.Platforms, strings.Split(value, ",")...)
		case "--add-host":
			a.AddHosts = append(a.AddHosts, value)
		case "--network":
			a.Network = value
		case "--target":
			a.Target = value
		case "--no-cache":
			a.NoCache = true
		case "--pull":
			a.Pull = true
		}
	}
	return a, nil
}
