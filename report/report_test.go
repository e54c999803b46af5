package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	stdhtml "html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/jobstate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

// fixedInputs: a pull request job on the embedded builder, two builds
// (the second mostly from the cache, pushed), one probe failure.
func fixedInputs() Inputs {
	id := cachekey.Identity{Pipeline: "app", Branch: "feature/login", DefaultBranch: "main", PullRequest: "12",
		Repo: "git@github.com:acme/app.git", PullRequestRepo: "https://github.com/acme/app"}
	cache := &jobstate.CacheSettings{Mode: "auto", Identity: id,
		Backend: cachekey.Backend{Kind: config.CacheRegistry, Repository: "registry.example:5000/cache"}}
	node := "unix:///var/lib/dockhand/buildkitd.sock"
	sel := &builder.Selection{
		Survey: builder.Survey{
			Targets: []cloud.ProbeTarget{{Kind: cloud.ProbeBuildkit, Endpoint: "tcp://user:secret@pool-1:1234"}, {Kind: cloud.ProbeBuildkit, Endpoint: node}},
			Probes:  builder.ProbeReport{Results: []cloud.ProbeResult{{Error: "connection refused"}, {OK: true}}},
			Options: []builder.Option{{Kind: "remote", State: builder.Down}, {Kind: "embedded", State: builder.Ready}},
		},
		Chosen: 1,
		Builder: &buildx.Builder{Kind: "embedded", Name: "dockhand-embedded", Driver: buildx.DriverRemote,
			Nodes: []buildx.Node{{Name: "embedded0", Endpoint: node}}},
		Took: 42 * time.Millisecond,
	}
	pr := "registry.example:5000/cache/app:0123456789ab-pr-12"
	branch := "registry.example:5000/cache/app:0123456789ab-feature-login-1a2b3c4d"
	main := "registry.example:5000/cache/app:0123456789ab-main"
	imports := []cloud.CacheEntry{{Type: "registry", Ref: pr}, {Type: "registry", Ref: branch}, {Type: "registry", Ref: main}}
	return Inputs{
		JobID: "0190-job", Queue: "build", Queues: []string{"build"}, Identity: id, Cache: cache, Selection: sel,
		Setup: 180 * time.Millisecond, ECRAPICalls: 1,
		JobBuilds: map[string]string{"r1": "", "r2": ""},
		History: cloud.HistoryResponse{Builds: 2, CachedSteps: 5, TotalSteps: 8, Records: []cloud.BuildRecord{
			{Node: node, Ref: "r1", Dockerfile: "Dockerfile", Created: t0, Completed: t0.Add(12300 * time.Millisecond),
				CachedSteps: 1, TotalSteps: 4, CacheImports: imports,
				CacheExports: []cloud.CacheExportStep{{Name: "exporting cache to registry"}},
				ContextBytes: 2345, CachedTime: 100 * time.Millisecond, ExecutedTime: 11 * time.Second},
			{Node: node, Ref: "r2", Target: "release", Images: []string{"ci:t0ken@registry.example:5000/app:1"}, Push: true,
				Digest:  "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				Created: t0.Add(13 * time.Second), Completed: t0.Add(15 * time.Second),
				CachedSteps: 4, TotalSteps: 4, CacheImports: imports,
				CacheExports: []cloud.CacheExportStep{{Name: "exporting cache to registry", Error: "unauthorized | denied"}},
				ContextBytes: 512, CachedTime: 300 * time.Millisecond, ExecutedTime: 900 * time.Millisecond},
			// Another job's build on the same builder.
			{Node: node, Ref: "other-job", Created: t0.Add(14 * time.Second), Completed: t0.Add(16 * time.Second), TotalSteps: 3},
		}},
	}
}

