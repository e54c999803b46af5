package ec2

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/fleet"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
)

// TestDescribeRunningInstancesByTag: the real SDK against the fake EC2
// (query protocol, SigV4 checked): only running instances with every tag,
// in the asked region.
func TestDescribeRunningInstancesByTag(t *testing.T) {
	s := ecrapi.StartForSDK(t, ecrapi.Options{Keys: map[string]string{"AKIAFLEETTEST0000001": "fleet-secret"}, Password: "p"}, "AWS_ENDPOINT_URL_EC2")
	builder := map[string]string{"Role": "buildkitd", "Env": "ci"}
	is := []ecrapi.Instance{
		{ID: "i-1", Region: "us-east-1", State: "running", PrivateIP: "10.0.0.1", PublicIP: "3.0.0.1", Tags: builder},
		{ID: "i-2", Region: "us-east-1", State: "stopped", PrivateIP: "10.0.0.2", Tags: builder},
		{ID: "i-3", Region: "us-east-1", State: "running", PrivateIP: "10.0.0.3", Tags: map[string]string{"Role": "buildkitd", "Env": "prod"}},
		{ID: "i-4", Region: "eu-west-1", State: "running", PrivateIP: "10.0.0.4", Tags: builder},
	}
	is = append(is, ecrapi.Instance{ID: "i-5", Region: "us-east-1", State: "running", PrivateIP: "10.0.0.5", Tags: builder},
		ecrapi.Instance{ID: "i-6", Region: "us-east-1", State: "running", PrivateIP: "10.1.0.1", Tags: map[string]string{"Role": "web"}})
	s.SetInstances(is...)
	req := cloud.EC2Request{Region: "us-east-1", Tags: []cloud.Tag{{Key: "Env", Value: "ci"}, {Key: "Role", Value: "buildkitd"}}, Address: "private", Deadline: time.Now().Add(10 * time.Second)}
	got, err := Describe(t.Context(), req)
	if err != nil || !slices.Equal(got, []string{"10.0.0.1", "10.0.0.5"}) {
		t.Fatalf("Describe = %v, %v; want the two running ci builders of us-east-1", got, err)
	}
	req.Address = "public"
	if got, err := Describe(t.Context(), req); err != nil || !slices.Equal(got, []string{"3.0.0.1"}) {
		t.Errorf("public: %v, %v", got, err)
	}

	if n := s.Calls(ecrapi.OpDescribeInstances); n != 2 {
		t.Errorf("%d DescribeInstances calls, want 2", n)
	}

	// A draining builder (fleet.DrainTag) is no member; "false" does not
	// drain; when every builder drains, they are all members still.
	drain := func(v string) map[string]string {
		return map[string]string{"Role": "buildkitd", "Env": "ci", fleet.DrainTag: v}
	}
	req.Address = "private"
	s.SetInstances(append(slices.Clone(is),
		ecrapi.Instance{ID: "i-7", Region: "us-east-1", State: "running", PrivateIP: "10.0.0.7", Tags: drain("true")},
		ecrapi.Instance{ID: "i-8", Region: "us-east-1", State: "running", PrivateIP: "10.0.0.8", Tags: drain("")},
		ecrapi.Instance{ID: "i-9", Region: "us-east-1", State: "running", PrivateIP: "10.0.0.9", Tags: drain("False")})...)
	if got, err := Describe(t.Context(), req); err != nil || !slices.Equal(got, []string{"10.0.0.1", "10.0.0.5", "10.0.0.9"}) {
		t.Errorf("with draining builders: %v, %v; want them left out", got, err)
	}
	s.SetInstances(ecrapi.Instance{ID: "i-7", Region: "us-east-1", State: "running", PrivateIP: "10.0.0.7", Tags: drain("true")})
	if got, err := Describe(t.Context(), req); err != nil || !slices.Equal(got, []string{"10.0.0.7"}) {
		t.Errorf("every builder draining: %v, %v; want them all still", got, err)
	}
	s.SetInstances(is...)

	// A wrong key is refused by the signature check.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, err := Describe(t.Context(), req); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("with a wrong secret: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fleet-secret")

	// A slow control plane is cut at the deadline.
	s.SetEC2Delay(time.Minute)
	req.Deadline = time.Now().Add(300 * time.Millisecond)
	start := time.Now()
	if _, err := Describe(t.Context(), req); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("with a slow EC2: %v after %s", err, time.Since(start))
	}
}

