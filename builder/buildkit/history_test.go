package buildkit

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/dockhand-ci/dockhand/cloud"
)

// progressLog encodes status messages as BuildKit stores a build's progress
// log: a 4-byte little-endian length before each message.
func progressLog(t *testing.T, msgs ...*controlapi.StatusResponse) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, m := range msgs {
		data, err := m.MarshalVT()
		if err != nil {
			t.Fatal(err)
		}
		binary.Write(&b, binary.LittleEndian, uint32(len(data)))
		b.Write(data)
	}
	return b.Bytes()
}

func TestProgress(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(t0.Add(d)) }
	log := progressLog(t,
		&controlapi.StatusResponse{
			Vertexes: []*controlapi.Vertex{
				{Digest: "sha256:ctx", Name: "[internal] load build context", Started: ts(0)},
				{Digest: "sha256:run1", Name: "RUN one", Started: ts(time.Second)},
			},
			Statuses: []*controlapi.VertexStatus{
				{ID: "transferring dockerfile:", Current: 90},
				{ID: "transferring context:", Current: 1000},
			},
		},
		&controlapi.StatusResponse{
			Vertexes: []*controlapi.Vertex{
				// The last state of a step counts.
				{Digest: "sha256:ctx", Name: "[internal] load build context", Started: ts(0), Completed: ts(200 * time.Millisecond)},
				{Digest: "sha256:run1", Name: "RUN one", Started: ts(time.Second), Completed: ts(4 * time.Second)},
				{Digest: "sha256:run2", Name: "RUN two", Started: ts(4 * time.Second), Completed: ts(4*time.Second + 50*time.Millisecond), Cached: true},
				{Digest: "sha256:exp", Name: "exporting cache to registry", Started: ts(5 * time.Second), Completed: ts(6 * time.Second), Error: "unauthorized\nmore"},
				{Digest: "sha256:pending", Name: "never finished", Started: ts(5 * time.Second)},
			},
			Statuses: []*controlapi.VertexStatus{
				{ID: "transferring context:", Current: 4096},
				{ID: "transferring named:", Current: 10},
			},
		},
	)
	var p Progress
	if err := p.Read(bytes.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	var rec cloud.BuildRecord
	p.Apply(&rec)
	if rec.ContextBytes != 4106 {
		t.Errorf("context bytes %d, want 4096+10 (the context's last count and a named context, not the Dockerfile)", rec.ContextBytes)
	}
	if rec.CachedTime != 50*time.Millisecond || rec.ExecutedTime != 3200*time.Millisecond {
		t.Errorf("cached %s executed %s, want 50ms and 3.2s", rec.CachedTime, rec.ExecutedTime)
	}
	if want := []cloud.CacheExportStep{{Name: "exporting cache to registry", Error: "unauthorized"}}; !slices.Equal(rec.CacheExports, want) {
		t.Errorf("cache exports %+v, want %+v", rec.CacheExports, want)
	}
	if err := new(Progress).Read(bytes.NewReader(log[:len(log)-3])); err == nil {
		t.Error("a truncated log read without an error")
	}
}

func TestCacheImports(t *testing.T) {
	attr := `[{"Type":"registry","Attrs":{"ref":"reg/cache/app:k-main"}},` +
		`{"Type":"s3","Attrs":{"bucket":"b","prefix":"buildkit/app/","name":"k-main","secret_access_key":"SECRET","access_key_id":"AKIA"}},` +
		`{"Type":"local","Attrs":{"src":"/cache/app","tag":"k-main"}}]`
	got := CacheImports(attr)
	want := []cloud.CacheEntry{
		{Type: "registry", Ref: "reg/cache/app:k-main"},
		{Type: "s3", Ref: "s3://b/buildkit/app/manifests/k-main"},
		{Type: "local", Ref: "/cache/app:k-main"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("CacheImports = %+v, want %+v", got, want)
	}
	if CacheImports("") != nil || CacheImports("not json") != nil {
		t.Error("no or bad attribute: want nothing")
	}
}