func TestNew(t *testing.T) {
	r := New(fixedInputs())
	if r.Version != Version || r.Job.PullRequest != "12" || r.Job.Fork || r.Builder.Kind != "embedded" || r.Builder.ChoiceMS != 42 {
		t.Errorf("job/builder: %+v %+v", r.Job, r.Builder)
	}
	if got := r.Builder.ProbeFailures; len(got) != 1 || got["tcp://pool-1:1234"] != "connection refused" {
		t.Errorf("probe failures %v, want the pool endpoint, redacted", got)
	}
	in := fixedInputs()
	in.Selection.Started = "started the embedded buildkitd"
	in.Selection.Probes.Results[1] = cloud.ProbeResult{Error: "no socket"}
	if got := New(in).Builder.ProbeFailures; len(got) != 1 {
		t.Errorf("probe failures %v: the embedded daemon the job started is not a failure", got)
	}
	if !slices.Equal(r.Builder.Fallbacks, []string{"remote"}) {
		t.Errorf("fallbacks %v, want [remote]", r.Builder.Fallbacks)
	}
	if len(r.Builds) != 2 {
		t.Fatalf("builds %d, want 2", len(r.Builds))
	}
	b1, b2 := r.Builds[0], r.Builds[1]
	if b1.Name != "Dockerfile" || b1.NodeName != "embedded0" || b1.DurationMS != 12300 || b1.ContextBytes != 2345 {
		t.Errorf("first build %+v", b1)
	}
	if b1.CacheWrite != WritePullRequest || !strings.HasSuffix(b1.CacheTo, ":0123456789ab-pr-12") {
		t.Errorf("first build's write %q to %q, want the pull request's own ref", b1.CacheWrite, b1.CacheTo)
	}
	if b2.Name != "registry.example:5000/app:1" || len(b2.Pushed) != 1 || b2.Pushed[0].Ref != "registry.example:5000/app:1" ||
		!strings.HasPrefix(b2.Pushed[0].Digest, "sha256:") {
		t.Errorf("second build: name %q pushed %+v (want the image, redacted, with its digest)", b2.Name, b2.Pushed)
	}
	if b2.CacheWrite != WriteFailed || b2.CacheTo != "" || b2.CacheWriteError == "" {
		t.Errorf("second build's write %q to %q (%q), want failed", b2.CacheWrite, b2.CacheTo, b2.CacheWriteError)
	}
	if ratio, ok := r.CacheHitRatio(); !ok || ratio != 5.0/8 {
		t.Errorf("cache hit ratio %v %v, want 5/8", ratio, ok)
	}
	data, _ := json.Marshal(r)
	if strings.Contains(string(data), "secret") || strings.Contains(string(data), "t0ken") {
		t.Errorf("the report holds a credential: %s", data)
	}
}

// TestJobBuilds: the job's own builds are those buildx recorded in its
// docker config; a bake build is named by its target.
func TestJobBuilds(t *testing.T) {
	dir := t.TempDir()
	write := func(node, ref, target string) {
		p := filepath.Join(dir, "buildx", "refs", "dockhand-embedded", node, ref)
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte(`{"Target":"`+target+`","LocalPath":"/ctx","DockerfilePath":"/ctx/Dockerfile"}`), 0o600)
	}
	write("node0", "r1", "default")
	write("node0", "r2", "web")
	os.MkdirAll(filepath.Join(dir, "buildx", "refs", "__group__"), 0o700)
	got := JobBuilds(dir)
	if len(got) != 2 || got["r1"] != "" || got["r2"] != "web" {
		t.Fatalf("JobBuilds = %v, want r1 (plain) and r2 (bake target web)", got)
	}
	if JobBuilds(t.TempDir()) != nil {
		t.Error("no buildx records: want nil")
	}
	in := fixedInputs()
	in.JobBuilds = got
	r := New(in)
	if len(r.Builds) != 2 || r.Builds[1].Name != "web" || r.Builds[1].BakeTarget != "web" {
		t.Errorf("builds %+v, want r1 and r2 named web", r.Builds)
	}
	if !strings.HasPrefix(Row(r, r.Builds[1]), "| bake <code>web</code>") {
		t.Errorf("bake row %s", Row(r, r.Builds[1]))
	}
}

// TestIssue23_1_OnlyTheJobsOwnBuildsAreReported: on a builder shared with
// other jobs (a pool, the host's embedded builder), a job whose docker
// config holds no buildx record (a lint job, a buildctl build) was given
// every build that finished there during it: other pipelines' images,
// cache refs and failing commands on its build page. It is given none.
func TestIssue23_1_OnlyTheJobsOwnBuildsAreReported(t *testing.T) {
	in := fixedInputs()
	for _, own := range []map[string]string{nil, {}} {
		in.JobBuilds = own
		if r := New(in); len(r.Builds) != 0 {
			t.Errorf("JobBuilds %v: %d builds reported, want none of the builder's other builds", own, len(r.Builds))
		}
	}
	in.JobBuilds = map[string]string{"r1": ""}
	if r := New(in); len(r.Builds) != 1 || r.Builds[0].TotalSteps != 4 {
		t.Errorf("one build of the job's own: %+v", r.Builds)
	}
}

