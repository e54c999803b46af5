package ecrapi

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func ec2Client(s *Server) *ec2.Client {
	return ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, "")})
}

// TestEC2PagesAFilteredListing: as EC2 does, a page is the next MaxResults
// of the region's instances, filtered afterwards: pages come short or empty
// with a NextToken, and only reading to the end finds every match.
// MaxResults outside 5..1000 is refused.
func TestEC2PagesAFilteredListing(t *testing.T) {
	s := start(t)
	var is []Instance
	for n := range 23 {
		tags := map[string]string{"Role": "web"}
		if n == 2 || n == 3 || n == 21 {
			tags["Role"] = "buildkitd"
		}
		is = append(is, Instance{ID: fmt.Sprintf("i-%d", n), Region: "us-east-1", State: "running", PrivateIP: fmt.Sprintf("10.0.0.%d", n), Tags: tags})
	}
	s.SetInstances(append(is, Instance{ID: "i-eu", Region: "eu-west-1", State: "running", Tags: map[string]string{"Role": "buildkitd"}})...)
	in := &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5), Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{"buildkitd"}}}}
	var found []string
	var sizes []int
	p := ec2.NewDescribeInstancesPaginator(ec2Client(s), in)
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(out.Reservations))
		for _, r := range out.Reservations {
			found = append(found, aws.ToString(r.Instances[0].InstanceId))
		}
	}
	if !slices.Equal(found, []string{"i-2", "i-3", "i-21"}) || !slices.Equal(sizes, []int{2, 0, 0, 0, 1}) {
		t.Errorf("found %v on pages of %v; want i-2 i-3 i-21 on pages of [2 0 0 0 1]", found, sizes)
	}
	for _, bad := range []int32{4, 1001} {
		in.MaxResults = aws.Int32(bad)
		if _, err := ec2Client(s).DescribeInstances(t.Context(), in); apiCode(err) != "InvalidParameterValue" {
			t.Errorf("MaxResults %d: %v, want InvalidParameterValue", bad, err)
		}
	}
}

// TestEC2TagValueWildcards: * matches any run of characters, ? one, and a
// backslash makes either literal, as EC2's filters do.
func TestEC2TagValueWildcards(t *testing.T) {
	s := start(t)
	var is []Instance
	for _, v := range []string{"buildkitd", "buildkit", "build", "web", "build*", "rebuild"} {
		is = append(is, Instance{ID: "i-" + v, Region: "us-east-1", State: "running", Tags: map[string]string{"Role": v}})
	}
	s.SetInstances(is...)
	for pattern, want := range map[string][]string{
		"build*":    {"i-buildkitd", "i-buildkit", "i-build", "i-build*"},
		"buildkit?": {"i-buildkitd"},
		"*build":    {"i-build", "i-rebuild"},
		`build\*`:   {"i-build*"},
		"build":     {"i-build"},
		"?":         nil,
	} {
		out, err := ec2Client(s).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{
			Filters: []types.Filter{{Name: aws.String("tag:Role"), Values: []string{pattern}}}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range out.Reservations {
			got = append(got, aws.ToString(r.Instances[0].InstanceId))
		}
		if !slices.Equal(got, want) {
			t.Errorf("tag:Role=%s matched %v, want %v", pattern, got, want)
		}
	}
}

// TestIMDSv2: the SDK's metadata client, pointed at the fake by
// AWS_EC2_METADATA_SERVICE_ENDPOINT, reads the instance's region; a GET
// without a session token is refused, as with IMDSv1 off.
func TestIMDSv2(t *testing.T) {
	m := StartIMDS(t, "ap-southeast-2")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", m.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "")
	out, err := imds.New(imds.Options{}).GetRegion(t.Context(), nil)
	if err != nil || out.Region != "ap-southeast-2" || m.Gets() != 1 {
		t.Errorf("GetRegion = %+v, %v after %d GETs; want ap-southeast-2 after 1", out, err, m.Gets())
	}
	resp, err := http.Get(m.URL + "/latest/meta-data/placement/region")
	if err != nil {
		t.Fatalf("a GET without a token: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a GET without a token: %s, want 401", resp.Status)
	}
}
