package metrics

import (
	"fmt"
	"strings"
)

// A minimal PromQL reader.

type token struct {
	kind byte // 'i' identifier, 's' string, 'n' number, 'v' Grafana variable, 'p' punctuation
	text string
}

type matcher struct{ label, op, value string }

type selection struct {
	name     string
	pos      int // token index of the name
	matchers []matcher
}

type grouping struct {
	kw               string
	labels           []string
	argStart, argEnd int // token range the clause applies to
}

type promql struct {
	sels   []selection
	groups []grouping
}

var promqlKeywords = newSet("and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
	"by", "without", "on", "ignoring", "group_left", "group_right")

func isIdentStart(b byte) bool {
	return b == '_' || b == ':' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func isIdent(b byte) bool { return isIdentStart(b) || b >= '0' && b <= '9' }

func lexPromQL(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		b := s[i]
		switch {
		case b == ' ' || b == '\t' || b == '\n' || b == '\r':
			i++
		case b == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case b == '"' || b == '\'' || b == '`':
			var sb strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != b; j++ {
				if s[j] == '\\' && b != '`' && j+1 < len(s) {
					j++
				}
				sb.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			toks = append(toks, token{'s', sb.String()})
			i = j + 1
		case b == '[': // range or subquery: durations and Grafana variables
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unterminated [ at %d", i)
			}
			i += j + 1
		case b == '$':
			j := i + 1
			if j < len(s) && s[j] == '{' {
				k := strings.IndexByte(s[j:], '}')
				if k < 0 {
					return nil, fmt.Errorf("unterminated ${ at %d", i)
				}
				j += k + 1
			} else {
				for j < len(s) && isIdent(s[j]) {
					j++
				}
			}
			toks = append(toks, token{'v', s[i:j]})
			i = j
		case isIdentStart(b):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			toks = append(toks, token{'i', s[i:j]})
			i = j
		case b >= '0' && b <= '9' || b == '.':
			j := i
			for j < len(s) && (isIdent(s[j]) || s[j] == '.') {
				j++
			}
			toks = append(toks, token{'n', s[i:j]})
			i = j
		default:
			op := s[i : i+1]
			if i+1 < len(s) {
				switch two := s[i : i+2]; two {
				case "=~", "!~", "!=", "==", ">=", "<=":
					op = two
				}
			}
			toks = append(toks, token{'p', op})
			i += len(op)
		}
	}
	return toks, nil
}

func parsePromQL(expr string) (promql, error) {
	var p promql
	toks, err := lexPromQL(expr)
	if err != nil {
		return p, err
	}
	is := func(i int, text string) bool {
		return i >= 0 && i < len(toks) && toks[i].kind == 'p' && toks[i].text == text
	}

	match := map[int]int{}
	var stack []int
	for i, tk := range toks {
		switch {
		case tk.kind == 'p' && tk.text == "(":
			stack = append(stack, i)
		case tk.kind == 'p' && tk.text == ")":
			if len(stack) == 0 {
				return p, fmt.Errorf("unbalanced )")
			}
			match[i], match[stack[len(stack)-1]] = stack[len(stack)-1], i
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return p, fmt.Errorf("unbalanced (")
	}

	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		switch {
		case tk.kind == 'i' && promqlKeywords[strings.ToLower(tk.text)]:
			kw := strings.ToLower(tk.text)
			if !is(i+1, "(") {
				if kw == "by" || kw == "without" || kw == "on" || kw == "ignoring" {
					return p, fmt.Errorf("%s without a label list", kw)
				}
				continue // and, or, group_left without labels, ...
			}
			end := match[i+1]
			g := grouping{kw: kw, argStart: -1, argEnd: len(toks)}
			for _, l := range toks[i+2 : end] {
				if l.kind == 'i' {
					g.labels = append(g.labels, l.text)
				} else if !(l.kind == 'p' && l.text == ",") {
					return p, fmt.Errorf("%s (...): unexpected %q", kw, l.text)
				}
			}
			if kw == "by" || kw == "without" {
				switch {
				case is(i-1, ")"): // sum (x) by (l)
					g.argStart, g.argEnd = match[i-1], i-1
				case is(end+1, "("): // sum by (l) (x)
					g.argStart, g.argEnd = end+1, match[end+1]
				default:
					return p, fmt.Errorf("cannot find what %s (%s) aggregates", kw, strings.Join(g.labels, ", "))
				}
			}
			p.groups = append(p.groups, g)
			i = end
		case tk.kind == 'i' && (is(i+1, "(") || i+1 < len(toks) && toks[i+1].kind == 'i' &&
			(strings.EqualFold(toks[i+1].text, "by") || strings.EqualFold(toks[i+1].text, "without"))):
			// a function, or an aggregation: sum(...), sum by (...) (...)
		case tk.kind == 'i':
			sel := selection{name: tk.text, pos: i}
			if is(i+1, "{") {
				j := i + 2
				for !is(j, "}") {
					if j+2 >= len(toks) || toks[j].kind != 'i' || toks[j+1].kind != 'p' || toks[j+2].kind != 's' {
						return p, fmt.Errorf("%s{...}: cannot read the label matchers", tk.text)
					}
					sel.matchers = append(sel.matchers, matcher{toks[j].text, toks[j+1].text, toks[j+2].text})
					j += 3
					if is(j, ",") {
						j++
					}
				}
				i = j
			}
			p.sels = append(p.sels, sel)
		case tk.kind == 'p' && tk.text == "{":
			return p, fmt.Errorf("a selector without a metric name: not checked, name the metric")
		}
	}
	return p, nil
}
