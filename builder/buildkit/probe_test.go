package buildkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestProbeRealBuildkitd probes real buildkitd processes over mTLS: a good
// client, a client from another CA, a hanging endpoint, a refused one and a
// missing socket, all in one request bounded by its deadline.
func TestProbeRealBuildkitd(t *testing.T) {
	k, err := harness.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", k.Logs())
		}
		k.Close()
	})
	fleet, err := k.NewFleetTLS("tls")
	if err != nil {
		t.Fatal(err)
	}
	bk, err := k.StartBuildkitdWith(harness.BuildkitdOptions{Name: "bk", TCP: true, TLS: &fleet.Server, Platforms: []string{"linux/arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	hang, err := harness.StartHanging()
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	refused := refusedAddr(t)
	client := buildx.TLS{CA: fleet.Client.CA, Cert: fleet.Client.Cert, Key: fleet.Client.Key}
	rogue := buildx.TLS{CA: fleet.Rogue.CA, Cert: fleet.Rogue.Cert, Key: fleet.Rogue.Key}
	targets := []cloud.ProbeTarget{
		{Kind: cloud.ProbeBuildkit, Endpoint: bk.TCPAddr, TLS: client},
		{Kind: cloud.ProbeBuildkit, Endpoint: bk.TCPAddr, TLS: rogue},
		{Kind: cloud.ProbeBuildkit, Endpoint: bk.TCPAddr, TLS: buildx.TLS{CA: fleet.Client.CA}},
		{Kind: cloud.ProbeBuildkit, Endpoint: bk.TCPAddr},
		{Kind: cloud.ProbeBuildkit, Endpoint: bk.TCPAddr, TLS: buildx.TLS{CA: fleet.Client.CA, Cert: fleet.Client.Cert, Key: fleet.Client.Key, ServerName: "wrong.test"}},
		{Kind: cloud.ProbeBuildkit, Endpoint: hang.Addr, TLS: client},
		{Kind: cloud.ProbeBuildkit, Endpoint: refused, TLS: client},
		{Kind: cloud.ProbeBuildkit, Endpoint: bk.Addr},
		{Kind: cloud.ProbeBuildkit, Endpoint: "unix://" + filepath.Join(t.TempDir(), "none.sock")},
		{Kind: cloud.ProbeDocker, Endpoint: "unix://" + filepath.Join(t.TempDir(), "docker.sock")},
	}
	const timeout = 1500 * time.Millisecond
	start := time.Now()
	res := Run(t.Context(), cloud.ProbeRequest{Deadline: start.Add(timeout), Targets: targets})
	took := time.Since(start)
	if took > timeout+300*time.Millisecond {
		t.Errorf("the probe took %s, more than its %s deadline allows", took, timeout)
	}
	for i, r := range res {
		t.Logf("%-60s %s", targets[i].Endpoint+" "+fmt.Sprint(targets[i].TLS != buildx.TLS{}), r.Summary())
	}
	want := []struct {
		ok  bool
		err string
	}{
		{true, ""},
		{false, "TLS: "},
		{false, "TLS: "},
		{false, ""}, // plaintext against a TLS listener: refused in some way
		{false, "TLS: "},
		{false, "no answer within 1.5s"},
		{false, "connection refused"},
		{true, ""},
		{false, "no socket at"},
		{false, "no socket at"},
	}
	for i, w := range want {
		r := res[i]
		if r.OK != w.ok || !strings.Contains(r.Error, w.err) || r.Endpoint != targets[i].Endpoint {
			t.Errorf("target %d (%s): %+v, want ok=%v error containing %q", i, targets[i].Endpoint, r, w.ok, w.err)
		}
	}
	if res[6].Error != "connection refused" {
		t.Errorf("a refused endpoint is reported as %q, want exactly \"connection refused\"", res[6].Error)
	}
	if res[0].Version == "" || !strings.Contains(strings.Join(res[0].Platforms, ","), "linux/arm64") {
		t.Errorf("healthy probe lacks the version or the declared platform: %+v", res[0])
	}
	if hang.Accepted() == 0 {
		t.Error("the hanging endpoint was never dialled")
	}
	// The refusal ends the probe: it does not wait for the deadline (the
	// hanging endpoint does).
	if strings.Contains(res[1].Error, "deadline") || res[1].Latency >= res[5].Latency {
		t.Errorf("a rejected client certificate is reported as %q after %s (the hanging endpoint: %s); want the TLS reason, before the deadline",
			res[1].Error, res[1].Latency, res[5].Latency)
	}
}

func refusedAddr(t *testing.T) string {
	t.Helper()
	h, err := harness.StartHanging()
	if err != nil {
		t.Fatal(err)
	}
	addr := h.Addr
	h.Close()
	return addr
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{context.DeadlineExceeded, "no answer in time"},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "connection refused"},
		{errors.New(`failed to list workers: rpc error: code = Unavailable desc = connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate is valid for 127.0.0.1, not wrong.test"`),
			"TLS: tls: failed to verify certificate: x509: certificate is valid for 127.0.0.1, not wrong.test"},
		{errors.New(`failed to list workers: rpc error: code = Unavailable desc = connection error: desc = "error reading server preface: remote error: tls: certificate required"`),
			"TLS: remote error: tls: certificate required"},
		{fmt.Errorf("could not read ca certificate: %w", &os.PathError{Op: "open", Path: "/etc/ca.pem", Err: syscall.ENOENT}),
			"cannot read the CA file /etc/ca.pem: no such file or directory"},
		{errors.New("failed to list workers: rpc error: code = Unknown desc = something\nelse"), "code = Unknown desc = something"},
		{errors.New("dial tcp: lookup nope.invalid: no such host"), "no such host"},
	} {
		if got := Describe(tc.err); got != tc.want {
			t.Errorf("Describe(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
