package cachedimage

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// TagInput is everything the plugin's tag depends on, as data.
type TagInput struct {
	Dir                 string // the working directory (the job's checkout)
	Dockerfile          string // the dockerfile option ("" is Dockerfile)
	DockerfileInline    string // the dockerfile-inline option
	Target              string
	Machine             string   // `uname -m` of the agent
	BuildArgs           []string // in plugin list order
	AdditionalBuildArgs string
	CacheOn             []string          // in plugin list order
	Env                 map[string]string // the job environment, for build-args given without a value
	UTF8                bool              // the locale's character type is UTF-8 (bash's `?` then matches a character)
	Collation           string            // the LC_COLLATE locale, when it is not C, POSIX or C.UTF-8
	// JQ evaluates jq filters outside the exact subset (nil: ErrFullJQ).
	JQ JQFunc
}

// TagResult is the tag and how it was made.
type TagResult struct {
	Tag      string
	Sums     string   // the string the plugin hashes last
	Explain  []string // what went into the tag, one item per line
	Warnings []string
}

// ShowTag writes what o asks of a computed tag: each of r's warnings
// through warn, with --explain what went into it on explain ("+ " lines),
// with --print-tag the tag on out. It reports whether the command ends
// there (--print-tag).
func (o *Options) ShowTag(r TagResult, warn func(string), explain, out io.Writer) (bool, error) {
	for _, w := range r.Warnings {
		warn(w)
	}
	if o.Explain {
		for _, line := range r.Explain {
			fmt.Fprintf(explain, "+ %s\n", line)
		}
	}
	if o.PrintTag {
		_, err := fmt.Fprintln(out, r.Tag)
		return true, err
	}
	return false, nil
}

// ComputeTag computes the docker-ecr-cache plugin's (v2.2.1) image tag:
//
//	sums  = $(cd DIR; sha1sum BASENAME)           # the Dockerfile, "<hex>  <basename>"
//	sums += $(echo "$target" | sha1sum)           # "<hex>  -"
//	sums += $(uname -m | sha1sum)
//	sums += $(echo "NAME=value" | sha1sum)        # each build-arg; a bare NAME takes $NAME
//	sums += $(echo "$additional" | sha1sum)       # only when additional-build-args is set
//	for word in $cache_on (split, then globbed with globstar):
//	  FILE.json#FILTER: sums += $(echo -n "$(jq -r FILTER FILE)" | sha1sum)
//	  else:             sums += $(sha1sum "$word")  # "<hex>  <path as globbed>"; nothing if unreadable
//	tag = $(echo "$sums" | sha1sum | cut -c-7)
//
// It errors where the plugin would hash garbage silently and then fail or
// mislead: a missing Dockerfile, a jq filter that fails, a build-arg that is
// not a variable name.
func ComputeTag(in TagInput) (TagResult, error) {
	var r TagResult
	var sums strings.Builder
	add := func(piece, explain string) {
		sums.WriteString(piece)
		r.Explain = append(r.Explain, explain)
	}

	// The Dockerfile: only its content and base name count.
	if in.DockerfileInline != "" {
		if in.Dockerfile != "" {
			return r, fmt.Errorf("dockerfile and dockerfile-inline are both set: give one")
		}
		content := echoBytes(in.DockerfileInline) // the plugin writes it with echo
		add(fileLine(sha1Hex([]byte(content)), "Dockerfile"), "dockerfile-inline ("+plural(len(content), "byte")+")")
	} else {
		df := in.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if strings.ContainsAny(df, " \t\n*?[") {
			return r, fmt.Errorf("dockerfile %q: the plugin hashes this path unquoted (`cd ${dir}; sha1sum $(basename ${file})`), "+
				"so it cannot hold whitespace or glob characters", df)
		}
		sum, err := hashFile(resolve(in.Dir, df))
		if err != nil {
			return r, fmt.Errorf("dockerfile %q: %w", df, err)
		}
		add(fileLine(sum, path.Base(strings.TrimRight(df, "/"))), "dockerfile "+df)
	}
	add(stdinLine([]byte(echoBytes(in.Target))), fmt.Sprintf("target %q", in.Target))
	add(stdinLine([]byte(in.Machine+"\n")), "architecture "+in.Machine)

	for _, arg := range in.BuildArgs {
		if !strings.Contains(arg, "=") {
			if !isName(arg) {
				return r, fmt.Errorf("build-args item %q: not a variable name, and no =value", arg)
			}
			arg += "=" + in.Env[arg]
		}
		name, _, _ := strings.Cut(arg, "=")
		add(stdinLine([]byte(echoBytes(arg))), "build-arg "+name)
	}
	if in.AdditionalBuildArgs != "" {
		add(stdinLine([]byte(echoBytes(in.AdditionalBuildArgs))), "additional-build-args")
	}

	for _, item := range in.CacheOn {
		words := splitWords(item)
		if len(words) == 0 {
			continue
		}
		for _, word := range words {
			files, matched := expandWord(in.Dir, word, in.UTF8)
			if hasGlobMeta(word) && !matched && !strings.Contains(word, ".json#") {
				r.Warnings = append(r.Warnings, fmt.Sprintf("cache-on %q matched no file: it adds nothing to the tag (as with the plugin)", word))
			}
			if matched && len(files) > 1 && in.Collation != "" {
				if note := sortNote(in.Collation, files); note != "" {
					r.Warnings = append(r.Warnings, fmt.Sprintf("cache-on %q: %s", word, note))
				}
			}
			for _, f := range files {
				if strings.Contains(f, ".json#") {
					file, filter, _ := strings.Cut(f, "#")
					value, err := jqFile(resolve(in.Dir, file), filter, in.JQ)
					if errors.Is(err, ErrFullJQ) {
						return r, err
					}
					if err != nil {
						hint := ""
						if hasGlobMeta(file) {
							hint = " (bash globs the whole entry, filter included, so the plugin never expands a glob " +
								"in FILE.json#FILTER: with it this entry hashed an empty value)"
						}
						return r, fmt.Errorf("cache-on %q: jq filter %q on %s: %w%s", item, filter, file, err, hint)
					}
					add(stdinLine([]byte(value)), "cache-on "+f)
					continue
				}
				sum, err := hashFile(resolve(in.Dir, f))
				if err != nil {
					// A named file that cannot be hashed is worth a warning; the
					// directories a glob matches are not.
					if !hasGlobMeta(word) {
						r.Warnings = append(r.Warnings, fmt.Sprintf("cache-on %q: %s: it adds nothing to the tag (as with the plugin)", f, describe(err)))
					}
					continue
				}
				add(fileLine(sum, f), "cache-on "+f)
			}
		}
	}
	r.Sums = sums.String()
	r.Tag = sha1Hex([]byte(r.Sums + "\n"))[:7]
	return r, nil
}

