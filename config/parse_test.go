package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const testPath = "/etc/dockhand/dockhand.toml"

// value renders c's value for key the way WriteText does.
func value(t *testing.T, c *Config, key string) string {
	t.Helper()
	f, ok := fieldByKey(key)
	if !ok {
		t.Fatalf("no key %q in the schema", key)
	}
	return formatValue(f.get(c))
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		queue  string
		values map[string]string // key -> TOML value
		source map[string]string // key -> Source.String()
	}{
		{
			name:  "empty file is the defaults",
			data:  "# nothing here\n",
			queue: "build",
			values: map[string]string{
				"state_dir":            `"/var/lib/dockhand"`,
				"shell":                `"/bin/bash"`,
				"builders":             `["namespace", "remote", "local"]`,
				"probe_timeout":        `"1.5s"`,
				"strict":               "false",
				"debug":                "false",
				"namespace.auth":       `"oidc"`,
				"cache.mode":           `"auto"`,
				"cache.backend":        `"registry"`,
				"cache.max_age_days":   "14",
				"cache.s3.prefix":      `"buildkit/"`,
				"cache.local.dir":      `"/var/lib/dockhand/cache"`,
				"cache.local.max_size": "20000000000",
				"remote.endpoints":     "[]",
				"remote.platform":      "[]",
				"packages.registries":  "[]",
			},
			source: map[string]string{"state_dir": "default", "cache.mode": "default", "remote.platform": "default"},
		},
		{
			name: "top-level values",
			data: `state_dir = "/srv/dockhand"
shell = "/usr/bin/zsh"
builders = ["remote", "local"]
probe_timeout = "250ms"
strict = true
debug = true

[remote]
endpoints = [
  "tcp://buildkit-1.internal:1234",
  "unix:///run/buildkit/buildkitd.sock",
]
ca = "/etc/dockhand/ca.pem"
cert = "/etc/dockhand/cert.pem"
key = "/etc/dockhand/key.pem"
server_name = "buildkit.internal"

[namespace]
auth = "cognito"
tenant_id = "tenant-1"
aws_region = "us-east-1"
identity_pool = "us-east-1:abc"

[cache]
mode = "always"
backend = "s3"
repository = "123.dkr.ecr.us-east-1.amazonaws.com/cache"
max_age_days = 1_000

[cache.s3]
bucket = "my-cache"
region = "us-east-1"
prefix = "bk/"
endpoint_url = "http://127.0.0.1:9000"

[cache.local]
dir = "/mnt/cache"
max_size = "512MiB"

[packages]
registries = ["acme/images", "acme/base"]
`,
			values: map[string]string{
				"state_dir":             `"/srv/dockhand"`,
				"shell":                 `"/usr/bin/zsh"`,
				"builders":              `["remote", "local"]`,
				"probe_timeout":         `"250ms"`,
				"strict":                "true",
				"debug":                 "true",
				"remote.endpoints":      `["tcp://buildkit-1.internal:1234", "unix:///run/buildkit/buildkitd.sock"]`,
				"remote.ca":             `"/etc/dockhand/ca.pem"`,
				"remote.server_name":    `"buildkit.internal"`,
				"namespace.auth":        `"cognito"`,
				"namespace.tenant_id":   `"tenant-1"`,
				"cache.mode":            `"always"`,
				"cache.backend":         `"s3"`,
				"cache.max_age_days":    "1000",
				"cache.s3.endpoint_url": `"http://127.0.0.1:9000"`,
				"cache.local.max_size":  "536870912",
				"packages.registries":   `["acme/images", "acme/base"]`,
			},
			source: map[string]string{
				"state_dir":            testPath + ":1",
				"debug":                testPath + ":6",
				"remote.endpoints":     testPath + ":9",
				"remote.server_name":   testPath + ":16",
				"cache.max_age_days":   testPath + ":28",
				"cache.local.max_size": testPath + ":38",
				"cache.s3.region":      testPath + ":32",
				"shell":                testPath + ":2",
				"namespace.auth":       testPath + ":19",
				"cache.repository":     testPath + ":27",
				"remote.platform":      "default",
			},
		},
		{
			name: "queue section wins for its queue",
			data: `strict = false
[cache]
mode = "auto"

[queue.build]
strict = true
cache.mode = "off"

[queue.deploy]
debug = true
`,
			queue:  "build",
			values: map[string]string{"strict": "true", "cache.mode": `"off"`, "debug": "false"},
			source: map[string]string{
				"strict":     testPath + ":6 [queue.build]",
				"cache.mode": testPath + ":7 [queue.build]",
				"debug":      "default",
			},
		},
		{
			name: "queue section of another queue does not apply",
			data: `strict = false
[queue.build]
strict = true
`,
			queue:  "deploy",
			values: map[string]string{"strict": "false"},
			source: map[string]string{"strict": testPath + ":1"},
		},
		{
			name: "no queue: no section applies",
			data: `[queue.build]
strict = true
`,
			values: map[string]string{"strict": "false"},
			source: map[string]string{"strict": "default"},
		},
		{
			name: "quoted queue names and nested tables in queue sections",
			data: `[queue."gpu.large"]
builders = ["remote"]
[queue."gpu.large".remote]
endpoints = ["tcp://gpu:1234"]
[queue."gpu.large".cache.s3]
bucket = "gpu-cache"
`,
			queue:  "gpu.large",
			values: map[string]string{"builders": `["remote"]`, "remote.endpoints": `["tcp://gpu:1234"]`, "cache.s3.bucket": `"gpu-cache"`},
			source: map[string]string{
				"builders":         testPath + `:2 [queue."gpu.large"]`,
				"remote.endpoints": testPath + `:4 [queue."gpu.large"]`,
				"cache.s3.bucket":  testPath + `:6 [queue."gpu.large"]`,
			},
		},
		{
			name: "inline tables and dotted keys",
			data: `cache = { mode = "off", s3 = { bucket = "b", prefix = "" } }
remote.endpoints = ["tcp://h:1"]
queue = { build = { debug = true } }
`,
			queue:  "build",
			values: map[string]string{"cache.mode": `"off"`, "cache.s3.bucket": `"b"`, "cache.s3.prefix": `""`, "remote.endpoints": `["tcp://h:1"]`, "debug": "true"},
			source: map[string]string{"cache.s3.prefix": testPath + ":1", "remote.endpoints": testPath + ":2", "debug": testPath + ":3 [queue.build]"},
		},
		{
			name: "queue container table",
			data: `[queue]
build.debug = true
build.cache.mode = "off"
`,
			queue:  "build",
			values: map[string]string{"debug": "true", "cache.mode": `"off"`},
			source: map[string]string{"debug": testPath + ":2 [queue.build]", "cache.mode": testPath + ":3 [queue.build]"},
		},
		{
			name: "platform nodes as an array of tables",
			data: `[remote]
endpoints = ["tcp://amd:1234"]

[[remote.platform]]
platform = "linux/arm64"
endpoints = ["tcp://arm-1:1234", "tcp://arm-2:1234"]

[[remote.platform]]
platform = "linux/arm/v7"
endpoints = ["tcp://armv7:1234"]

[[queue.build.remote.platform]]
platform = "linux/riscv64"
endpoints = ["unix:///run/riscv.sock"]
`,
			queue: "",
			values: map[string]string{
				"remote.platform": `[{platform = "linux/arm64", endpoints = ["tcp://arm-1:1234", "tcp://arm-2:1234"]}, {platform = "linux/arm/v7", endpoints = ["tcp://armv7:1234"]}]`,
			},
			source: map[string]string{"remote.platform": testPath + ":4"},
		},
		{
			name: "platform nodes in a queue section replace the top-level ones",
			data: `[[remote.platform]]
platform = "linux/arm64"
endpoints = ["tcp://arm-1:1234"]

[[queue.build.remote.platform]]
platform = "linux/riscv64"
endpoints = ["unix:///run/riscv.sock"]
`,
			queue:  "build",
			values: map[string]string{"remote.platform": `[{platform = "linux/riscv64", endpoints = ["unix:///run/riscv.sock"]}]`},
			source: map[string]string{"remote.platform": testPath + ":5 [queue.build]"},
		},
		{
			name: "platform nodes as an inline array",
			data: `[remote]
platform = [
  { platform = "linux/arm64", endpoints = ["tcp://arm:1"] },
]
`,
			values: map[string]string{"remote.platform": `[{platform = "linux/arm64", endpoints = ["tcp://arm:1"]}]`},
			source: map[string]string{"remote.platform": testPath + ":2"},
		},
		{
			name:   "sizes",
			data:   "[cache.local]\nmax_size = 1024\n",
			values: map[string]string{"cache.local.max_size": "1024"},
		},
		{
			name:   "fractional size",
			data:   "cache.local.max_size = \"1.5GB\"\n",
			values: map[string]string{"cache.local.max_size": "1500000000"},
		},
		{
			name:   "embedded builder and cert pair",
			data:   "builders = [\"embedded\"]\nremote.cert = \"/c\"\nremote.key = \"/k\"\n",
			values: map[string]string{"builders": `["embedded"]`},
		},
		{
			name:   "s3 backend without a bucket is fine when cache is off",
			data:   "cache.backend = \"s3\"\ncache.mode = \"off\"\n",
			values: map[string]string{"cache.backend": `"s3"`},
		},
		{
			name:   "CRLF line endings",
			data:   "strict = true\r\n\r\ndebug = true\r\n",
			values: map[string]string{"debug": "true"},
			source: map[string]string{"debug": testPath + ":3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(tt.data), tt.queue)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Path != testPath || c.Queue != tt.queue {
				t.Errorf("Path, Queue = %q, %q", c.Path, c.Queue)
			}
			for key, want := range tt.values {
				if got := value(t, c, key); got != want {
					t.Errorf("%s = %s, want %s", key, got, want)
				}
			}
			for key, want := range tt.source {
				if got := c.Sources[key].String(); got != want {
					t.Errorf("source of %s = %q, want %q", key, got, want)
				}
			}
			for _, f := range schema() {
				if _, ok := c.Sources[f.key]; !ok {
					t.Errorf("no source for %s", f.key)
				}
			}
			if err := c.validate(); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
	}
}

