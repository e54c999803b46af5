package report

import (
	"fmt"
	"strings"
	"time"
)

// barWidth is the number of cells of a row's time bar.
const barWidth = 10

// Bar cells: time in cached steps, time in steps that ran.
const (
	barCached   = "█"
	barExecuted = "░"
)

// Markdown is the build annotation: a heading, a legend and one table row
// per build (as many as fit under MaxAnnotationBytes, then one row saying
// how many more), in the Markdown and HTML Buildkite renders in annotations (a
// GitHub-flavoured table, <code>, <br>, no images). Every ref in it is
// redacted of userinfo (New does that).
func Markdown(r Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#### dockhand: %d build(s) on %s\n\n", len(r.Builds), builderLabel(r.Builder))
	cached, total := 0, 0
	for _, x := range r.Builds {
		cached += x.CachedSteps
		total += x.TotalSteps
	}
	fmt.Fprintf(&b, "%d of %d steps from the cache · builder chosen in %s · setup %s · bar: <code>%s</code> time in cached steps, <code>%s</code> time in steps that ran\n\n",
		cached, total, ms(r.Builder.ChoiceMS), ms(r.SetupMS), barCached, barExecuted)
	b.WriteString("| build | node | time | cached steps | cache read | cache written | context | pushed |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.Retries {
		b.WriteString(RetryRow(x))
		b.WriteByte('\n')
	}
	for i, x := range r.Builds {
		row := Row(r, x)
		if left := len(r.Builds) - i; b.Len()+len(row)+1+len(moreRow(left)) > annotationBudget {
			b.WriteString(moreRow(left))
			break
		}
		b.WriteString(row)
		b.WriteByte('\n')
	}
	return b.String()
}

// annotationBudget is what Markdown may write: under MaxAnnotationBytes by
// a margin for the agent's redaction, which may lengthen the body
// ("[REDACTED]" for a shorter secret).
const annotationBudget = MaxAnnotationBytes - 64<<10

// moreRow is the last row of an annotation that has no room for every
// build: how many are left out, and where they all are.
func moreRow(n int) string {
	return fmt.Sprintf("| … %d more builds: the job report in the job log lists every build |  |  |  |  |  |  |  |\n", n)
}

// Row is one build's table row.
func Row(r Report, x Build) string {
	name := code(x.Name)
	if x.BakeTarget != "" {
		name = "bake " + code(x.BakeTarget)
	}
	if x.Target != "" && x.Name != "target "+x.Target {
		name += "<br>target " + code(x.Target)
	}
	if x.Error != "" {
		name += "<br>failed: " + cell(x.Error)
	}
	node := code(x.Node)
	if x.NodeName != "" {
		node = cell(x.NodeName) + "<br>" + node
	}
	timeCell := fmt.Sprintf("%s<br><code>%s</code>", ms(x.DurationMS), Bar(x.CachedMS, x.ExecutedMS))
	steps := fmt.Sprintf("%d / %d", x.CachedSteps, x.TotalSteps)
	read := "—"
	if len(x.CacheFrom) > 0 {
		refs := make([]string, len(x.CacheFrom))
		for i, f := range x.CacheFrom {
			refs[i] = code(f)
		}
		read = strings.Join(refs, "<br>")
	}
	written := "—"
	switch x.CacheWrite {
	case WriteDone:
		written = code(x.CacheTo)
	case WritePullRequest:
		written = code(x.CacheTo) + "<br>pull request " + cell(r.Job.PullRequest) + "'s own ref"
	case WriteSkippedFork:
		written = "skipped: pull request from a fork"
	case WriteFailed:
		written = "failed: " + cell(x.CacheWriteError)
	case WriteNone:
		written = "nothing"
	}
	pushed := "—"
	if len(x.Pushed) > 0 {
		refs := make([]string, len(x.Pushed))
		for i, p := range x.Pushed {
			refs[i] = code(p.Ref)
			if p.Digest != "" {
				refs[i] += "<br>" + code(p.Digest)
			}
		}
		pushed = strings.Join(refs, "<br>")
	}
	return "| " + strings.Join([]string{name, node, timeCell, steps, read, written, Bytes(x.ContextBytes), pushed}, " | ") + " |"
}

// RetryRow is the row of a build that lost its node: where, why, and where
// it ran again (or why it did not).
func RetryRow(x Retry) string {
	name := "lost its node: " + cell(x.Reason)
	node := code(x.Lost) + "<br>→ " + code(x.Node) + " (run again, once)"
	switch {
	case x.Node == "":
		node = code(x.Lost) + "<br>not run again: " + cell(x.Error)
	case x.Error != "":
		name += "<br>failed again: " + cell(x.Error)
	}
	return "| " + strings.Join([]string{name, node, "—", "—", "—", "—", "—", "—"}, " | ") + " |"
}

// Bar is a row's time bar: barWidth cells split between time in cached
// steps and time in steps that ran (at least one cell each when non-zero).
func Bar(cachedMS, executedMS int64) string {
	total := cachedMS + executedMS
	if total <= 0 {
		return strings.Repeat(barExecuted, barWidth)
	}
	n := int((cachedMS*barWidth + total/2) / total)
	if cachedMS > 0 && n == 0 {
		n = 1
	}
	if executedMS > 0 && n == barWidth {
		n = barWidth - 1
	}
	return strings.Repeat(barCached, n) + strings.Repeat(barExecuted, barWidth-n)
}

// Bytes is a byte count for people: "512 B", "2.3 kB", "41.0 MB".
func Bytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"kB", "MB", "GB"} {
		f /= 1000
		if f < 1000 || u == "GB" {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return ""
}

func builderLabel(b Builder) string {
	if b.Kind == "" {
		return "no dockhand builder"
	}
	return b.Kind + " builder " + code(b.Name)
}

func ms(n int64) string {
	d := time.Duration(n) * time.Millisecond
	if d < time.Second {
		return d.String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// code is s as inline code in a table cell, escaped as cell escapes it.
func code(s string) string {
	return "<code>" + cell(s) + "</code>"
}

// maxCellText bounds the text of one field of a cell (a ref, an error), in
// bytes before escaping: a build's text is not the place for a megabyte.
const maxCellText = 512

// cell escapes s, text a build controls (a failing RUN's command, a
// --target, an image name), for a table cell: every ASCII punctuation
// character but "," "-" and "/" becomes a numeric character reference, so
// neither HTML nor Markdown (links, images, emphasis, code spans, autolinks,
// the pipe that ends a cell) is made of it, even inside <code>; a line
// break becomes <br>, other control characters a space, so the table does
// not end. Text past maxCellText bytes is cut, with "…".
func cell(s string) string {
	cut := false
	if len(s) > maxCellText {
		s = strings.ToValidUTF8(s[:maxCellText], "")
		cut = true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\r' || c == '\n':
			if c == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteString("<br>")
		case c < 0x20 || c == 0x7f:
			b.WriteByte(' ')
		case c == ',' || c == '-' || c == '/':
			b.WriteByte(c)
		case c > ' ' && c < 0x7f && !isAlnum(c):
			fmt.Fprintf(&b, "&#%d;", c)
		default:
			b.WriteByte(c)
		}
	}
	if cut {
		b.WriteString("…")
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// MaxAnnotationBytes is the largest annotation body the agent sends
// (buildkite-agent annotate refuses a bigger one, as the API does).
const MaxAnnotationBytes = 1 << 20