func TestCacheWrite(t *testing.T) {
	own := []cloud.CacheEntry{{Type: "registry", Ref: "reg/cache/app:k-dev"}, {Type: "registry", Ref: "reg/cache/app:k-main"}}
	wrote := []cloud.CacheExportStep{{Name: "exporting cache to registry"}}
	branch := cachekey.Identity{Pipeline: "app", Branch: "dev", PullRequest: "false"}
	fork := cachekey.Identity{Pipeline: "app", Branch: "m:dev", PullRequest: "13", Repo: "https://github.com/acme/app", PullRequestRepo: "https://github.com/mallory/app"}
	cache := &jobstate.CacheSettings{Backend: cachekey.Backend{Kind: config.CacheRegistry, Repository: "reg/cache"}}
	for _, tc := range []struct {
		name    string
		id      cachekey.Identity
		cache   *jobstate.CacheSettings
		imports []cloud.CacheEntry
		exports []cloud.CacheExportStep
		want    string
		to      string
	}{
		{"branch writes its ref", branch, cache, own, wrote, WriteDone, "reg/cache/app:k-dev"},
		{"fork writes nothing", fork, cache, own, nil, WriteSkippedFork, ""},
		{"read-only builder", branch, cache, own, nil, WriteNone, ""},
		{"user's own cache flags", branch, cache, []cloud.CacheEntry{{Type: "registry", Ref: "other/cache:x"}}, wrote, "", ""},
		{"no dockhand cache", branch, nil, own, wrote, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := buildOf(cloud.BuildRecord{CacheImports: tc.imports, CacheExports: tc.exports}, tc.cache, tc.id)
			if b.CacheWrite != tc.want || b.CacheTo != tc.to {
				t.Errorf("write %q to %q, want %q to %q", b.CacheWrite, b.CacheTo, tc.want, tc.to)
			}
		})
	}
}