func TestParseTypedValues(t *testing.T) {
	c, err := Parse(testPath, []byte("probe_timeout = \"2s\"\ncache.local.max_size = \"20GiB\"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.ProbeTimeout != 2*time.Second {
		t.Errorf("ProbeTimeout = %v", c.ProbeTimeout)
	}
	if c.Cache.Local.MaxSize != 20<<30 {
		t.Errorf("MaxSize = %d", c.Cache.Local.MaxSize)
	}
	if c.Sources["probe_timeout"] != (Source{Kind: SourceFile, File: testPath, Line: 1}) {
		t.Errorf("Sources[probe_timeout] = %#v", c.Sources["probe_timeout"])
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		queue string
		want  []string // each must be one line of the error, in order
	}{
		{
			name: "unknown key on line 7",
			data: `# dockhand
state_dir = "/srv/dockhand"

[cache]
mode = "auto"
repository = "r"
mod = "always"
`,
			want: []string{testPath + `:7: unknown key "cache.mod" (did you mean "cache.mode"?)`},
		},
		{
			name: "unknown key in a queue section",
			data: `[queue.build]
strict = true
bulders = ["local"]
`,
			queue: "other",
			want:  []string{testPath + `:3: unknown key "queue.build.bulders" (did you mean "queue.build.builders"?)`},
		},
		{
			name: "unknown key in the wrong table",
			data: "[cache]\nbucket = \"b\"\n",
			want: []string{testPath + `:2: unknown key "cache.bucket" (did you mean "cache.s3.bucket"?)`},
		},
		{
			name: "unknown top-level key without a suggestion",
			data: "\n\nfrobnicate = 1\n",
			want: []string{testPath + `:3: unknown key "frobnicate"`},
		},
		{
			name: "unknown table",
			data: "[cahce]\nmode = \"auto\"\n",
			want: []string{testPath + `:1: unknown key "cahce" (did you mean "cache"?)`},
		},
		{
			name: "quoted key with a dot is not a dotted key",
			data: "\"cache.mode\" = \"off\"\n",
			want: []string{testPath + `:1: unknown key "\"cache.mode\""`},
		},
		{
			name: "duration given as an integer",
			data: "strict = true\nprobe_timeout = 5\n",
			want: []string{testPath + `:2: probe_timeout: expected a duration string such as "1500ms", got integer 5`},
		},
		{
			name: "string given as a boolean",
			data: "debug = \"yes\"\n",
			want: []string{testPath + `:1: debug: expected true or false, got string "yes"`},
		},
		{
			name: "array given as a string",
			data: "builders = \"remote\"\n",
			want: []string{testPath + `:1: builders: expected an array of strings, got string "remote"`},
		},
		{
			name: "array of the wrong element type",
			data: "[remote]\nendpoints = [\"tcp://a:1\", 2]\n",
			want: []string{testPath + `:2: remote.endpoints: element 1: expected a string, got integer 2`},
		},
		{
			name: "date instead of a string",
			data: "state_dir = 1979-05-27\n",
			want: []string{testPath + `:1: state_dir: expected a string, got date/time 1979-05-27`},
		},
		{
			name: "float instead of an integer",
			data: "[cache]\nmax_age_days = 1.5\n",
			want: []string{testPath + `:2: cache.max_age_days: expected an integer, got float 1.5`},
		},
		{
			name: "bad enum",
			data: "[cache]\nmode = \"sometimes\"\n",
			want: []string{testPath + `:2: cache.mode: "sometimes" is not one of auto, always, off`},
		},
		{
			name: "bad backend and auth",
			data: "cache.backend = \"gcs\"\nnamespace.auth = \"saml\"\n",
			want: []string{
				testPath + `:1: cache.backend: "gcs" is not one of registry, s3, local`,
				testPath + `:2: namespace.auth: "saml" is not one of oidc, cognito`,
			},
		},
		{
			name: "bad duration",
			data: "probe_timeout = \"5 parsecs\"\n",
			want: []string{testPath + `:1: probe_timeout: "5 parsecs" is not a duration (want Go syntax such as "1500ms" or "2s")`},
		},
		{
			name: "duration out of range",
			data: "probe_timeout = \"90s\"\n[queue.a]\nprobe_timeout = \"0s\"\n",
			want: []string{
				testPath + `:1: probe_timeout: 1m30s is out of range (more than 0, at most 1m0s)`,
				testPath + `:3: queue.a.probe_timeout: 0s is out of range (more than 0, at most 1m0s)`,
			},
		},
		{
			name: "max_age_days out of range",
			data: "[cache]\nmax_age_days = 0\n",
			want: []string{testPath + `:2: cache.max_age_days: 0 is out of range (1 to 3650)`},
		},
		{
			name: "balance_factor below the mean",
			data: "[remote]\nbalance_factor = 90\n",
			want: []string{testPath + `:2: remote.balance_factor: 90 is out of range (0 for pipeline affinity only, or 100 to 1000 percent of the mean load)`},
		},
		{
			name: "duplicate key",
			data: "strict = true\ndebug = false\nstrict = false\n",
			want: []string{testPath + `:3: duplicate key "strict" (first defined on line 1)`},
		},
		{
			name: "duplicate key via dotted and table forms",
			data: "cache.mode = \"off\"\n[cache]\nmode = \"auto\"\n",
			want: []string{testPath + `:2: duplicate table [cache]: already defined by dotted keys on line 1`},
		},
		{
			name: "duplicate table",
			data: "[cache]\nmode = \"off\"\n[remote]\n[cache]\nbackend = \"s3\"\n",
			want: []string{testPath + `:4: duplicate table [cache] (first defined on line 1)`},
		},
		{
			name: "duplicate key in an inline table",
			data: "cache = { mode = \"off\", mode = \"auto\" }\n",
			want: []string{testPath + `:1: duplicate key "cache.mode" (first defined on line 1)`},
		},
		{
			name: "table after an inline table",
			data: "cache = { mode = \"off\" }\n[cache.s3]\nbucket = \"b\"\n",
			want: []string{testPath + `:2: "cache" is already set on line 1; it cannot also be a table`},
		},
		{
			name: "syntax error names the line",
			data: "strict = true\n[cache]\nmode = \"auto\nbackend = \"s3\"\n",
			want: []string{testPath + `:3:13: syntax error: basic strings cannot have new lines`},
		},
		{
			name: "syntax error after other errors",
			data: "strict = 1\nbuilders = [\"local\",,]\n",
			want: []string{
				testPath + `:1: strict: expected true or false, got integer 1`,
				testPath + `:2:21: syntax error: expected value but got U+002C ','`,
			},
		},
		{
			name: "nested queue section",
			data: "[queue.x.y]\nz = 1\n",
			want: []string{testPath + `:1: unknown key "queue.x.y"`},
		},
		{
			name: "queue inside a queue section",
			data: "[queue.x.queue.y]\nstrict = true\n",
			want: []string{testPath + `:1: unknown key "queue.x.queue.y" (queue sections cannot be nested)`},
		},
		{
			name: "queue is not a value",
			data: "queue = \"build\"\n",
			want: []string{testPath + `:1: queue must be a table of [queue.NAME] sections`},
		},
		{
			name: "queue section is not a value",
			data: "queue.build = true\n",
			want: []string{testPath + `:1: queue.build must be a table`},
		},
		{
			name: "empty queue name",
			data: "[queue.\"\"]\nstrict = true\n",
			want: []string{testPath + `:1: queue name is empty`},
		},
		{
			name: "empty queue name in a dotted key",
			data: "queue.\"\".strict = true\n[[queue.\"\".remote.platform]]\n",
			want: []string{
				testPath + `:1: queue name is empty`,
				testPath + `:2: queue name is empty`,
			},
		},
		{
			name: "empty queue name in an inline table",
			data: "queue = { \"\" = { debug = true } }\n",
			want: []string{testPath + `:1: queue name is empty`},
		},
		{
			name: "quoted table name with a dot",
			data: "[\"cache.s3\"]\nbucket = \"b\"\n[[queue.b.\"remote.platform\"]]\n",
			want: []string{
				testPath + `:1: unknown key "\"cache.s3\""`,
				testPath + `:3: unknown key "queue.b.\"remote.platform\""`,
			},
		},
		{
			name: "value used as a table",
			data: "[strict]\nx = 1\n",
			want: []string{testPath + `:1: strict is a value, not a table`},
		},
		{
			name: "table used as a value",
			data: "cache = \"registry\"\n",
			want: []string{testPath + `:1: cache must be a table, got string "registry"`},
		},
		{
			name: "table used as an array of tables",
			data: "[[cache]]\nmode = \"off\"\n",
			want: []string{testPath + `:1: cache is a table, not an array of tables: write [cache]`},
		},
		{
			name: "array of tables used as a table",
			data: "[remote.platform]\nplatform = \"linux/arm64\"\n",
			want: []string{testPath + `:1: remote.platform is an array of tables: write [[remote.platform]]`},
		},
		{
			name: "unknown builder kind",
			data: "builders = [\"remote\", \"docker\"]\n",
			want: []string{testPath + `:1: builders: unknown builder kind "docker" (want namespace, remote, local, embedded)`},
		},
		{
			name: "duplicate builder kind",
			data: "builders = [\"remote\", \"remote\"]\n",
			want: []string{testPath + `:1: builders: builder kind "remote" is listed twice`},
		},
		{
			name: "no builder kinds",
			data: "builders = []\n",
			want: []string{testPath + `:1: builders: must list at least one builder kind`},
		},
		{
			name: "bad endpoint scheme",
			data: "[remote]\nendpoints = [\"tcp://a:1\", \"http://b:1234\"]\n",
			want: []string{testPath + `:2: remote.endpoints: endpoint "http://b:1234": unsupported scheme "http" (want tcp://, unix://, or dns://, srv://, ec2:// to discover a fleet)`},
		},
		{
			name: "bad discovery endpoints",
			data: "[remote]\nendpoints = [\"dns://pool.internal\"]\ndiscovery_ttl = \"1h\"\ndns_server = \"10.0.0.2\"\n[[remote.platform]]\nplatform = \"linux/arm64\"\nendpoints = [\"ec2://us-east-1?port=1234\"]\n",
			want: []string{
				testPath + `:2: remote.endpoints: endpoint "dns://pool.internal" is not dns://NAME:PORT`,
				testPath + `:3: remote.discovery_ttl: 1h0m0s is out of range (0 to 5m0s; 0 asks the source on every job)`,
				testPath + `:4: remote.dns_server: "10.0.0.2" is not HOST:PORT`,
				testPath + `:5: remote.platform[0]: endpoint "ec2://us-east-1?port=1234" has no tag:KEY=VALUE filter (every instance of the account would be a builder)`,
			},
		},
		{
			name: "endpoint without a port",
			data: "remote.endpoints = [\"tcp://b\"]\n",
			want: []string{testPath + `:1: remote.endpoints: endpoint "tcp://b" is not tcp://host:port or unix:///path`},
		},
		{
			name: "relative unix endpoint",
			data: "remote.endpoints = [\"unix://run/b.sock\"]\n",
			want: []string{testPath + `:1: remote.endpoints: endpoint "unix://run/b.sock" is not tcp://host:port or unix:///path`},
		},
		{
			name: "relative paths",
			data: "state_dir = \"var/lib\"\n[cache.local]\ndir = \"\"\n",
			want: []string{
				testPath + `:1: state_dir: "var/lib" is not an absolute path`,
				testPath + `:3: cache.local.dir: "" is not an absolute path`,
			},
		},
		{
			name: "bad sizes",
			data: "cache.local.max_size = \"20 bananas\"\n[queue.q.cache.local]\nmax_size = 0\n",
			want: []string{
				testPath + `:1: cache.local.max_size: "20 bananas" is not a size (want bytes, or a number with a unit such as "20GB" or "512MiB")`,
				testPath + `:3: queue.q.cache.local.max_size: 0 must be more than zero`,
			},
		},
		{
			name: "bad S3 endpoint URL",
			data: "[cache.s3]\nendpoint_url = \"ftp://s3.local\"\n",
			want: []string{testPath + `:2: cache.s3.endpoint_url: "ftp://s3.local" is not an http:// or https:// URL`},
		},
		{
			name: "bad package registry",
			data: "[packages]\nregistries = [\"acme\"]\n",
			want: []string{testPath + `:2: packages.registries: registry "acme" is not ORG/REGISTRY`},
		},
		{
			name: "platform entries",
			data: `[[remote.platform]]
platform = "linux"
endpoints = ["tcp://a:1"]

[[remote.platform]]
platform = "linux/arm64"

[[remote.platform]]
platform = "linux/amd64"
endpoints = ["tcp://a:1"]
nodes = 3

[[remote.platform]]
platform = "linux/s390x"
endpoints = ["tcp://s:1"]
platform = "linux/ppc64le"
`,
			want: []string{
				testPath + `:1: remote.platform[0]: platform "linux" is not OS/ARCH or OS/ARCH/VARIANT`,
				testPath + `:5: remote.platform[1]: platform "linux/arm64" has no endpoints`,
				testPath + `:11: unknown key "remote.platform[2].nodes" (a platform entry has platform and endpoints)`,
				testPath + `:16: duplicate key "remote.platform[3].platform" (first defined on line 14)`,
			},
		},
		{
			name: "duplicate platform",
			data: "[[remote.platform]]\nplatform = \"linux/arm64\"\nendpoints = [\"tcp://a:1\"]\n[[remote.platform]]\nplatform = \"linux/arm64\"\nendpoints = [\"tcp://b:1\"]\n",
			want: []string{testPath + `:4: remote.platform[1]: platform "linux/arm64" is already listed at [0]`},
		},
		{
			name: "platform array with a bad element",
			data: "remote.platform = [\"linux/arm64\"]\n",
			want: []string{testPath + `:1: remote.platform[0]: expected a table, got string "linux/arm64"`},
		},
		{
			name: "platform array and array of tables",
			data: "remote.platform = []\n[[remote.platform]]\nplatform = \"linux/arm64\"\nendpoints = [\"tcp://b:1\"]\n",
			want: []string{testPath + `:2: duplicate key "remote.platform" (first defined on line 1)`},
		},
		{
			name:  "other queue sections are checked too",
			data:  "[queue.build]\nstrict = true\n[queue.other]\ncache.mode = \"never\"\n",
			queue: "build",
			want:  []string{testPath + `:4: queue.other.cache.mode: "never" is not one of auto, always, off`},
		},
		{
			name: "certificate without a key",
			data: "[remote]\nendpoints = [\"tcp://a:1\"]\ncert = \"/c.pem\"\n",
			want: []string{testPath + `:3: remote.cert: is set but remote.key is not`},
		},
		{
			name:  "key without a certificate, in the queue section",
			data:  "[queue.build.remote]\nkey = \"/k.pem\"\n",
			queue: "build",
			want:  []string{testPath + `:2: queue.build.remote.key: is set but remote.cert is not`},
		},
		{
			name: "untrusted pool without nodes",
			data: "[untrusted]\nbuilder = \"remote\"\n",
			want: []string{testPath + `:2: untrusted.builder: is "remote" but untrusted.endpoints is empty`},
		},
		{
			name: "untrusted nodes without the remote builder",
			data: "[untrusted]\nendpoints = [\"tcp://u:1\"]\n",
			want: []string{testPath + `:2: untrusted.endpoints: is set but untrusted.builder is "none", not "remote"`},
		},
		{
			name: "untrusted pool sharing a trusted node",
			data: "[remote]\nendpoints = [\"tcp://a:1\"]\n[untrusted]\nbuilder = \"remote\"\nendpoints = [\"tcp://u:1\", \"tcp://a:1\"]\n",
			want: []string{testPath + `:5: untrusted.endpoints: "tcp://a:1" is also a trusted node ([remote]): forks' builds would share its cache mounts`},
		},
		{
			name: "untrusted on the embedded builder trusted builds use",
			data: "builders = [\"embedded\"]\n[untrusted]\nbuilder = \"embedded\"\n",
			want: []string{testPath + `:3: untrusted.builder: is "embedded" but builders lists "embedded" too: forks' builds would share trusted builds' cache mounts; give them a pool (untrusted.endpoints) or "none"`},
		},
		{
			name: "s3 backend without a bucket",
			data: "[cache]\nbackend = \"s3\"\n",
			want: []string{testPath + `:2: cache.backend: is "s3" but cache.s3.bucket is not set`},
		},
		{
			name: "all errors, sorted by line",
			data: `[[remote.platform]]
platform = "bad"
endpoints = ["tcp://a:1"]
[cache]
mode = "x"
[queue.q]
debug = 1
`,
			want: []string{
				testPath + `:1: remote.platform[0]: platform "bad" is not OS/ARCH or OS/ARCH/VARIANT`,
				testPath + `:5: cache.mode: "x" is not one of auto, always, off`,
				testPath + `:7: queue.q.debug: expected true or false, got integer 1`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(tt.data), tt.queue)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with its error")
			}
			got := strings.Split(err.Error(), "\n")
			if !slices.Equal(got, tt.want) {
				t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
			var e *Error
			if !errors.As(err, &e) || e.File != testPath || e.Line == 0 {
				t.Errorf("error is not an *Error with file and line: %#v", e)
			}
		})
	}
}

func TestErrorKey(t *testing.T) {
	_, err := Parse(testPath, []byte("[queue.build.cache]\nmode = \"x\"\n"), "build")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	want := Error{File: testPath, Line: 2, Key: "queue.build.cache.mode", Msg: `queue.build.cache.mode: "x" is not one of auto, always, off`}
	if *e != want {
		t.Errorf("got %#v\nwant %#v", *e, want)
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1024": 1024, "20GB": 20e9, "20gb": 20e9, "512MiB": 512 << 20, "1 KiB": 1024,
		"1.5GB": 1.5e9, "2TB": 2e12, "3TiB": 3 << 40, "7B": 7, "10kb": 10e3, "4MB": 4e6,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GB", "-1", "1e9", "1.2.3GB", "20 bananas", "99999999999TB", "9223372036854775808", "1e400GB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := schemaKeys()
	for in, want := range map[string]string{
		"cache.mod":      "cache.mode",
		"probe_timout":   "probe_timeout",
		"remote.endpont": "remote.endpoints",
		"s3.bucket":      "cache.s3.bucket",
		"zzz":            "",
		"cache.prefix":   "cache.s3.prefix",
	} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
