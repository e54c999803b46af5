package cachedimage

import (
	"fmt"
	"strings"
)

// Additional is additional-build-args as dockhand hands it to the job's
// `docker buildx build`: the words the plugin's docker command receives,
// after the few repairs below.
type Additional struct {
	Words []string // passed to docker in this order, after dockhand's own flags
	Tags  []string // -t/--tag values taken out (dockhand pushes IMAGE:TAG and IMAGE:latest only)
	Notes []string // one line per repair, for the job log
}

// ParseAdditional reads additional-build-args as the plugin passes it,
// unquoted (`docker build … $ADDITIONAL_BUILD_ARGS context`): split on
// blanks and each word globbed in dir as bash does without globstar.
// Quotes and `$` are not interpreted. Then three repairs, each of which only
// changes a command docker would refuse or misread:
//
//   - `--NAME=` followed by a word that is not a flag is read as
//     `--NAME=WORD`: docker would take the word for a second build context
//     and fail. The plugin's README writes `--ssh= default=\$SSH_AUTH_SOCK`.
//   - In an --ssh value, `$NAME` and `${NAME}` are the job's variables (lookup):
//     docker would look for a socket literally named `$SSH_AUTH_SOCK`.
//   - -t/--tag values are taken out: dockhand pushes every tag of its build,
//     and the plugin's extra tags only ever named a local image (and only when
//     it built); Notes says so.
//
// Every other word goes to docker as it is, so docker judges it.
func ParseAdditional(s, dir string, utf8 bool, lookup func(string) (string, bool)) Additional {
	var words []string
	for _, w := range splitWords(s) {
		words = append(words, globNoGlobstar(dir, w, utf8)...)
	}
	var a Additional
	for i := 0; i < len(words); i++ {
		w := words[i]
		if name, ok := strings.CutSuffix(w, "="); ok && isLongFlag(name) && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
			joined := w + words[i+1]
			a.Notes = append(a.Notes, fmt.Sprintf("read %q %q as %q (docker would take %q for a second build context)",
				w, words[i+1], joined, words[i+1]))
			i++
			w = joined
		}
		switch {
		case w == "-t" || w == "--tag":
			if i+1 < len(words) {
				i++
				a.dropTag(w, words[i])
				continue
			}
		case strings.HasPrefix(w, "--tag="):
			a.dropTag("--tag", strings.TrimPrefix(w, "--tag="))
			continue
		case strings.HasPrefix(w, "-t") && !strings.HasPrefix(w, "--"):
			a.dropTag("-t", strings.TrimPrefix(strings.TrimPrefix(w, "-t"), "="))
			continue
		case w == "--ssh" && i+1 < len(words):
			a.Words = append(a.Words, w)
			i++
			w = a.expandSSH(words[i], lookup)
		case strings.HasPrefix(w, "--ssh="):
			w = "--ssh=" + a.expandSSH(strings.TrimPrefix(w, "--ssh="), lookup)
		}
		a.Words = append(a.Words, w)
	}
	return a
}

func (a *Additional) dropTag(flag, tag string) {
	a.Tags = append(a.Tags, tag)
	a.Notes = append(a.Notes, fmt.Sprintf("%s %s left out: dockhand pushes the image as IMAGE:TAG and IMAGE:latest only "+
		"(the plugin's extra tag named a local image, and only when it built)", flag, tag))
}

// expandSSH replaces $NAME and ${NAME} in an --ssh value with the job's
// variables; an unset variable stays as written.
func (a *Additional) expandSSH(v string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '$' {
			b.WriteByte(v[i])
			continue
		}
		name, end := "", i+1
		if strings.HasPrefix(v[i+1:], "{") {
			if j := strings.IndexByte(v[i+2:], '}'); j >= 0 {
				name, end = v[i+2:i+2+j], i+3+j
			}
		} else {
			j := i + 1
			for j < len(v) && (v[j] == '_' || isAlpha(rune(v[j])) || (j > i+1 && isDigit(rune(v[j])))) {
				j++
			}
			name, end = v[i+1:j], j
		}
		val, ok := "", false
		if isName(name) {
			val, ok = lookup(name)
		}
		if !ok {
			b.WriteByte('$')
			continue
		}
		b.WriteString(val)
		i = end - 1
	}
	if out := b.String(); out != v {
		a.Notes = append(a.Notes, fmt.Sprintf("--ssh %s: the job's variables give %s", v, out))
		return out
	}
	return v
}

// isLongFlag says whether s is `--name` with a flag-like name.
func isLongFlag(s string) bool {
	name, ok := strings.CutPrefix(s, "--")
	if !ok || name == "" {
		return false
	}
	for _, c := range name {
		if c != '-' && !isAlpha(c) && !isDigit(c) {
			return false
		}
	}
	return true
}

// globNoGlobstar is bash's pathname expansion of one unquoted word in dir
// with globstar off (the plugin's main shell): `**` is `*`. A word matching
// nothing stays as written.
func globNoGlobstar(dir, word string, utf8 bool) []string {
	if !hasGlobMeta(word) {
		return []string{word}
	}
	var b strings.Builder
	star := false // the last character written is an unescaped *
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c == '\\' && i+1 < len(word) {
			b.WriteString(word[i : i+2])
			i++
			star = false
			continue
		}
		if c == '*' && star {
			continue
		}
		b.WriteByte(c)
		star = c == '*'
	}
	if out, matched := expandWord(dir, b.String(), utf8); matched {
		return out
	}
	return []string{word}
}
