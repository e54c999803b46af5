package cachedimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// parseJQ parses a filter of the exact subset; any other filter is an error
// (and goes to gojq).
func parseJQ(src string) (jqQuery, error) {
	p := &jqParser{s: src}
	q, err := p.pipe()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unsupported at offset %d", p.i)
	}
	return q, nil
}

type jqParser struct {
	s string
	i int
}

var errJQSubset = errors.New("outside the exact subset")

func (p *jqParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\n\r", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *jqParser) peek(tok string) bool {
	p.space()
	return strings.HasPrefix(p.s[p.i:], tok)
}

// expect consumes tok, and reports whether it was next.
func (p *jqParser) expect(tok string) bool {
	if !p.peek(tok) {
		return false
	}
	p.i += len(tok)
	return true
}

func (p *jqParser) pipe() (jqQuery, error) {
	return p.chain("|", p.comma, func(l, r jqQuery) jqQuery { return jqPipe{l, r} })
}

func (p *jqParser) comma() (jqQuery, error) {
	return p.chain(",", p.postfix, func(l, r jqQuery) jqQuery { return jqComma{l, r} })
}

// chain parses operands separated by op (but not op=, an update such as
// |=), joined from the left.
func (p *jqParser) chain(op string, operand func() (jqQuery, error), join func(l, r jqQuery) jqQuery) (jqQuery, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for p.peek(op) && !p.peek(op+"=") {
		p.i++
		r, err := operand()
		if err != nil {
			return nil, err
		}
		l = join(l, r)
	}
	return l, nil
}

func (p *jqParser) postfix() (jqQuery, error) {
	q, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.peek("?"):
			p.i++
			switch step := q.(type) {
			case jqIndex:
				step.optional = true
				q = step
			case jqIter:
				step.optional = true
				q = step
			case jqSlice:
				step.optional = true
				q = step
			default:
				q = jqTry{q}
			}
		case p.peek("["):
			if q, err = p.bracket(q); err != nil {
				return nil, err
			}
		case p.peek(".") && !p.peek(".."):
			p.i++
			if p.i < len(p.s) && p.s[p.i] == '"' {
				s, err := p.str()
				if err != nil {
					return nil, err
				}
				q = jqIndex{on: q, key: s}
				continue
			}
			name := p.ident()
			if name == "" {
				return nil, errJQSubset
			}
			q = jqIndex{on: q, key: name}
		default:
			return q, nil
		}
	}
}

func (p *jqParser) term() (jqQuery, error) {
	p.space()
	switch {
	case p.peek(".."):
		p.i += 2
		return jqRecurse{}, nil
	case p.peek("("):
		p.i++
		q, err := p.pipe()
		if err != nil {
			return nil, err
		}
		if !p.expect(")") {
			return nil, errJQSubset
		}
		return q, nil
	case p.peek("."):
		p.i++
		if p.i < len(p.s) && p.s[p.i] == '"' {
			s, err := p.str()
			if err != nil {
				return nil, err
			}
			return jqIndex{on: jqIdentity{}, key: s}, nil
		}
		if name := p.ident(); name != "" {
			return jqIndex{on: jqIdentity{}, key: name}, nil
		}
		return jqIdentity{}, nil
	}
	if name := p.ident(); jqBuiltins[name] {
		return jqBuiltin{name}, nil
	}
	return nil, errJQSubset
}

// bracket parses [] [N] ["s"] [N:M] after q.
func (p *jqParser) bracket(q jqQuery) (jqQuery, error) {
	p.i++ // [
	if p.peek("]") {
		p.i++
		return jqIter{on: q}, nil
	}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '"' {
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		if !p.expect("]") {
			return nil, errJQSubset
		}
		return jqIndex{on: q, key: s}, nil
	}
	lo, hasLo := p.integer()
	if p.peek(":") {
		p.i++
		hi, hasHi := p.integer()
		if !p.expect("]") {
			return nil, errJQSubset
		}
		s := jqSlice{on: q}
		if hasLo {
			s.lo = &lo
		}
		if hasHi {
			s.hi = &hi
		}
		return s, nil
	}
	if !hasLo || !p.expect("]") {
		return nil, errJQSubset
	}
	return jqIndex{on: q, key: lo}, nil
}

func (p *jqParser) integer() (float64, bool) {
	p.space()
	j := p.i
	if j < len(p.s) && p.s[j] == '-' {
		j++
	}
	k := j
	for k < len(p.s) && p.s[k] >= '0' && p.s[k] <= '9' {
		k++
	}
	if k == j {
		return 0, false
	}
	n, err := strconv.ParseFloat(p.s[p.i:k], 64)
	if err != nil {
		return 0, false
	}
	p.i = k
	return n, true
}

func (p *jqParser) ident() string {
	j := p.i
	for j < len(p.s) {
		c := p.s[j]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (j > p.i && c >= '0' && c <= '9') {
			j++
			continue
		}
		break
	}
	name := p.s[p.i:j]
	p.i = j
	return name
}

// str parses a JSON-style string literal without interpolation.
func (p *jqParser) str() (string, error) {
	j := p.i + 1
	for j < len(p.s) && p.s[j] != '"' {
		if p.s[j] == '\\' {
			if j+1 < len(p.s) && p.s[j+1] == '(' {
				return "", errJQSubset // interpolation
			}
			j++
		}
		j++
	}
	if j >= len(p.s) {
		return "", errJQSubset
	}
	var s string
	if err := json.Unmarshal([]byte(p.s[p.i:j+1]), &s); err != nil {
		return "", errJQSubset
	}
	p.i = j + 1
	return s, nil
}
