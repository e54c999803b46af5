package buildkit

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/content/proxy"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
)

// History sums the builds each node finished since req.Since, from
// BuildKit's build history: how many, and how many of their steps came from
// the cache; and lists them one by one with what their records and progress
// logs say. A node that cannot be asked is reported, not fatal.
func History(ctx context.Context, req cloud.HistoryRequest) cloud.HistoryResponse {
	var resp cloud.HistoryResponse
	for _, t := range req.Nodes {
		if err := nodeHistory(ctx, t, req, &resp); err != nil {
			resp.Errors = append(resp.Errors, t.Endpoint+": "+Describe(err))
		}
	}
	sort.SliceStable(resp.Records, func(i, j int) bool { return resp.Records[i].Created.Before(resp.Records[j].Created) })
	return resp
}

func nodeHistory(ctx context.Context, t cloud.ProbeTarget, req cloud.HistoryRequest, resp *cloud.HistoryResponse) error {
	c, err := client.New(ctx, t.Endpoint, clientOpts(t)...)
	if err != nil {
		return err
	}
	defer c.Close()
	stream, err := c.ControlClient().ListenBuildHistory(ctx, &controlapi.BuildHistoryRequest{EarlyExit: true})
	if err != nil {
		return err
	}
	var store content.Store
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r := ev.GetRecord()
		if ev.GetType() != controlapi.BuildHistoryEventType_COMPLETE || r == nil || r.GetCompletedAt() == nil ||
			r.GetCreatedAt().AsTime().Before(req.Since) {
			continue
		}
		resp.Builds++
		resp.CachedSteps += int(r.GetNumCachedSteps())
		resp.TotalSteps += int(r.GetNumTotalSteps())
		rec := recordOf(t.Endpoint, r)
		if d := r.GetLogs(); d != nil && d.GetDigest() != "" {
			if store == nil {
				store = proxy.NewContentStore(c.ContentClient())
			}
			if err := readProgress(ctx, store, d, &rec); err != nil {
				rec.LogError = Describe(err)
			}
		}
		resp.Records = append(resp.Records, rec)
	}
}

// recordOf is what a history record itself says about a build.
func recordOf(node string, r *controlapi.BuildHistoryRecord) cloud.BuildRecord {
	attrs := r.GetFrontendAttrs()
	rec := cloud.BuildRecord{
		Node:        node,
		Ref:         r.GetRef(),
		Target:      attrs["target"],
		Dockerfile:  attrs["filename"],
		Platforms:   attrs["platform"],
		Created:     r.GetCreatedAt().AsTime(),
		Completed:   r.GetCompletedAt().AsTime(),
		CachedSteps: int(r.GetNumCachedSteps()),
		TotalSteps:  int(r.GetNumTotalSteps()),
	}
	if e := r.GetError(); e != nil && e.GetMessage() != "" {
		rec.Error = firstLine(e.GetMessage())
	}
	for _, e := range r.GetExporters() {
		if e.GetType() != client.ExporterImage {
			continue
		}
		for _, n := range strings.Split(e.GetAttrs()["name"], ",") {
			if n = strings.TrimSpace(n); n != "" {
				rec.Images = append(rec.Images, n)
			}
		}
		if e.GetAttrs()["push"] == "true" {
			rec.Push = true
		}
	}
	if res := r.GetResult(); res != nil {
		if d := res.GetResults()[0]; d != nil {
			rec.Digest = d.GetDigest()
		} else if d := res.GetResultDeprecated(); d != nil {
			rec.Digest = d.GetDigest()
		}
	}
	rec.CacheImports = CacheImports(attrs["cache-imports"])
	return rec
}

