// Package zzglob is a small stand-in for drjosh.dev/zzglob, which the Go
// module proxy here does not serve. It implements only the API that
// buildkite-agent v3.138 calls, on top of doublestar, so the real agent can be
// built for dockhand's end-to-end tests. It is test tooling: dockhand itself
// never imports it.
package zzglob

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Pattern is a parsed glob.
type Pattern struct {
	text string
}

type parseConfig struct{ expandTilde bool }

// ParseOption changes how a pattern is parsed.
type ParseOption func(*parseConfig)

// ExpandTilde turns a leading ~ into the home directory.
func ExpandTilde(on bool) ParseOption { return func(c *parseConfig) { c.expandTilde = on } }

// The options below are accepted for compatibility and change nothing.
func AllowEscaping(bool) ParseOption    { return func(*parseConfig) {} }
func AllowQuestion(bool) ParseOption    { return func(*parseConfig) {} }
func AllowAlternation(bool) ParseOption { return func(*parseConfig) {} }
func AllowCharClass(bool) ParseOption   { return func(*parseConfig) {} }
func WithSwapSlashes(bool) ParseOption  { return func(*parseConfig) {} }

// Parse checks a pattern and returns it.
func Parse(pattern string, opts ...ParseOption) (*Pattern, error) {
	c := parseConfig{expandTilde: true}
	for _, o := range opts {
		o(&c)
	}
	if c.expandTilde && (pattern == "~" || strings.HasPrefix(pattern, "~/")) {
		if home, err := os.UserHomeDir(); err == nil {
			pattern = home + pattern[1:]
		}
	}
	pattern = filepath.ToSlash(pattern)
	if !doublestar.ValidatePattern(pattern) {
		return nil, errors.New("zzglob: invalid pattern " + pattern)
	}
	return &Pattern{text: pattern}, nil
}

// MustParse is Parse that panics on a bad pattern.
func MustParse(pattern string, opts ...ParseOption) *Pattern {
	p, err := Parse(pattern, opts...)
	if err != nil {
		panic(err)
	}
	return p
}

// String returns the pattern text.
func (p *Pattern) String() string { return p.text }

// Match reports whether a slash-separated path matches the whole pattern.
func (p *Pattern) Match(name string) bool {
	ok, _ := doublestar.Match(p.text, filepath.ToSlash(name))
	return ok
}

type globConfig struct {
	intermediate bool
	symlinks     bool
}

// GlobOption changes how Glob walks.
type GlobOption func(*globConfig)

// WalkIntermediateDirs reports the fixed root of the pattern to the callback too.
func WalkIntermediateDirs(on bool) GlobOption { return func(c *globConfig) { c.intermediate = on } }

// TraverseSymlinks follows symlinked directories while walking.
func TraverseSymlinks(on bool) GlobOption { return func(c *globConfig) { c.symlinks = on } }

// The options below are accepted for compatibility and change nothing.
func WithFilesystem(fs.FS) GlobOption  { return func(*globConfig) {} }
func TranslateSlashes(bool) GlobOption { return func(*globConfig) {} }
func GoroutineLimit(int) GlobOption    { return func(*globConfig) {} }

// Glob calls fn for every existing path that matches the pattern.
func (p *Pattern) Glob(fn fs.WalkDirFunc, opts ...GlobOption) error {
	c := globConfig{symlinks: true}
	for _, o := range opts {
		o(&c)
	}
	root, rest := doublestar.SplitPattern(p.text)
	if rest == "" || !hasMeta(rest) {
		name := p.text
		info, err := os.Lstat(name)
		if err != nil {
			return fn(name, nil, err)
		}
		return fn(name, fs.FileInfoToDirEntry(info), nil)
	}
	info, err := os.Stat(root)
	if err != nil {
		return fn(root, nil, err)
	}
	if c.intermediate {
		if err := fn(root, fs.FileInfoToDirEntry(info), nil); err != nil {
			if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
				return nil
			}
			return err
		}
	}
	var gopts []doublestar.GlobOption
	if !c.symlinks {
		gopts = append(gopts, doublestar.WithNoFollow())
	}
	err = doublestar.GlobWalk(os.DirFS(root), rest, func(rel string, d fs.DirEntry) error {
		return fn(path.Join(root, rel), d, nil)
	}, gopts...)
	if errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

// MultiGlob globs each pattern in turn.
func MultiGlob(ctx context.Context, patterns []*Pattern, fn fs.WalkDirFunc, opts ...GlobOption) error {
	for _, p := range patterns {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.Glob(fn, opts...); err != nil {
			return err
		}
	}
	return nil
}

func hasMeta(s string) bool { return strings.ContainsAny(s, "*?[{\\") }
