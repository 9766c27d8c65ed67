package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"nook/container"
	"nook/rootless"
)

// openContainers opens the container manager of the store.
func (g *Globals) openContainers() (*container.Manager, error) {
	s, err := g.openStore()
	if err != nil {
		return nil, err
	}
	return container.Open(s, container.Options{Logger: g.Log})
}

// openContainer opens the container manager and finds one container.
func (g *Globals) openContainer(ref string) (*container.Manager, *container.Container, error) {
	m, err := g.openContainers()
	if err != nil {
		return nil, nil, err
	}
	ctr, err := m.Get(ref)
	if err != nil {
		return nil, nil, err
	}
	return m, ctr, nil
}

// stdFiles returns stdin, stdout and stderr as files, which verbs that
// hand them to a container's process need.
func (g *Globals) stdFiles(verb string) ([3]*os.File, error) {
	var files [3]*os.File
	for i, s := range []any{g.Stdin, g.Stdout, g.Stderr} {
		f, ok := s.(*os.File)
		if !ok {
			return files, fmt.Errorf("%s needs its standard streams to be files", verb)
		}
		files[i] = f
	}
	return files, nil
}

func (g *Globals) slogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(g.LogLevel))
	return l
}

// startStatus turns the outcome of a container start or attach into the
// CLI's: a container that could not start exits 125, 126 or 127 as
// Docker's does; one detached from with ctrl-p ctrl-q runs on.
func (g *Globals) startStatus(code int, err error) error {
	if errors.Is(err, container.ErrDetached) {
		fmt.Fprintln(g.Stderr, "read escape sequence")
		return nil
	}
	var se *container.StartError
	if errors.As(err, &se) {
		fmt.Fprintf(g.Stderr, "nook: %s\n", se.Msg)
		return ExitError{Code: se.Code}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return ExitError{Code: code}
	}
	return nil
}

// eachContainer runs fn on every named container, printing errors as it
// goes as Docker does, and fails at the end when any failed.
func (g *Globals) eachContainer(refs []string, fn func(*container.Manager, *container.Container) error) error {
	return g.eachContainerOf(refs, false, fn)
}

// eachContainerOf is eachContainer; with missingOK a container that does
// not exist is no failure (`rm -f`, as Docker ≥ 20.10).
func (g *Globals) eachContainerOf(refs []string, missingOK bool, fn func(*container.Manager, *container.Container) error) error {
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	failed := 0
	for _, ref := range refs {
		c, err := m.Get(ref)
		if err == nil {
			err = fn(m, c)
		} else if missingOK && errors.Is(err, container.ErrNotFound) {
			continue
		}
		if err != nil {
			fmt.Fprintf(g.Stderr, "nook: %v\n", err)
			failed++
		}
	}
	if failed > 0 {
		return ExitError{Code: rootless.ExitSetupFailed}
	}
	return nil
}

// readEnvFiles reads --env-file files.
func readEnvFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("opening env file: %w", err)
		}
		env, err := container.ParseEnvFile(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("env file %s: %w", p, err)
		}
		out = append(out, env...)
	}
	return out, nil
}
