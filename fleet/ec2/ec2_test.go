package ec2

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

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
	req := fleet.EC2Request{Region: "us-east-1", Tags: []fleet.Tag{{Key: "Env", Value: "ci"}, {Key: "Role", Value: "buildkitd"}}, Address: "private", Deadline: time.Now().Add(10 * time.Second)}
	got, err := Describe(context.Background(), req)
	if err != nil || !slices.Equal(got, []string{"10.0.0.1", "10.0.0.5"}) {
		t.Fatalf("Describe = %v, %v; want the two running ci builders of us-east-1", got, err)
	}
	req.Address = "public"
	if got, err := Describe(context.Background(), req); err != nil || !slices.Equal(got, []string{"3.0.0.1"}) {
		t.Errorf("public: %v, %v", got, err)
	}
	if n := s.Calls(ecrapi.OpDescribeInstances); n != 2 {
		t.Errorf("%d DescribeInstances calls, want 2", n)
	}

	// A wrong key is refused by the signature check.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, err := Describe(context.Background(), req); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("with a wrong secret: %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fleet-secret")

	// A slow control plane is cut at the deadline.
	s.SetEC2Delay(time.Minute)
	req.Deadline = time.Now().Add(300 * time.Millisecond)
	start := time.Now()
	if _, err := Describe(context.Background(), req); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("with a slow EC2: %v after %s", err, time.Since(start))
	}
}
