package report

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/internal/filelock"
)

// Namespace is the CloudWatch namespace of dockhand's metrics.
const Namespace = "dockhand"

// MetricsFile is the metrics log under the state dir, one line per job.
const MetricsFile = "metrics.jsonl"

// MaxMetricsSize is the size past which the metrics log is rotated to
// MetricsFile + ".1" (the previous .1 is dropped).
const MaxMetricsSize = 10 << 20

// Metric is one metric of the line: its name, CloudWatch unit and value.
type Metric struct {
	Name  string
	Unit  string
	Value float64
}

// Metrics are the report's numbers for operators.
func Metrics(r Report) []Metric {
	probeFailures := len(r.Builder.ProbeFailures)
	m := []Metric{
		{"BuilderChoiceTime", "Milliseconds", float64(r.Builder.ChoiceMS)},
		{"SetupTime", "Milliseconds", float64(r.SetupMS)},
		{"Fallbacks", "Count", float64(len(r.Builder.Fallbacks))},
		{"ProbeFailures", "Count", float64(probeFailures)},
		{"Builds", "Count", float64(len(r.Builds))},
		{"ContextBytes", "Bytes", float64(r.ContextBytes())},
		{"ECRAPICalls", "Count", float64(r.ECRAPICalls)},
	}
	if ratio, ok := r.CacheHitRatio(); ok {
		m = append(m, Metric{"CacheHitRatio", "Percent", float64(int(ratio*1000+0.5)) / 10})
	}
	return m
}

// Dimensions of every metric: per queue, and per queue and builder kind.
var Dimensions = [][]string{{"Queue"}, {"Queue", "BuilderKind"}}

// EMF is the report as one line in CloudWatch's Embedded Metric Format: the
// _aws block names the metrics (with units) and their dimensions, and every
// metric, dimension and property is a top-level key. ProbeFailedEndpoints
// (the endpoints whose probe failed, comma-separated, sorted) and the job's
// identity are properties, for Logs Insights.
func EMF(r Report, now time.Time) ([]byte, error) {
	metrics := Metrics(r)
	defs := make([]map[string]string, len(metrics))
	doc := map[string]any{}
	for i, m := range metrics {
		defs[i] = map[string]string{"Name": m.Name, "Unit": m.Unit}
		doc[m.Name] = m.Value
	}
	doc["_aws"] = map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": Dimensions,
			"Metrics":    defs,
		}},
	}
	queue, kind := r.metricQueue, r.Builder.Kind
	if queue == "" {
		queue = "default"
	}
	if kind == "" {
		kind = "none"
	}
	doc["Queue"], doc["BuilderKind"] = queue, kind
	doc["JobID"], doc["Pipeline"] = r.Job.ID, r.Job.Pipeline
	if len(r.Builder.ProbeFailures) > 0 {
		doc["ProbeFailedEndpoints"] = strings.Join(SortedEndpoints(r.Builder.ProbeFailures), ",")
	}
	if len(r.Builder.Fallbacks) > 0 {
		doc["FallbackReasons"] = r.Builder.Fallbacks
	}
	return json.Marshal(doc)
}

// metricsLockWait bounds the wait for the metrics log's lock: its holders
// only append a line and perhaps rename the file.
const metricsLockWait = 5 * time.Second

// AppendMetrics adds line to the metrics log at path, first rotating it to
// path.1 when it has grown past maxSize. Both happen under the log's lock
// (path + ".lock"), so of jobs ending together at the boundary one rotates
// and the others append to the new file; without it a second rotation
// replaced the file the first had just rotated. The file is 0600; a line is
// written with one write on an O_APPEND file. The wait for the lock is
// bounded, and ends with ctx.
func AppendMetrics(ctx context.Context, path string, line []byte, maxSize int64) error {
	unlock, err := filelock.Lock(ctx, path+".lock", metricsLockWait)
	if err != nil {
		return fmt.Errorf("writing the metrics log: %w", err)
	}
	defer unlock()
	if fi, err := os.Stat(path); err == nil && fi.Size()+int64(len(line))+1 > maxSize {
		if err := os.Rename(path, path+".1"); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotating %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("writing the metrics log: %w", err)
	}
	if _, err := f.Write(append(append([]byte{}, line...), '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
