package main

import (
	"context"

	"github.com/dockhand-ci/dockhand/fleet"
	"github.com/dockhand-ci/dockhand/fleet/ec2"
)

// fleetEC2 is `dockhand-cloud fleet-ec2`: the running instances of a
// builder fleet by tag, a fleet.EC2Request on stdin, a fleet.EC2Reply (or an
// error line on stderr) back.
var fleetEC2 = jsonCommand(func(req fleet.EC2Request) (fleet.EC2Reply, error) {
	addrs, err := ec2.Describe(context.Background(), req)
	return fleet.EC2Reply{Addresses: addrs}, err
})
