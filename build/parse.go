package build

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Sentinel errors callers branch on.
var (
	ErrSyntax    = errors.New("dockerfile syntax error")
	ErrBadChange = errors.New("bad --change")
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	name     string
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
	nodes    map[int]*parser.Node // by start line, for the cache key's text
}

// parse reads a Dockerfile with BuildKit's parser; an error names the file
// and the line.
func parse(name string, src []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, located(name, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, located(name, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%w: %s: no FROM instruction", ErrSyntax, name)
	}
	df := &dockerfile{name: name, stages: stages, metaArgs: metaArgs, escape: res.EscapeToken, nodes: map[int]*parser.Node{}}
	for _, n := range res.AST.Children {
		df.nodes[n.StartLine] = n
	}
	return df, nil
}

// located says where in the file err happened, as "FILE:LINE: message".
func located(name string, err error) error {
	msg, line := err.Error(), 0
	if rest, ok := strings.CutPrefix(msg, "dockerfile parse error on line "); ok {
		if n, tail, ok := strings.Cut(rest, ": "); ok {
			if _, err := fmt.Sscan(n, &line); err == nil {
				msg = tail
			}
		}
	}
	var el *parser.LocationError
	if line == 0 && errors.As(err, &el) && len(el.Locations) > 0 && len(el.Locations[0]) > 0 {
		line = el.Locations[0][0].Start.Line
	}
	if line > 0 {
		return fmt.Errorf("%w: %s:%d: %s", ErrSyntax, name, line, msg)
	}
	return fmt.Errorf("%w: %s: %s", ErrSyntax, name, msg)
}

// source is the text of the instruction at loc, heredocs included: what
// the cache key is made of.
func (df *dockerfile) source(cmd instructions.Command) string {
	loc := cmd.Location()
	if len(loc) == 0 {
		return cmd.Name()
	}
	n, ok := df.nodes[loc[0].Start.Line]
	if !ok {
		return cmd.Name()
	}
	var b strings.Builder
	b.WriteString(n.Original)
	for _, h := range n.Heredocs {
		b.WriteString("\n" + h.Name + "\n" + h.Content)
	}
	return b.String()
}
