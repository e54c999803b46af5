package main

import (
	"context"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/fleet/ec2"
)

// fleetEC2 is `dockhand-cloud fleet-ec2`: the running instances of a
// builder fleet by tag, a cloud.EC2Request on stdin, a cloud.EC2Reply (or an
// error line on stderr) back.
var fleetEC2 = jsonCommand(func(ctx context.Context, req cloud.EC2Request) (cloud.EC2Reply, error) {
	addrs, err := ec2.Describe(ctx, req)
	return cloud.EC2Reply{Addresses: addrs}, err
})
