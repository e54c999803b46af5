package bootstrap

import (
	"testing"
	"time"
)

func TestPhasesLine(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	for _, tc := range []struct {
		name string
		run  func(p *phases)
		want string
	}{
		{"none", func(*phases) {}, "debug: setup took 0.0ms: "},
		{"sequence", func(p *phases) {
			p.mark("sweep", at(0.25))
			p.mark("job dir", at(1.5))
		}, "debug: setup took 1.5ms: sweep 0.2ms, job dir 1.2ms"},
		{"beside", func(p *phases) {
			p.mark("docker config", at(2))
			p.markBeside("builder", "cache", 3*time.Millisecond, at(14))
			p.mark("job state", at(14.5))
		}, "debug: setup took 14.5ms: docker config 2.0ms, builder 12.0ms ‖ cache 3.0ms, job state 0.5ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPhases(t0)
			tc.run(p)
			if got := p.line(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
