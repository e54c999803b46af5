// Command fuzz runs every fuzz target of the module for a bounded time each:
// `make test` runs it for a few seconds a target (the seed corpora already ran
// as plain tests), `make fuzz` for longer. Targets are found in the test
// files, so a new one is fuzzed without being listed anywhere. A failure
// prints the failing input's file (under the package's testdata/fuzz, which
// `go test` then replays as a seed) and makes the command exit 1.
//
//	go run ./test/fuzz [-fuzztime 5s] [-run REGEXP] [PACKAGES]
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type target struct{ pkg, name string }

func main() {
	fuzztime := flag.Duration("fuzztime", 5*time.Second, "how long to fuzz each target")
	only := flag.String("run", "", "fuzz only the targets whose name matches this regexp")
	flag.Parse()
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	var match *regexp.Regexp
	if *only != "" {
		match = regexp.MustCompile(*only)
	}
	targets, err := list(pkgs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fuzz: %v\n", err)
		os.Exit(1)
	}
	failed := 0
	start := time.Now()
	for _, t := range targets {
		if match != nil && !match.MatchString(t.name) {
			continue
		}
		t0 := time.Now()
		fuzz := func() ([]byte, error) {
			return exec.Command("go", "test", "-run", "^$", "-fuzz", "^"+t.name+"$", "-fuzztime", fuzztime.String(), t.pkg).CombinedOutput()
		}
		out, err := fuzz()
		if err != nil && engineDeadline(out) {
			// The engine's workers missed its own deadline on a loaded
			// machine; no input failed. Once more, then it is not a failure.
			if out, err = fuzz(); err != nil && engineDeadline(out) {
				err = nil
			}
		}
		status := "ok"
		if err != nil {
			status, failed = "FAIL", failed+1
			os.Stdout.Write(out)
		}
		fmt.Printf("fuzz %-4s %s %s (%s, %s)\n", status, t.pkg, t.name, execs(out), time.Since(t0).Round(time.Millisecond))
	}
	fmt.Printf("fuzz: %d target(s), %d failed, %s each, %s in all\n", len(targets), failed, *fuzztime, time.Since(start).Round(time.Second))
	if failed > 0 || len(targets) == 0 {
		os.Exit(1)
	}
}

// list finds the fuzz targets of pkgs: the "func FuzzX(" declarations in
// their in-package test files (no test binary is built or run to find them).
func list(pkgs []string) ([]target, error) {
	out, err := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{join .TestGoFiles \" \"}}"}, pkgs...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	decl := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	var targets []target
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 3 || fields[2] == "" {
			continue
		}
		for _, file := range strings.Fields(fields[2]) {
			src, err := os.ReadFile(filepath.Join(fields[1], file))
			if err != nil {
				return nil, err
			}
			for _, m := range decl.FindAllSubmatch(src, -1) {
				targets = append(targets, target{pkg: fields[0], name: string(m[1])})
			}
		}
	}
	return targets, nil
}

// execs is the last "execs: N" count `go test -fuzz -v` style output holds.
func execs(out []byte) string {
	last := ""
	for _, m := range regexp.MustCompile(`execs: (\d+)`).FindAllSubmatch(out, -1) {
		last = string(m[1])
	}
	if last == "" {
		return "execs unknown"
	}
	return last + " execs"
}

// engineDeadline reports whether a failed fuzz run failed only because the
// fuzzing engine's workers did not stop by its -fuzztime deadline (a loaded
// machine), not because an input failed: no failing input was written.
func engineDeadline(out []byte) bool {
	return bytes.Contains(out, []byte("context deadline exceeded")) && !bytes.Contains(out, []byte("Failing input written to"))
}
