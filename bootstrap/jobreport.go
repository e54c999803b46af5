package bootstrap

import (
	"context"
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/internal/proc"
	"github.com/dockhand-ci/dockhand/jobstate"
	"github.com/dockhand-ci/dockhand/registry"
	"github.com/dockhand-ci/dockhand/report"
)

// afterJob closes the job's dockhand story once the child has ended: the
// cache line (the job's own builds), the build annotation (per the annotate setting), the job
// report as JSON in its own collapsed section, and the metrics line in
// STATE/metrics.jsonl. It reads BuildKit's history once; nothing here can
// fail the job: a failure costs one line, and Run waits for it no longer
// than the grace period (reportWithin).
func afterJob(ctx context.Context, o Options, jobDir string, n setupNotes, start time.Time, setup time.Duration) {
	retries := jobstate.ReadRetries(jobDir)
	hist, warning := jobHistory(ctx, o, n.builder, retries, start)
	get := config.Getter(o.Env)
	id := cachekey.IdentityFromEnv(get)
	if n.settings != nil {
		id = n.settings.Identity // as recorded before any job code ran
	}
	r := report.New(report.Inputs{
		JobID: get("BUILDKITE_JOB_ID"), Queue: o.Config.Queue, Queues: o.Config.Queues,
		Identity: id, Cache: n.settings, Selection: n.builder,
		Setup: setup, History: hist,
		ECRAPICalls: n.ecrCalls + registry.ECRCalls(jobDir),
		JobBuilds:   report.JobBuilds(filepath.Join(jobDir, "docker")),
		Retries:     retries,
	})
	log := joblog.New(o.Log)
	// The job's own builds only: the builder may be shared.
	switch line := r.CacheLine(); {
	case warning != nil:
		log.Print(*warning)
	case line != "":
		log.Printf("%s", line)
	}
	if report.Wanted(o.Config.Annotate, r) {
		if err := annotate(ctx, o, r); err != nil {
			log.Printf("annotation not added (the job is not affected): %v", err)
		}
	}
	if r.Builder.Kind != "" {
		if data, err := json.Marshal(r); err == nil {
			log = log.Section(":docker: dockhand job report")
			log.Printf("job report: %s", data)
		}
	}
	line2, err := report.EMF(r, time.Now())
	if err == nil {
		err = report.AppendMetrics(ctx, filepath.Join(n.stateDir, report.MetricsFile), line2, report.MaxMetricsSize)
	}
	if err != nil {
		log.Warnf("no metrics line: %v", err)
	}
}

// annotate adds the job's build annotation through the real agent.
func annotate(ctx context.Context, o Options, r report.Report) error {
	agent, err := proc.FindAgent(o.Env)
	if err != nil {
		return err
	}
	return report.Annotate(ctx, agent, o.Env.ToSlice(), r.Job.ID, report.Markdown(r))
}
