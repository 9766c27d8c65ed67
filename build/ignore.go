package build

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ignorer holds the context's .dockerignore patterns.
type ignorer struct {
	pm *patternmatcher.PatternMatcher
}

// readIgnore reads CONTEXT/.dockerignore; none ignores nothing.
func readIgnore(dir string) (*ignorer, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return &ignorer{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	return newIgnorer(patterns)
}

func newIgnorer(patterns []string) (*ignorer, error) {
	if len(patterns) == 0 {
		return &ignorer{}, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("bad ignore pattern: %w", err)
	}
	return &ignorer{pm: pm}, nil
}

// ignored says whether the context path p (relative, clean) is left out.
func (ig *ignorer) ignored(p string) bool {
	if ig == nil || ig.pm == nil || p == "" {
		return false
	}
	m, _ := ig.pm.MatchesOrParentMatches(p)
	return m
}
