// Command slowest reads `go test -json` on stdin and prints what a plain
// `go test` would have shown of it — every failing test's output, build
// errors, one line per package — then the slowest tests of the run, so CI's
// output says where the time went. It exits 1 when anything failed.
//
//	go test -json ./... | go run ./test/slowest [-n 20]
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events
	Test       string
	Elapsed    float64
	Output     string
}

type result struct {
	name    string // package or package.Test
	elapsed time.Duration
}

func main() {
	n := flag.Int("n", 20, "how many of the slowest tests to list")
	flag.Parse()
	slow, failed, err := summarize(os.Stdin, os.Stdout, *n)
	if err != nil {
		fmt.Fprintf(os.Stderr, "slowest: %v\n", err)
		os.Exit(2)
	}
	fmt.Printf("\nslowest %d tests:\n", len(slow))
	for _, r := range slow {
		fmt.Printf("%9.1fs  %s\n", r.elapsed.Seconds(), r.name)
	}
	if failed {
		os.Exit(1)
	}
}

// summarize copies what matters of the events in r to w and returns the n
// slowest top-level tests and whether anything failed.
func summarize(r io.Reader, w io.Writer, n int) ([]result, bool, error) {
	outputs := map[string]*strings.Builder{} // package or package.Test → its output so far
	var order []string                       // outputs' keys as they came
	var tests []result
	failed := false
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 16<<20)
	for s.Scan() {
		var e event
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			fmt.Fprintln(w, s.Text()) // not an event: go test's own message
			continue
		}
		key := e.Package
		if e.Test != "" {
			key += "." + e.Test
		}
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "build-fail":
			failed = true
		case "output":
			if outputs[key] == nil {
				outputs[key] = &strings.Builder{}
				order = append(order, key)
			}
			outputs[key].WriteString(e.Output)
		case "pass", "skip":
			if e.Test == "" {
				fmt.Fprintf(w, "%-4s %s\t%.1fs\n", map[string]string{"pass": "ok", "skip": "?"}[e.Action], e.Package, e.Elapsed)
			} else if !strings.Contains(e.Test, "/") {
				tests = append(tests, result{key, time.Duration(e.Elapsed * float64(time.Second))})
			}
			delete(outputs, key)
		case "fail":
			failed = true
			if e.Test == "" {
				// Tests that never ended: the binary died under them (a
				// timeout's panic, a crash), and their output says where.
				for _, k := range order {
					if b := outputs[k]; b != nil && strings.HasPrefix(k, e.Package+".") {
						fmt.Fprint(w, b.String())
						delete(outputs, k)
					}
				}
			}
			if b := outputs[key]; b != nil {
				fmt.Fprint(w, b.String())
			}
			delete(outputs, key)
			if e.Test == "" {
				fmt.Fprintf(w, "FAIL %s\t%.1fs\n", e.Package, e.Elapsed)
			} else if !strings.Contains(e.Test, "/") {
				tests = append(tests, result{key, time.Duration(e.Elapsed * float64(time.Second))})
			}
		}
	}
	slices.SortFunc(tests, func(a, b result) int { return cmp.Compare(b.elapsed, a.elapsed) })
	return tests[:min(n, len(tests))], failed, s.Err()
}