// describe shortens a file error to its reason.
func describe(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, fs.ErrNotExist) {
			return "no such file"
		}
		return pe.Err.Error()
	}
	return err.Error()
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// hashFile is what `sha1sum FILE` reads: a file (through symbolic links).
// A directory or any other non-regular file is an error, as with sha1sum
// (which would block on a FIFO; this refuses it).
func hashFile(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return "", fmt.Errorf("is a directory")
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("not a regular file")
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha1.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// jqFile is $(jq -r FILTER FILE) as bash sees it: trailing newlines removed,
// NUL bytes dropped (bash cannot hold them in a variable).
func jqFile(p, filter string, full JQFunc) (string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	out, err := jqRaw(filter, data, full)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(strings.TrimRight(out, "\n"), "\x00", ""), nil
}

func isName(s string) bool {
	if s == "" || isDigit(rune(s[0])) {
		return false
	}
	for _, c := range s {
		if c != '_' && !isAlpha(c) && !isDigit(c) {
			return false
		}
	}
	return true
}

// sortNote warns when bash, sorting by a locale's collation rather than by
// bytes, may order items differently from dockhand. glibc's collation for
// such locales is approximated (case and punctuation ignored first), which
// is enough to tell whether the order could differ.
func sortNote(locale string, items []string) string {
	approx := slices.Clone(items)
	slices.SortStableFunc(approx, func(a, b string) int {
		if c := strings.Compare(collationKey(a), collationKey(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	if slices.Equal(approx, items) {
		return ""
	}
	return fmt.Sprintf("the locale is %s: if it is installed on this agent, bash (and so the plugin) sorts by its "+
		"collation and may order these differently from dockhand's byte order (C, C.UTF-8), giving another tag", locale)
}

func collationKey(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if isAlpha(c) || isDigit(c) || c > 0x7f {
			b.WriteRune(c)
		}
	}
	return b.String()
}