func TestRedactRef(t *testing.T) {
	for in, want := range map[string]string{
		"https://key:secret@s3.example/bucket":    "https://s3.example/bucket",
		"tcp://user:pw@pool:1234":                 "tcp://pool:1234",
		"user:pw@registry.example/app:1":          "registry.example/app:1",
		"registry.example/app@sha256:" + hex64:    "registry.example/app@sha256:" + hex64,
		"alpine@sha256:" + hex64:                  "alpine@sha256:" + hex64,
		"registry.example:5000/cache/app:k-main":  "registry.example:5000/cache/app:k-main",
		"unix:///var/lib/dockhand/buildkitd.sock": "unix:///var/lib/dockhand/buildkitd.sock",
		"token@registry.example/app:1":            "registry.example/app:1",
	} {
		if got := RedactRef(in); got != want {
			t.Errorf("RedactRef(%q) = %q, want %q", in, got, want)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		cached, executed int64
		want             string
	}{
		{0, 0, "░░░░░░░░░░"},
		{0, 500, "░░░░░░░░░░"},
		{500, 0, "██████████"},
		{500, 500, "█████░░░░░"},
		{1, 10000, "█░░░░░░░░░"},
		{10000, 1, "█████████░"},
	} {
		if got := Bar(tc.cached, tc.executed); got != tc.want {
			t.Errorf("Bar(%d, %d) = %q, want %q", tc.cached, tc.executed, got, tc.want)
		}
	}
}

// TestAnnotationGolden: the annotation of a fixed report is the golden
// file, and a maintained Markdown parser (goldmark, GitHub-flavoured tables,
// raw HTML allowed as Buildkite allows it) renders it as one table with a
// header and one body row per build, eight cells each, the bars in <code>.
func TestAnnotationGolden(t *testing.T) {
	md := Markdown(New(fixedInputs()))
	checkGolden(t, "annotation.md", md)
	page := renderTable(t, md, 2)
	for _, s := range []string{"0123456789ab-pr-12</code><br>pull request 12&#39;s own ref", "failed: unauthorized | denied", "2.3 kB", "sha256:aaaa"} {
		if !strings.Contains(page, s) && !strings.Contains(page, strings.ReplaceAll(s, "&#39;", "'")) {
			t.Errorf("rendered annotation lacks %q:\n%s", s, page)
		}
	}
	if strings.Contains(page, "<img") || strings.Contains(md, "secret") || strings.Contains(md, "t0ken") {
		t.Errorf("the annotation has an image or a credential:\n%s", md)
	}
}

// hostile is text a fork controls (a failing RUN's command, a --target, a
// Dockerfile's name, an exporter's image name): Markdown links, images,
// emphasis, autolinks, HTML, a pipe and line breaks that would end the
// table and start headings.
const hostile = "curl https://evil.example/x ![img](https://evil.example/p.png) [click](https://evil.example) " +
	"**bold** _em_ ~~gone~~ `tick` www.evil.example a@evil.example <script>alert(1)</script> | \\| &amp;"

// TestIssue23_2_HostileTextStaysInItsCell: hostile text in every cell a
// build controls renders as that text, inside its own cell of the one
// table: no link, image, emphasis, heading or tag of its own, and a line
// break does not end the table. The golden file holds the escaped form.
func TestIssue23_2_HostileTextStaysInItsCell(t *testing.T) {
	in := fixedInputs()
	in.JobBuilds = map[string]string{"evil": ""}
	in.Selection.Builder.Nodes[0].Name = "node " + hostile
	in.History.Records = []cloud.BuildRecord{{
		Node: in.Selection.Builder.Nodes[0].Endpoint, Ref: "evil", Created: t0, Completed: t0.Add(time.Second),
		Target: "release\n\n# owned\r\n| x | y |\n\n" + hostile, Dockerfile: "Dockerfile.*evil*",
		Images: []string{"registry.example/" + hostile}, Push: true, Digest: "sha256:" + hex64,
		Error:        "process \"/bin/sh -c " + hostile + "\" did not complete successfully: exit code: 1",
		CacheImports: in.History.Records[0].CacheImports,
		CacheExports: []cloud.CacheExportStep{{Name: "exporting cache to registry", Error: "denied " + hostile}},
	}}
	md := Markdown(New(in))
	checkGolden(t, "annotation-hostile.md", md)
	page := renderTable(t, md, 1)
	for _, tag := range []string{"<a ", "<img", "<em>", "<strong>", "<del>", "<script", "<h1", "<h2", "<h3", "<h5", "<h6", "<ul", "<ol", "<p>x"} {
		if strings.Contains(page, tag) {
			t.Errorf("the build's text made a %s element of its own:\n%s", tag, page)
		}
	}
	text := stdhtml.UnescapeString(page)
	for _, s := range []string{"![img](https://evil.example/p.png) [click](https://evil.example) **bold** _em_ ~~gone~~ `tick` www.evil.example a@evil.example <script>alert(1)</script> | \\| &amp;",
		"release<br><br># owned<br>| x | y |"} {
		if !strings.Contains(text, s) {
			t.Errorf("rendered annotation lacks the text %q as it was:\n%s", s, page)
		}
	}
}

func checkGolden(t *testing.T, name, md string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if md != string(want) {
		t.Errorf("annotation differs from %s (go test ./report -run %s -update):\n%s", golden, t.Name(), md)
	}
}

// renderTable renders md as GitHub-flavoured Markdown (tables, autolinks,
// strikethrough; raw HTML allowed, as Buildkite allows it) and checks it is
// one table with eight header cells and rows body rows of eight cells, each
// with a time bar. It returns the page.
func renderTable(t *testing.T, md string, rows int) string {
	t.Helper()
	var out bytes.Buffer
	gm := goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(html.WithUnsafe()))
	if err := gm.Convert([]byte(md), &out); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	if n := strings.Count(page, "<table>"); n != 1 || !strings.Contains(page, "</table>") {
		t.Fatalf("%d tables rendered, want 1:\n%s", n, page)
	}
	if after := page[strings.Index(page, "</table>")+len("</table>"):]; strings.TrimSpace(after) != "" {
		t.Errorf("something after the table:\n%s", after)
	}
	body := page[strings.Index(page, "<tbody>"):strings.Index(page, "</tbody>")]
	got := strings.Split(body, "<tr>")[1:]
	if len(got) != rows {
		t.Fatalf("%d body rows, want %d (one per build):\n%s", len(got), rows, page)
	}
	for i, row := range got {
		if n := strings.Count(row, "<td>"); n != 8 {
			t.Errorf("row %d has %d cells, want 8:\n%s", i, n, row)
		}
		if !regexp.MustCompile(`<code>[█░]{10}</code>`).MatchString(row) {
			t.Errorf("row %d has no time bar:\n%s", i, row)
		}
	}
	if n := strings.Count(page[:strings.Index(page, "</thead>")], "<th>"); n != 8 {
		t.Errorf("%d header cells, want 8", n)
	}
	return page
}