// TestDescribeReadsEveryPage: EC2 pages a filtered listing, so a pool in an
// account of 5,500 instances comes on pages that are mostly empty: every
// page is read (six here), the tags' wildcards are EC2's, and past
// fleet.MaxMembers matches the answer is refused without reading on.
func TestDescribeReadsEveryPage(t *testing.T) {
	s := ecrapi.StartForSDK(t, ecrapi.Options{Keys: map[string]string{"AKIAFLEETTEST0000001": "fleet-secret"}, Password: "p"}, "AWS_ENDPOINT_URL_EC2")
	var is []ecrapi.Instance
	for n := range 5500 {
		role := "web"
		if n == 10 || n == 5499 {
			role = "buildkitd-" + fmt.Sprint(n)
		}
		is = append(is, ecrapi.Instance{ID: fmt.Sprintf("i-%d", n), Region: "us-east-1", State: "running",
			PrivateIP: fmt.Sprintf("10.%d.%d.%d", n>>16, (n>>8)&255, n&255), Tags: map[string]string{"Role": role}})
	}
	s.SetInstances(is...)
	req := cloud.EC2Request{Region: "us-east-1", Tags: []cloud.Tag{{Key: "Role", Value: "buildkitd-*"}}, Address: "private", Deadline: time.Now().Add(20 * time.Second)}
	got, err := Describe(t.Context(), req)
	if err != nil || !slices.Equal(got, []string{"10.0.0.10", "10.0.21.123"}) {
		t.Errorf("Describe = %v, %v; want the two builders, on the first and the last page", got, err)
	}
	if n := s.Calls(ecrapi.OpDescribeInstances); n != 6 {
		t.Errorf("%d DescribeInstances calls, want 6 (pages of 1000)", n)
	}

	for i := range is[:1200] {
		is[i].Tags = map[string]string{"Role": "buildkitd-x"}
	}
	s.SetInstances(is...)
	before := s.Calls(ecrapi.OpDescribeInstances)
	if _, err := Describe(t.Context(), req); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d running instances", fleet.MaxMembers)) {
		t.Errorf("1,200 matches: %v, want refused past the member cap", err)
	}
	if n := s.Calls(ecrapi.OpDescribeInstances) - before; n != 1 {
		t.Errorf("past the cap after %d pages, want 1", n)
	}
}

// TestDescribeRegion: ec2:// without a region (and no AWS_REGION, as on the
// stack before its environment hook runs) takes the instance's region from
// the metadata service (IMDSv2); with no metadata either, one line says to
// name it.
func TestDescribeRegion(t *testing.T) {
	ecrapi.StartForSDK(t, ecrapi.Options{Keys: map[string]string{"AKIAFLEETTEST0000001": "fleet-secret"}, Password: "p"}, "AWS_ENDPOINT_URL_EC2").
		SetInstances(ecrapi.Instance{ID: "i-1", Region: "eu-central-1", State: "running", PrivateIP: "10.0.0.1", Tags: map[string]string{"Role": "buildkitd"}})
	req := cloud.EC2Request{Tags: []cloud.Tag{{Key: "Role", Value: "buildkitd"}}, Address: "private", Deadline: time.Now().Add(10 * time.Second)}
	// StartForSDK turned instance metadata off: no region anywhere.
	_, err := Describe(t.Context(), req)
	if err == nil || !strings.HasPrefix(err.Error(), "ec2:// names no region, and neither AWS_REGION nor the instance metadata gives one") ||
		!strings.HasSuffix(err.Error(), "name it, as in ec2://us-east-1?tag:KEY=VALUE") || strings.Contains(err.Error(), "\n") {
		t.Errorf("no region: %v, want one line saying to name it", err)
	}
	m := ecrapi.StartIMDS(t, "eu-central-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", m.URL)
	if got, err := Describe(t.Context(), req); err != nil || !slices.Equal(got, []string{"10.0.0.1"}) || m.Gets() == 0 {
		t.Errorf("region from the metadata: %v, %v after %d metadata GETs", got, err, m.Gets())
	}
}
