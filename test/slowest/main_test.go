package main

import (
	"strings"
	"testing"
)

const run = `{"Action":"start","Package":"a"}
{"Action":"output","Package":"a","Test":"TestQuick","Output":"=== RUN   TestQuick\n"}
{"Action":"pass","Package":"a","Test":"TestQuick","Elapsed":0.2}
{"Action":"output","Package":"a","Test":"TestSlow","Output":"noise of a passing test\n"}
{"Action":"pass","Package":"a","Test":"TestSlow/sub","Elapsed":9}
{"Action":"pass","Package":"a","Test":"TestSlow","Elapsed":9.5}
{"Action":"output","Package":"a","Test":"TestBroken","Output":"    x_test.go:9: want 1, got 2\n"}
{"Action":"fail","Package":"a","Test":"TestBroken","Elapsed":3}
{"Action":"fail","Package":"a","Elapsed":13}
{"ImportPath":"b [b.test]","Action":"build-output","Output":"b/x.go:3:1: syntax error\n"}
{"ImportPath":"b [b.test]","Action":"build-fail"}
FAIL	b [build failed]
{"Action":"pass","Package":"c","Elapsed":0.1}
`

// A failing test's output, build errors and go test's own lines are shown;
// a passing test's output is not; the slowest top-level tests come first,
// subtests not listed.
func TestSummarize(t *testing.T) {
	var out strings.Builder
	slow, failed, err := summarize(strings.NewReader(run), &out, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("failed = false, want true")
	}
	got := out.String()
	for _, want := range []string{"want 1, got 2", "FAIL a\t13.0s", "syntax error", "FAIL\tb [build failed]", "ok   c\t0.1s"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "noise of a passing test") {
		t.Errorf("a passing test's output was shown:\n%s", got)
	}
	if len(slow) != 2 || slow[0].name != "a.TestSlow" || slow[1].name != "a.TestBroken" {
		t.Errorf("slowest = %v, want a.TestSlow then a.TestBroken", slow)
	}
}

func TestSummarizePassingRunIsNotFailed(t *testing.T) {
	_, failed, err := summarize(strings.NewReader(`{"Action":"pass","Package":"c","Elapsed":0.1}`+"\n"), &strings.Builder{}, 5)
	if err != nil || failed {
		t.Errorf("failed = %v, err = %v; want false, nil", failed, err)
	}
}

// A test the binary died under (go test -timeout's panic) has no end event
// of its own: its output, which says where it hung, is shown with the
// package's failure.
func TestSummarizeShowsATimedOutTest(t *testing.T) {
	const timedOut = `{"Action":"run","Package":"a","Test":"TestHang"}
{"Action":"output","Package":"a","Test":"TestHang","Output":"    x_test.go:5: before the hang\n"}
{"Action":"output","Package":"a","Test":"TestHang","Output":"panic: test timed out after 2s\n"}
{"Action":"fail","Package":"a","Elapsed":2}
`
	var out strings.Builder
	_, failed, err := summarize(strings.NewReader(timedOut), &out, 5)
	if err != nil || !failed {
		t.Fatalf("failed = %v, err = %v; want true, nil", failed, err)
	}
	got := out.String()
	for _, want := range []string{"before the hang", "panic: test timed out after 2s", "FAIL a\t2.0s"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