// TestEMF: the metrics line is CloudWatch Embedded Metric Format: an _aws
// object with a millisecond Timestamp and one CloudWatchMetrics directive
// naming the namespace, dimension sets whose keys are top-level strings, and
// metrics with a name and a CloudWatch unit whose values are top-level
// numbers.
func TestEMF(t *testing.T) {
	for name, r := range map[string]Report{"builds": New(fixedInputs()), "no builder": New(Inputs{JobID: "j"})} {
		t.Run(name, func(t *testing.T) {
			line, err := EMF(r, t0)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.ContainsRune(line, '\n') {
				t.Fatalf("not one line: %s", line)
			}
			validateEMF(t, line)
		})
	}
	line, _ := EMF(New(fixedInputs()), t0)
	var doc map[string]any
	json.Unmarshal(line, &doc)
	for k, want := range map[string]any{"BuilderChoiceTime": 42.0, "CacheHitRatio": 62.5, "ContextBytes": 2857.0,
		"ProbeFailures": 1.0, "Fallbacks": 1.0, "ECRAPICalls": 1.0, "SetupTime": 180.0, "BuilderKind": "embedded", "Queue": "build"} {
		if doc[k] != want {
			t.Errorf("%s = %v, want %v", k, doc[k], want)
		}
	}
	if doc["ProbeFailedEndpoints"] != "tcp://pool-1:1234" {
		t.Errorf("ProbeFailedEndpoints = %v, want the pool endpoint, redacted", doc["ProbeFailedEndpoints"])
	}
}

// units CloudWatch accepts.
var units = map[string]bool{"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Bits": true, "Percent": true, "Count": true, "Bytes/Second": true, "Count/Second": true, "None": true}

func validateEMF(t *testing.T, line []byte) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatalf("not a JSON object: %v", err)
	}
	var aws struct {
		Timestamp         *int64
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	}
	if err := json.Unmarshal(doc["_aws"], &aws); err != nil || aws.Timestamp == nil || *aws.Timestamp != t0.UnixMilli() {
		t.Fatalf("_aws block %s: %v (want a millisecond Timestamp)", doc["_aws"], err)
	}
	if len(aws.CloudWatchMetrics) != 1 {
		t.Fatalf("%d CloudWatchMetrics directives, want 1", len(aws.CloudWatchMetrics))
	}
	d := aws.CloudWatchMetrics[0]
	if d.Namespace != Namespace || len(d.Dimensions) == 0 || len(d.Metrics) == 0 || len(d.Metrics) > 100 {
		t.Fatalf("directive %+v", d)
	}
	for _, set := range d.Dimensions {
		if len(set) == 0 || len(set) > 30 {
			t.Errorf("dimension set %v", set)
		}
		for _, k := range set {
			var v string
			if err := json.Unmarshal(doc[k], &v); err != nil || v == "" {
				t.Errorf("dimension %s is not a top-level string: %s", k, doc[k])
			}
		}
	}
	for _, m := range d.Metrics {
		if m.Name == "" || !units[m.Unit] {
			t.Errorf("metric %+v: want a name and a CloudWatch unit", m)
		}
		var v float64
		if err := json.Unmarshal(doc[m.Name], &v); err != nil {
			t.Errorf("metric %s has no top-level number: %s", m.Name, doc[m.Name])
		}
	}
}

func TestAppendMetricsRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), MetricsFile)
	line := []byte(`{"x":1}`)
	for range 5 {
		if err := AppendMetrics(t.Context(), path, line, 20); err != nil {
			t.Fatal(err)
		}
	}
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if string(cur) != "{\"x\":1}\n" || string(old) != "{\"x\":1}\n{\"x\":1}\n" {
		t.Errorf("after 5 lines with a 20-byte limit: current %q, rotated %q", cur, old)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("metrics log mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestWanted(t *testing.T) {
	built := Report{Builder: Builder{Kind: "embedded"}, Builds: []Build{{}}}
	idle := Report{Builder: Builder{Kind: "embedded"}}
	for _, tc := range []struct {
		mode string
		r    Report
		want bool
	}{
		{config.AnnotateAuto, built, true}, {config.AnnotateAuto, idle, false},
		{config.AnnotateAlways, idle, true}, {config.AnnotateAlways, Report{}, false},
		{config.AnnotateOff, built, false},
	} {
		if got := Wanted(tc.mode, tc.r); got != tc.want {
			t.Errorf("Wanted(%s, %d builds) = %v", tc.mode, len(tc.r.Builds), got)
		}
	}
}

// TestIssue23_5_RotationUnderConcurrencyLosesNoLine: jobs ending together at
// the rotation boundary each append one line. Only one rotation fits in a
// round (the limit is far above eight lines), so every line must be in the
// log or its .1; unlocked, two appenders both saw the file past the limit
// and the second rename replaced the just-rotated file.
func TestIssue23_5_RotationUnderConcurrencyLosesNoLine(t *testing.T) {
	line := []byte(`{"Queue":"build","Builds":1}`)
	const writers, rounds = 8, 100
	const limit = 40 * 29 // forty lines
	lost := 0
	for round := range rounds {
		path := filepath.Join(t.TempDir(), MetricsFile)
		before := bytes.Repeat(append(append([]byte{}, line...), '\n'), 39)
		if err := os.WriteFile(path, before, 0o600); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := AppendMetrics(t.Context(), path, line, limit); err != nil {
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		cur, _ := os.ReadFile(path)
		old, _ := os.ReadFile(path + ".1")
		if n := bytes.Count(cur, []byte("\n")) + bytes.Count(old, []byte("\n")); n != 39+writers {
			lost += 39 + writers - n
			if lost < 50 {
				t.Logf("round %d: %d lines in the log and its .1, want %d", round, n, 39+writers)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d lines lost in %d rounds of %d concurrent appends at the rotation boundary", lost, rounds, writers)
	}
}

// TestIssue21_9_AnnotationCappedUnderAgentLimit: the agent refuses an
// annotation body over 1 MiB (buildkite-agent annotate: "annotation body
// size (NB) exceeds maximum (1048576B)"), so a job with very many builds
// lost its whole annotation. The annotation stops adding rows before the
// limit and ends with one row saying how many builds are left out, all
// eight cells, and the table still renders.
func TestIssue21_9_AnnotationCappedUnderAgentLimit(t *testing.T) {
	in := fixedInputs()
	in.JobBuilds = map[string]string{}
	in.History.Records = nil
	const builds = 5000
	for i := range builds {
		ref := fmt.Sprintf("b%d", i)
		in.JobBuilds[ref] = ""
		in.History.Records = append(in.History.Records, cloud.BuildRecord{Node: "unix:///run/b.sock", Ref: ref,
			Created: t0, Completed: t0.Add(time.Second), TotalSteps: 3,
			Images: []string{fmt.Sprintf("registry.example/team/%s:%d", strings.Repeat("app.", 60), i)}, Push: true,
			Digest: "sha256:" + hex64, Error: "process \"/bin/sh -c make " + strings.Repeat("x.", 100) + "\" failed"})
	}
	md := Markdown(New(in))
	if len(md) > MaxAnnotationBytes || MaxAnnotationBytes != 1<<20 {
		t.Fatalf("annotation of %d builds is %d bytes; the agent refuses more than %d", builds, len(md), 1<<20)
	}
	lines := strings.Split(strings.TrimSpace(md), "\n")
	shown := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "| <code>registry") {
			shown++
		}
	}
	last := lines[len(lines)-1]
	want := fmt.Sprintf("| … %d more builds: the job report in the job log lists every build |", builds-shown)
	if shown == 0 || !strings.HasPrefix(last, want) || strings.Count(last, "|") != 9 {
		t.Errorf("%d rows shown, last line %q; want it to start %q and have eight cells", shown, last, want)
	}
	var out bytes.Buffer
	if err := goldmark.New(goldmark.WithExtensions(extension.GFM)).Convert([]byte(md), &out); err != nil ||
		strings.Count(out.String(), "<tr>") != shown+2 {
		t.Errorf("rendered: %d rows, want %d and the header (%v)", strings.Count(out.String(), "<tr>")-1, shown+1, err)
	}
	if small := Markdown(New(fixedInputs())); strings.Contains(small, "more builds") {
		t.Errorf("a small annotation has a row of builds left out:\n%s", small)
	}
}

// TestIssue23_3_OnlySmallRegularRefFilesAreRead: a job can put anything
// under its docker config's buildx/refs. A FIFO there blocked the read
// forever (and the job's end with it); a link led the read elsewhere; a
// huge file was read whole. Only regular files, not followed through links,
// of at most a small size are read; the rest are passed over.
func TestIssue23_3_OnlySmallRegularRefFilesAreRead(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "buildx", "refs", "b", "node0")
	if err := os.MkdirAll(node, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(node, "good"), []byte(`{"Target":"web"}`), 0o600)
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	os.WriteFile(elsewhere, []byte(`{"Target":"linked"}`), 0o600)
	os.Symlink(elsewhere, filepath.Join(node, "link"))
	if err := syscall.Mkfifo(filepath.Join(node, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(node, "fifo"), filepath.Join(node, "link-to-fifo"))
	huge, _ := os.Create(filepath.Join(node, "huge"))
	huge.WriteString(`{"Target":"huge"`)
	huge.Truncate(4 << 30) // sparse: 4 GiB read whole before
	huge.Close()
	done := make(chan map[string]string, 1)
	go func() { done <- JobBuilds(dir) }()
	select {
	case got := <-done:
		if len(got) != 1 || got["good"] != "web" {
			t.Errorf("JobBuilds = %v, want only the regular file good (bake target web)", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("JobBuilds still reading 20s on: a FIFO or a huge file under buildx/refs holds it")
	}
	// refs itself a link: not followed.
	linked := t.TempDir()
	os.MkdirAll(filepath.Join(linked, "buildx"), 0o700)
	os.Symlink(filepath.Join(dir, "buildx", "refs"), filepath.Join(linked, "buildx", "refs"))
	if got := JobBuilds(linked); got != nil {
		t.Errorf("JobBuilds through a linked buildx/refs = %v, want nothing", got)
	}
}

// TestIssue23_6_MetricQueueCappedToConfiguredQueues: the Queue dimension of
// the metrics line is a CloudWatch dimension value (each one a metric
// series, paid for): only the queues the configuration has a [queue.NAME]
// section for, "default" for none, and "other" for any other value, which a
// job could otherwise choose without bound.
func TestIssue23_6_MetricQueueCappedToConfiguredQueues(t *testing.T) {
	for _, tc := range []struct{ queue, want string }{
		{"build", "build"}, {"", "default"}, {"made-up-by-a-step-1234", "other"}, {"other", "other"},
	} {
		in := fixedInputs()
		in.Queue, in.Queues = tc.queue, []string{"build", "deploy"}
		line, err := EMF(New(in), t0)
		var doc map[string]any
		if err != nil || json.Unmarshal(line, &doc) != nil || doc["Queue"] != tc.want {
			t.Errorf("queue %q: dimension %v, want %q (%v)", tc.queue, doc["Queue"], tc.want, err)
		}
	}
}

func TestRetriesInTheReportAndAnnotation(t *testing.T) {
	r := New(Inputs{JobID: "j1", Retries: []jobstate.Retry{
		{Lost: "tcp://user:pw@10.0.0.1:1234", Reason: "ERROR: failed to solve: rpc error: code = Unavailable desc = error reading from server: EOF", Node: "tcp://10.0.0.2:1234"},
		{Lost: "tcp://10.0.0.2:1234", Reason: "ERROR: connection reset by peer", Error: "no other node of the pool answers (tcp://10.0.0.3:1234)"},
	}})
	if len(r.Retries) != 2 || r.Retries[0].Lost != "tcp://10.0.0.1:1234" || r.Retries[0].Node != "tcp://10.0.0.2:1234" {
		t.Fatalf("retries = %+v", r.Retries)
	}
	md := Markdown(r)
	for _, want := range []string{
		"| lost its node: ERROR&#58; failed to solve&#58; rpc error&#58; code &#61; Unavailable desc &#61; error reading from server&#58; EOF | <code>tcp&#58;//10&#46;0&#46;0&#46;1&#58;1234</code><br>→ <code>tcp&#58;//10&#46;0&#46;0&#46;2&#58;1234</code> (run again, once) |",
		"| lost its node: ERROR&#58; connection reset by peer | <code>tcp&#58;//10&#46;0&#46;0&#46;2&#58;1234</code><br>not run again: no other node of the pool answers &#40;",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("annotation lacks %q:\n%s", want, md)
		}
	}
}
