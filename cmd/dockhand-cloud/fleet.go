package main

import (
	"context"
	"io"

	"github.com/dockhand-ci/dockhand/fleet"
	"github.com/dockhand-ci/dockhand/fleet/ec2"
)

// fleetEC2 is `dockhand-cloud fleet-ec2`: the running instances of a
// builder fleet by tag, a fleet.EC2Request on stdin, a fleet.EC2Reply (or an
// error line on stderr) back.
func fleetEC2(args []string, stdout, stderr io.Writer) error {
	var failed error
	err := jsonCommand(func(req fleet.EC2Request) any {
		addrs, err := ec2.Describe(context.Background(), req)
		failed = err
		return fleet.EC2Reply{Addresses: addrs}
	})(args, stdout, stderr)
	if err != nil {
		return err
	}
	return failed
}