// CacheImports reads the "cache-imports" frontend attribute (the client's
// --cache-from entries as JSON) into where each reads from. Only the place
// is kept: other attributes may be credentials.
func CacheImports(attr string) []cloud.CacheEntry {
	if attr == "" {
		return nil
	}
	var entries []struct {
		Type  string
		Attrs map[string]string
	}
	if err := json.Unmarshal([]byte(attr), &entries); err != nil {
		return nil
	}
	out := make([]cloud.CacheEntry, 0, len(entries))
	for _, e := range entries {
		a := e.Attrs
		ref := a["ref"]
		switch e.Type {
		case config.CacheS3:
			ref = "s3://" + a["bucket"] + "/" + a["prefix"] + "manifests/" + a["name"]
		case "gha", "azblob":
			ref = a["name"]
		case config.CacheLocal:
			if a["src"] != "" {
				ref = a["src"] + ":" + a["tag"]
			} else {
				ref = a["tag"]
			}
		}
		out = append(out, cloud.CacheEntry{Type: e.Type, Ref: ref})
	}
	return out
}

// readProgress reads a build's progress log from the node's content store
// (BuildKit keeps it with the record: a 4-byte little-endian length before
// each StatusResponse) and adds what it says to rec.
func readProgress(ctx context.Context, store content.Provider, d *controlapi.Descriptor, rec *cloud.BuildRecord) error {
	ra, err := store.ReaderAt(ctx, ocispecs.Descriptor{MediaType: d.GetMediaType(), Digest: digest.Digest(d.GetDigest()), Size: d.GetSize()})
	if err != nil {
		return fmt.Errorf("opening the progress log: %w", err)
	}
	defer ra.Close()
	var p Progress
	if err := p.Read(bufio.NewReader(content.NewReader(ra))); err != nil {
		return err
	}
	p.Apply(rec)
	return nil
}

// Progress gathers a build's progress log: the last state of every step
// and the byte counts of its context transfers.
type Progress struct {
	vertices map[string]*controlapi.Vertex
	order    []string
	transfer map[string]int64 // "transferring NAME:" status id -> bytes
}

// Read decodes a progress log stream.
func (p *Progress) Read(r io.Reader) error {
	var hdr [4]byte
	buf := make([]byte, 32*1024)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading the progress log: %w", err)
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > 64<<20 {
			return fmt.Errorf("reading the progress log: a %d-byte message", n)
		}
		if int(n) > len(buf) {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return fmt.Errorf("reading the progress log: %w", err)
		}
		var sr controlapi.StatusResponse
		if err := sr.UnmarshalVT(buf[:n]); err != nil {
			return fmt.Errorf("reading the progress log: %w", err)
		}
		p.Add(&sr)
	}
}

// Add takes one status message into account.
func (p *Progress) Add(sr *controlapi.StatusResponse) {
	if p.vertices == nil {
		p.vertices, p.transfer = map[string]*controlapi.Vertex{}, map[string]int64{}
	}
	for _, v := range sr.GetVertexes() {
		if _, seen := p.vertices[v.GetDigest()]; !seen {
			p.order = append(p.order, v.GetDigest())
		}
		p.vertices[v.GetDigest()] = v
	}
	for _, s := range sr.GetStatuses() {
		id := s.GetID()
		if strings.HasPrefix(id, "transferring ") && strings.HasSuffix(id, ":") && s.GetCurrent() >= p.transfer[id] {
			p.transfer[id] = s.GetCurrent()
		}
	}
}

// Apply writes what the log says into rec: context bytes (every local
// source but the Dockerfile), time in cached and executed steps, and the
// cache exports with their errors.
func (p *Progress) Apply(rec *cloud.BuildRecord) {
	for id, n := range p.transfer {
		if id != "transferring dockerfile:" {
			rec.ContextBytes += n
		}
	}
	for _, dg := range p.order {
		v := p.vertices[dg]
		if strings.HasPrefix(v.GetName(), "exporting cache to ") {
			rec.CacheExports = append(rec.CacheExports, cloud.CacheExportStep{Name: v.GetName(), Error: firstLine(v.GetError())})
			continue
		}
		if v.GetStarted() == nil || v.GetCompleted() == nil {
			continue
		}
		d := v.GetCompleted().AsTime().Sub(v.GetStarted().AsTime())
		if d < 0 {
			continue
		}
		if v.GetCached() {
			rec.CachedTime += d
		} else {
			rec.ExecutedTime += d
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
