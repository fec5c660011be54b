package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Option adjusts how Load resolves external references.
type Option func(*loader)

type loader struct {
	lookupEnv func(string) (string, bool)
}

// WithLookupEnv replaces os.LookupEnv for key references (tests use it).
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(l *loader) { l.lookupEnv = f }
}

// Problem is one thing wrong with a configuration, at a line of the file
// (0 when no line applies).
type Problem struct {
	Line int
	Msg  string
}

// Error lists every problem found in a configuration file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		if p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: %s", e.File, p.Line, p.Msg)
		} else {
			fmt.Fprintf(&b, "%s: %s", e.File, p.Msg)
		}
	}
	return b.String()
}

// Load reads, validates and resolves the configuration in path.
func Load(ctx context.Context, path string, opts ...Option) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(ctx, path, data, opts...)
}

// Parse is Load for a configuration already in memory; name is used in
// messages.
func Parse(ctx context.Context, name string, data []byte, opts ...Option) (*Config, error) {
	l := loader{lookupEnv: os.LookupEnv}
	for _, o := range opts {
		o(&l)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{File: name, Problems: yamlProblems(err)}
	}
	cfg := &Config{Path: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{File: name, Problems: yamlProblems(err)}
	}
	v := validator{root: &root}
	v.check(cfg)
	if len(v.problems) == 0 {
		v.resolveKeys(ctx, cfg, l.lookupEnv)
	}
	if len(v.problems) > 0 {
		return nil, &Error{File: name, Problems: v.problems}
	}
	return cfg, nil
}

// yamlProblems turns yaml.v3's errors ("line 3: field x not found in type
// config.Config") into problems with lines and plainer words.
var yamlQuoted = regexp.MustCompile("`[^`]*`")

func yamlProblems(err error) []Problem {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out []Problem
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		line := 0
		if n, err := fmt.Sscanf(m, "line %d:", &line); n == 1 && err == nil {
			m = strings.TrimSpace(m[strings.Index(m, ":")+1:])
		}
		// yaml.v3 quotes the start of a value it cannot use (`abc...`):
		// a key given where a name or map goes must not be printed.
		m = yamlQuoted.ReplaceAllString(m, "a value (not shown)")
		if strings.HasPrefix(m, "field ") && strings.Contains(m, " not found in type ") {
			field := strings.TrimSuffix(strings.TrimPrefix(m[:strings.Index(m, " not found")], "field "), "")
			m = fmt.Sprintf("unknown key %q: check its spelling and indentation against config.example.yaml", field)
		}
		out = append(out, Problem{Line: line, Msg: m})
	}
	return out
}
