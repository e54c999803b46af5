// Package ec2 lists a builder fleet's running instances by tag with
// aws-sdk-go-v2 (ec2:DescribeInstances): the default credential chain, the
// SDK's endpoint settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2). It is
// heavy: only cmd/dockhand-cloud imports it.
package ec2

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/dockhand-ci/dockhand/awsconfig"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/fleet"
)

// Filters are the DescribeInstances filters of req: every tag, running only.
func Filters(req cloud.EC2Request) []types.Filter {
	fs := []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}
	for _, t := range req.Tags {
		fs = append(fs, types.Filter{Name: aws.String("tag:" + t.Key), Values: []string{t.Value}})
	}
	return fs
}

// Describe returns the private (or public) addresses of the running
// instances that carry every tag of req, by the request's deadline. EC2
// pages a filtered listing over the account's instances, so pages may be
// short or empty and still carry a NextToken: they are read to the end (or
// the deadline), stopping as soon as the matches pass fleet.MaxMembers. A
// request with no region takes the SDK's (AWS_REGION…), else the instance
// metadata's; with neither it fails with one line saying so.
func Describe(ctx context.Context, req cloud.EC2Request) ([]string, error) {
	if !req.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Deadline)
		defer cancel()
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Settings{Region: req.Region, RegionFromIMDS: req.Region == ""})
	if err == nil && cfg.Region == "" {
		err = errors.New("no region")
	}
	if err != nil && req.Region == "" {
		return nil, fmt.Errorf("ec2:// names no region, and neither AWS_REGION nor the instance metadata gives one (%w): name it, as in ec2://us-east-1?tag:KEY=VALUE", err)
	}
	if err != nil {
		return nil, err
	}
	client := ec2.NewFromConfig(cfg)
	in := &ec2.DescribeInstancesInput{Filters: Filters(req), MaxResults: aws.Int32(1000)}
	var addrs, drained []string
	p := ec2.NewDescribeInstancesPaginator(client, in)
	for page := 1; p.HasMorePages(); page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ec2:DescribeInstances (page %d): %w", page, err)
		}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				if i.State != nil && i.State.Name != types.InstanceStateNameRunning {
					continue // the filter already says so; a fake or a race may not
				}
				a := aws.ToString(i.PrivateIpAddress)
				if req.Address == "public" {
					a = aws.ToString(i.PublicIpAddress)
				}
				switch {
				case a == "":
				case draining(i.Tags):
					drained = append(drained, a)
				default:
					addrs = append(addrs, a)
				}
			}
		}
		if len(addrs) > fleet.MaxMembers {
			return nil, fmt.Errorf("ec2:DescribeInstances: more than %d running instances carry these tags", fleet.MaxMembers)
		}
	}
	if len(addrs) == 0 {
		// Every builder is draining: a build on one beats no build.
		return drained, nil
	}
	return addrs, nil
}

// draining reports whether an instance's tags drain it (fleet.DrainTag).
func draining(tags []types.Tag) bool {
	for _, t := range tags {
		if aws.ToString(t.Key) == fleet.DrainTag {
			return fleet.Draining(aws.ToString(t.Value))
		}
	}
	return false
}
