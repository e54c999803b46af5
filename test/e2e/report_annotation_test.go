package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/report"
	"github.com/dockhand-ci/dockhand/test/agentapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

var jobReportLine = regexp.MustCompile(`(?m)^dockhand: job report: (\{.*\})\s*$`)

// annotationRows are the table rows of an annotation, split into cells,
// each cell's character references decoded (the annotation writes a build's
// punctuation as references, so that it is never Markdown).
func annotationRows(body string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, "| <code>") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "| "), " | ")
		for i, c := range cells {
			cells[i] = html.UnescapeString(c)
		}
		rows = append(rows, cells)
	}
	return rows
}

// TestJobAnnotationReportAndMetrics: jobs through the real agent on
// dockhand's embedded builder with the registry cache.
//   - A job that builds twice (the second time from the cache) adds one
//     annotation through `buildkite-agent annotate`, context unique to the
//     job, style info, with one row per build: the pushed image with the
//     registry's digest, then the rebuild with every step cached; both rows
//     read and write the branch's cache ref. The job report in the log says
//     the same.
//   - A pull request's row says its cache write went to its own PR ref.
//   - A job that builds nothing adds no annotation.
//   - When the API refuses the annotation, the job passes and one line says
//     why.
//   - STATE/metrics.jsonl holds one EMF line per job.
func TestJobAnnotationReportAndMetrics(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	repo := kit.Registry.Host + "/cache"
	r := embeddedRig(t, kit, fmt.Sprintf("[cache]\nbackend = \"registry\"\nrepository = %q\n", repo))
	image := kit.Registry.Host + "/report-app:1"
	dockerfile := fmt.Sprintf(`printf 'FROM %s\nCOPY blob /blob\nRUN echo ran-one > /one\nRUN echo ran-two > /two\n' > Dockerfile
head -c 100000 /dev/urandom > blob
`, kit.BaseImage)
	twice := dockerfile + fmt.Sprintf(`docker buildx build --progress plain -t %s --push .
docker buildx build --progress plain .
`, image)

	job := func(command string, env map[string]string) (string, string) {
		t.Helper()
		id, agent := r.start(command, env)
		f, log := r.finish(id, agent)
		if f.ExitStatus != "0" {
			t.Fatalf("job exit_status %q, want 0\n%s", f.ExitStatus, log)
		}
		return id, log
	}
	one := func(id string) agentapi.Annotation {
		t.Helper()
		as := r.srv.Annotations(id)
		if len(as) != 1 {
			t.Fatalf("job %s: %d annotations %+v, want 1", id, len(as), as)
		}
		return as[0]
	}

	// Two builds, the second from the cache.
	id, log := job(twice, branchEnv("main"))
	keys := injectedKeys(log)
	if len(keys) != 2 || keys[0] != keys[1] {
		t.Fatalf("injections %q, want the same key twice\n%s", keys, log)
	}
	ref := repo + "/pipeline:" + keys[0] + "-main"
	a := one(id)
	t.Logf("annotation of the two-build job (context %s, style %s):\n%s", a.Context, a.Style, a.Body)
	if a.Context != report.Context(id) || a.Style != "info" {
		t.Errorf("annotation context %q style %q, want %q info", a.Context, a.Style, report.Context(id))
	}
	rows := annotationRows(a.Body)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want one per build:\n%s", len(rows), a.Body)
	}
	digest := manifestDigest(t, kit.Registry.Host, "report-app", "1")
	first, second := rows[0], rows[1]
	if !strings.HasPrefix(first[0], "<code>"+image+"</code>") || !strings.Contains(first[7], "<code>"+image+"</code><br><code>"+digest+"</code>") || digest == "" {
		t.Errorf("first row %q: want the image and the registry's digest %s", first, digest)
	}
	if !strings.HasPrefix(second[0], "<code>Dockerfile</code>") || second[7] != "—" {
		t.Errorf("second row %q: want the unpushed rebuild", second)
	}
	var c1, t1, c2, t2 int
	fmt.Sscanf(first[3], "%d / %d", &c1, &t1)
	fmt.Sscanf(second[3], "%d / %d", &c2, &t2)
	// BuildKit counts its own steps too (loading the definition, metadata,
	// the context): the rebuild has the COPY and both RUN steps CACHED on
	// top of what the first build had.
	if t1 == 0 || t2 == 0 || c2 < c1+3 || c2 > t2 {
		t.Errorf("cached steps: first %s, second %s; want the rebuild's COPY and RUN steps cached", first[3], second[3])
	}
	for i, row := range rows {
		if !strings.Contains(row[4], "<code>"+ref+"</code>") || row[5] != "<code>"+ref+"</code>" {
			t.Errorf("row %d reads %q and writes %q, want %s both", i, row[4], row[5], ref)
		}
		if !strings.Contains(row[2], "<br><code>") || !strings.Contains(row[1], "unix://") {
			t.Errorf("row %d: time %q node %q, want a bar and the embedded node", i, row[2], row[1])
		}
	}
	if !strings.HasSuffix(first[6], "kB") {
		t.Errorf("first build's context %q, want the 100 kB blob counted", first[6])
	}
	m := jobReportLine.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no job report in the log:\n%s", log)
	}
	t.Logf("job report of the two-build job:\n%s", m[1])
	var rep report.Report
	if err := json.Unmarshal([]byte(m[1]), &rep); err != nil {
		t.Fatalf("job report: %v\n%s", err, m[1])
	}
	if rep.Version != report.Version || rep.Job.ID != id || len(rep.Builds) != 2 || rep.Builder.Kind != "embedded" ||
		rep.Builds[0].ContextBytes < 100000 || rep.Builds[0].Pushed[0].Digest != digest || rep.Builds[1].CachedSteps != c2 ||
		rep.Builds[1].CacheTo != ref || rep.Builds[1].CacheWrite != report.WriteDone {
		t.Errorf("job report %s", m[1])
	}

	// A pull request writes its own ref.
	id, _ = job(dockerfile+"docker buildx build --progress plain .\n", prEnv("feature/login", "12", "https://github.com/acme/app"))
	a = one(id)
	t.Logf("annotation of the pull request job:\n%s", a.Body)
	rows = annotationRows(a.Body)
	prRef := repo + "/pipeline:" + keys[0] + "-pr-12"
	if len(rows) != 1 || rows[0][5] != "<code>"+prRef+"</code><br>pull request 12's own ref" {
		t.Errorf("pull request rows %q, want one writing %s", rows, prRef)
	}
	if manifestDigest(t, kit.Registry.Host, "cache/pipeline", keys[0]+"-pr-12") == "" {
		t.Errorf("the registry has no %s", prRef)
	}

	// Nothing built: no annotation.
	id, _ = job("echo no build here", nil)
	if as := r.srv.Annotations(id); len(as) != 0 {
		t.Errorf("a job that built nothing was annotated: %+v", as)
	}

	// The API refuses: the job passes, one line says why; the job report
	// names the bake target.
	r.srv.RefuseAnnotations(http.StatusForbidden)
	_, log = job(dockerfile+"printf 'target \"web\" {\\n  context = \".\"\\n}\\n' > docker-bake.hcl\ndocker buildx bake --progress plain web\n", branchEnv("main"))
	if n := strings.Count(log, "dockhand: annotation not added (the job is not affected): "); n != 1 {
		t.Errorf("refused annotation: %d lines saying so, want 1\n%s", n, log)
	} else {
		t.Logf("refused: %s", regexp.MustCompile(`dockhand: annotation not added[^\n]*`).FindString(log))
	}
	r.srv.RefuseAnnotations(0)
	if m := jobReportLine.FindStringSubmatch(log); m == nil {
		t.Errorf("no job report in the bake job's log:\n%s", log)
	} else if rep = (report.Report{}); json.Unmarshal([]byte(m[1]), &rep) != nil || len(rep.Builds) != 1 || rep.Builds[0].BakeTarget != "web" {
		t.Errorf("bake job report %s: want one build of bake target web", m[1])
	}

	// One metrics line per job.
	f, err := os.Open(filepath.Join(r.state, report.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if len(lines) != 4 {
		t.Fatalf("%d metrics lines, want 4 (one per job)", len(lines))
	}
	t.Logf("metrics line of the two-build job:\n%s", lines[0])
	var doc struct {
		AWS struct {
			CloudWatchMetrics []struct {
				Namespace string
				Metrics   []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		BuilderKind   string
		Builds        float64
		ProbeFailures float64
		CacheHitRatio *float64
	}
	if err := json.Unmarshal(lines[0], &doc); err != nil || len(doc.AWS.CloudWatchMetrics) != 1 ||
		doc.AWS.CloudWatchMetrics[0].Namespace != report.Namespace || doc.BuilderKind != "embedded" || doc.Builds != 2 || doc.CacheHitRatio == nil ||
		doc.ProbeFailures != 0 {
		t.Errorf("metrics line %s: %v", lines[0], err)
	}
	if err := json.Unmarshal(lines[2], &doc); err != nil || doc.Builds != 0 {
		t.Errorf("metrics line of the job that built nothing %s: %v", lines[2], err)
	}
}

// TestIssue23_1_OtherPipelinesBuildsNotOnTheBuildPage: two pipelines share
// one builder (the host's embedded buildkitd), annotate = "always". While
// pipeline a's lint job (no build) waits, pipeline b builds and pushes its
// image, and pipeline a's second job builds with buildctl straight at
// BUILDKIT_HOST. No job's annotation, job report or cache line names or
// counts the other pipeline's build: the lint job shows none, the buildctl
// job none (buildx keeps no record of a buildctl build), pipeline b's job
// only its own.
func TestIssue23_1_OtherPipelinesBuildsNotOnTheBuildPage(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	r := embeddedRig(t, kit, "")
	data, err := os.ReadFile(r.config)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, r.config, "annotate = \"always\"\n"+string(data))
	dir := r.tempDir() // the jobs (the agent's user) read the fifos
	releaseLint, releaseB := filepath.Join(dir, "lint"), filepath.Join(dir, "b")
	for _, fifo := range []string{releaseLint, releaseB} {
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	imageA, imageB := kit.Registry.Host+"/pipeline-a-buildctl:1", kit.Registry.Host+"/pipeline-b-secret:1"
	dockerfile := fmt.Sprintf("printf 'FROM %s\\nRUN echo built > /built\\n' > Dockerfile\n", kit.BaseImage)
	pipeline := func(slug string) map[string]string {
		return map[string]string{"BUILDKITE_PIPELINE_SLUG": slug, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	lint, lintAgent := r.start("echo LINT\"\"ING\nread -r _ < "+releaseLint+"\necho lint passed", pipeline("a"))
	if err := r.srv.WaitLog(ctx, lint, "\nLINTING"); err != nil {
		t.Fatalf("%v\n%s", err, r.srv.PlainLog(lint))
	}
	// Pipeline b's job waits too once it has built, so pipeline a's
	// buildctl build finishes during it.
	b, bAgent := r.start(dockerfile+fmt.Sprintf("docker buildx build --progress plain --push -t %s .\necho B\"\"BUILT\nread -r _ < %s\n", imageB, releaseB), pipeline("b"))
	if err := r.srv.WaitLog(ctx, b, "\nBBUILT"); err != nil {
		t.Fatalf("%v\n%s", err, r.srv.PlainLog(b))
	}
	ctl, ctlAgent := r.start(dockerfile+fmt.Sprintf(
		"buildctl build --frontend dockerfile.v0 --local context=. --local dockerfile=. --output type=image,name=%s,push=true\n", imageA), pipeline("a"))
	fCtl, logCtl := r.finish(ctl, ctlAgent)
	for _, fifo := range []string{releaseLint, releaseB} {
		if err := releaseReader(fifo, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	fLint, logLint := r.finish(lint, lintAgent)
	fB, logB := r.finish(b, bAgent)
	for name, f := range map[string]agentapi.Finish{"lint": fLint, "buildctl": fCtl, "b": fB} {
		if f.ExitStatus != "0" {
			t.Fatalf("%s job: %+v\nlint:\n%s\nbuildctl:\n%s\nb:\n%s", name, f, logLint, logCtl, logB)
		}
	}
	for _, j := range []struct {
		name, id, log, other string
		builds               int
	}{
		{"pipeline a's lint job", lint, logLint, "pipeline-b-secret", 0},
		{"pipeline a's buildctl job", ctl, logCtl, "pipeline-b-secret", 0},
		{"pipeline b's job", b, logB, "pipeline-a-buildctl", 1},
	} {
		as := r.srv.Annotations(j.id)
		if len(as) != 1 {
			t.Errorf("%s: %d annotations, want 1 (annotate = always)", j.name, len(as))
			continue
		}
		body := html.UnescapeString(as[0].Body)
		t.Logf("%s's annotation:\n%s", j.name, body)
		if strings.Contains(body, j.other) || strings.Contains(j.log, j.other+":1") {
			t.Errorf("%s: its annotation or log names the other pipeline's image %s:\n%s", j.name, j.other, body)
		}
		if rows := annotationRows(as[0].Body); len(rows) != j.builds {
			t.Errorf("%s: %d rows, want %d", j.name, len(rows), j.builds)
		}
		m := jobReportLine.FindStringSubmatch(j.log)
		var rep report.Report
		if m == nil || json.Unmarshal([]byte(m[1]), &rep) != nil || len(rep.Builds) != j.builds {
			t.Errorf("%s: job report %v, want %d build(s)", j.name, m, j.builds)
		}
		line := cacheSummaryLine.FindStringSubmatch(j.log)
		switch {
		case j.builds == 0 && line != nil:
			t.Errorf("%s: cache line %q counts another job's builds", j.name, line[0])
		case j.builds > 0 && (line == nil || line[1] != strconv.Itoa(j.builds)):
			t.Errorf("%s: cache line %q, want %d build(s)", j.name, line, j.builds)
		}
	}
	if !strings.Contains(html.UnescapeString(r.srv.Annotations(b)[0].Body), "pipeline-b-secret") {
		t.Errorf("pipeline b's annotation lacks its own image")
	}
}

// releaseReader writes a line to the fifo a job is reading, failing after d
// when no reader has it open (a job that ended early), rather than blocking
// the test until its timeout as a plain open for writing would.
func releaseReader(fifo string, d time.Duration) error {
	for deadline := time.Now().Add(d); ; {
		f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			_, err = f.WriteString("go\n")
			f.Close()
			return err
		}
		if !errors.Is(err, syscall.ENXIO) || time.Now().After(deadline) {
			return fmt.Errorf("releasing the job reading %s: %w", fifo, err)
		}
		time.Sleep(20 * time.Millisecond) // bounded poll for the reader to open it
	}
}
