package bootstrap

import (
	"fmt"
	"strings"
	"time"
)

// phases times the bootstrap's setup, for the job log's debug line.
type phases struct {
	last time.Time
	list []phase
}

// phase is one step of the setup; with is a step that ran beside it.
type phase struct {
	name string
	took time.Duration
	with *phase
}

func newPhases(start time.Time) *phases { return &phases{last: start} }

// mark ends the phase called name at now.
func (p *phases) mark(name string, now time.Time) {
	p.list = append(p.list, phase{name: name, took: now.Sub(p.last)})
	p.last = now
}

// markBeside ends, at now, a phase called name that ran beside another
// called with, which took withTook.
func (p *phases) markBeside(name, with string, withTook time.Duration, now time.Time) {
	p.mark(name, now)
	p.list[len(p.list)-1].with = &phase{name: with, took: withTook}
}

// line is the debug line: the total, then each phase, concurrent ones
// joined by "‖" (the wall time counts the longer of the two).
func (p *phases) line() string {
	var total time.Duration
	parts := make([]string, 0, len(p.list))
	for _, ph := range p.list {
		total += ph.took
		s := ph.name + " " + msString(ph.took)
		if ph.with != nil {
			s += " ‖ " + ph.with.name + " " + msString(ph.with.took)
		}
		parts = append(parts, s)
	}
	return fmt.Sprintf("debug: setup took %s: %s", msString(total), strings.Join(parts, ", "))
}

// msString prints a duration in milliseconds with one decimal.
func msString(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
