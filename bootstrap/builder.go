package bootstrap

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/jobstate"
)

// chooseBuilder picks and wires the job's builder (see builder.Select). When
// every configured builder is down the job fails (exit 125, one line naming
// each candidate), unless the queue's builders are optional: then it runs
// without dockhand's builder and the log says why.
func chooseBuilder(ctx context.Context, o Options, state, jobDir string) (*builder.Selection, jobstate.Builder, *joblog.Line, error) {
	sel, err := builder.Select(ctx, builder.SetupOptions{
		Config: o.Config, Env: o.Env, StateDir: state, JobDir: jobDir,
		DockerConfig: filepath.Join(jobDir, "docker"), Self: o.Self,
	})
	var none *builder.NoBuilderError
	switch {
	case errors.As(err, &none) && o.Config.BuildersOptional:
		w := joblog.Warningf("%v; builders_optional is set, so the job runs without dockhand's builder", err)
		return sel, jobstate.Builder{}, &w, nil
	case err != nil:
		return sel, jobstate.Builder{}, nil, err
	case sel.Builder == nil:
		return sel, jobstate.Builder{}, nil, nil
	}
	b := sel.Builder
	if b.Driver != buildx.DriverDocker {
		if err := updateJobConfig(filepath.Join(jobDir, "docker", "config.json"), aliasBuilder); err != nil {
			return sel, jobstate.Builder{}, nil, err
		}
	}
	return sel, jobstate.Builder{Kind: b.Kind, Name: b.Name, Driver: b.Driver, Nodes: len(b.Nodes), Endpoint: b.Endpoint(),
		Retry: builder.NewRetryPlan(sel, o.Config, builder.ProbeCacheDir(state))}, nil, nil
}

// aliasBuilder makes `docker build` run `docker buildx build` on the job's
// current builder, as `docker buildx install` does (config.json's
// aliases.builder). Without it docker runs it on the docker context's own
// builder (it sets BUILDX_BUILDER=default), never on dockhand's.
func aliasBuilder(cfg map[string]any) {
	aliases, _ := cfg["aliases"].(map[string]any)
	if aliases == nil {
		aliases = map[string]any{}
	}
	aliases["builder"] = "buildx"
	cfg["aliases"] = aliases
}

// setBuilderEnv adds the chosen builder's variables to the child's
// environment: BUILDKIT_HOST and the TLS or nsc settings.
func setBuilderEnv(e *agentenv.Environment, sel *builder.Selection) {
	if sel == nil {
		return
	}
	for k, v := range sel.Exports {
		e.Set(k, v)
	}
}

// builderLines are the builder's lines of the job log section.
func builderLines(sel *builder.Selection, warning *joblog.Line) []joblog.Line {
	var lines []joblog.Line
	if warning != nil {
		lines = append(lines, *warning)
	}
	if sel == nil {
		return lines
	}
	switch {
	case sel.Builder != nil || warning != nil:
	case sel.Spec.Untrusted != "" && !builder.Configured(sel.Options):
		// Lines says why: none for a fork's build.
	case builder.Configured(sel.Options):
		lines = append(lines, joblog.Warningf("builder: the docker engine does not answer; the job runs as without dockhand (docker commands meet the same engine)"))
	default:
		lines = append(lines, joblog.Notef("builder: none configured on this host for this queue; docker uses its own default builder"))
	}
	return append(lines, sel.Lines()...)
}

// historyWait bounds the cache summary, which runs when the job has ended.
const historyWait = 6 * time.Second

// jobHistory reads the builds that finished on the job's builder during the
// job (BuildKit's build history, once), and a warning line when it could
// not. The job's own are picked out of them by the job report. The nodes
// lost builds ran again on are read too.
func jobHistory(ctx context.Context, o Options, sel *builder.Selection, retries []jobstate.Retry, since time.Time) (cloud.HistoryResponse, *joblog.Line) {
	if sel == nil || sel.Builder == nil || len(builder.HistoryTargets(*sel.Builder)) == 0 {
		return cloud.HistoryResponse{}, nil
	}
	b := *sel.Builder
	b.Nodes = slices.Clone(b.Nodes)
	for _, r := range retries {
		if r.Node != "" && !slices.ContainsFunc(b.Nodes, func(n buildx.Node) bool { return n.Endpoint == r.Node }) {
			n := buildx.Node{Name: buildx.RetryName + "0", Endpoint: r.Node}
			if strings.HasPrefix(r.Node, "tcp://") {
				n.TLS = sel.Spec.Remote.TLS
			}
			b.Nodes = append(b.Nodes, n)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, historyWait)
	defer cancel()
	h, err := builder.BuildHistory(ctx, cloud.Path(o.Self), o.Env.ToSlice(), b, since)
	if err != nil {
		w := joblog.Warningf("no cache summary: %v", err)
		return h, &w
	}
	return h, nil
}
