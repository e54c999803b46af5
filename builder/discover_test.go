package builder

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/fleet"
)

// TestDiscoverExpandsSourcesInPlace: discovery endpoints become their
// members beside the static ones, in the pool and per platform; a source
// with no node leaves the remote kind down, saying why.
func TestDiscoverExpandsSourcesInPlace(t *testing.T) {
	amd := "ec2://us-east-1?tag:Role=amd&port=1234"
	arm := "ec2://us-east-1?tag:Role=arm&port=1234"
	d := &fleet.Discoverer{Timeout: time.Second, EC2: func(_ context.Context, req cloud.EC2Request) ([]string, error) {
		switch req.Tags[0].Value {
		case "amd":
			return []string{"10.0.0.2", "10.0.0.1"}, nil
		case "arm":
			return []string{"10.0.1.1"}, nil
		}
		return nil, errors.New("unknown tag")
	}}
	r := RemoteSpec{
		Endpoints: []string{"tcp://static:1234", amd},
		Platforms: []config.PlatformNodes{{Platform: "linux/arm64", Endpoints: []string{arm}}},
	}
	got, ms := Discover(t.Context(), d, r)
	if want := []string{"tcp://static:1234", "tcp://10.0.0.1:1234", "tcp://10.0.0.2:1234"}; !slices.Equal(got.Endpoints, want) {
		t.Errorf("endpoints %v, want %v", got.Endpoints, want)
	}
	if want := []string{"tcp://10.0.1.1:1234"}; !slices.Equal(got.Platforms[0].Endpoints, want) {
		t.Errorf("arm64 endpoints %v, want %v", got.Platforms[0].Endpoints, want)
	}
	if len(ms) != 2 || len(got.Undiscovered) != 0 || !slices.Equal(r.Endpoints, []string{"tcp://static:1234", amd}) {
		t.Errorf("memberships %+v, undiscovered %v, input changed: %v", ms, got.Undiscovered, r.Endpoints)
	}

	none := RemoteSpec{Endpoints: []string{"ec2://us-east-1?tag:Role=gone&port=1234"}}
	got, ms = Discover(t.Context(), d, none)
	opt := remoteKind{}.plan(Spec{Remote: got, Slug: "app"}, Results{}, false)
	if opt.State != Down || !strings.Contains(opt.Why, "discovery found no node (ec2://us-east-1?tag:Role=gone&port=1234)") {
		t.Errorf("no node discovered: %+v", opt)
	}
	if len(ms) != 1 || !strings.Contains(ms[0].Line(), "no earlier membership is known") {
		t.Errorf("memberships %+v", ms)
	}
}

func TestAWSEnvForDiscoveryIgnoresAJobsEndpoints(t *testing.T) {
	e := config.FromSlice([]string{"PATH=/bin", "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIA1", "AWS_ENDPOINT_URL=http://evil", "AWS_ENDPOINT_URL_EC2=http://evil", "SECRET=x"})
	got := awsEnv(e, "http://127.0.0.1:9000")
	want := []string{"AWS_ACCESS_KEY_ID=AKIA1", "AWS_ENDPOINT_URL_EC2=http://127.0.0.1:9000", "AWS_REGION=us-east-1", "PATH=/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("awsEnv = %q, want %q", got, want)
	}
	if got := awsEnv(e, ""); slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "AWS_ENDPOINT_URL") }) {
		t.Errorf("awsEnv without a configured endpoint = %q", got)
	}
}
