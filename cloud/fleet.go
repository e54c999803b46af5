package cloud

import "time"

// Tag is one EC2 tag filter.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// EC2Request is what `dockhand-cloud fleet-ec2` reads as JSON on stdin.
type EC2Request struct {
	Region   string    `json:"region,omitempty"`
	Tags     []Tag     `json:"tags"`
	Address  string    `json:"address"` // private or public
	Deadline time.Time `json:"deadline"`
}

// EC2Reply is its answer: the addresses of the running instances, as EC2
// gave them (checked by the caller).
type EC2Reply struct {
	Addresses []string `json:"addresses"`
}
