package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"text/template"

	"nook/container"
	"nook/image"
)

// InspectCmd is `nook inspect`: containers, images and volumes, in that
// order, as Docker looks them up.
type InspectCmd struct {
	Names  []string `arg:"" help:"Containers, images or volumes: names, ids or digests."`
	Format string   `short:"f" help:"Format each object with a Go template, e.g. '{{.Id}}'."`
	Type   string   `enum:"image,container,volume," default:"" help:"Only objects of this type (image, container or volume)."`
}

// Run prints a JSON array of the objects, or one templated line each.
func (c *InspectCmd) Run(g *Globals) error {
	return inspectObjects(g, c.Names, c.Format, c.Type)
}

// ImageInspectCmd is `nook image inspect`.
type ImageInspectCmd struct {
	Names  []string `arg:"" help:"Images: names, ids or digests."`
	Format string   `short:"f" help:"Format each image with a Go template, e.g. '{{.Id}}'."`
}

// Run prints the images.
func (c *ImageInspectCmd) Run(g *Globals) error { return inspectObjects(g, c.Names, c.Format, "image") }

// ContainerInspectCmd is `nook container inspect`.
type ContainerInspectCmd struct {
	Format     string   `short:"f" help:"Format each container with a Go template, e.g. '{{.State.Status}}'."`
	Containers []string `arg:"" help:"Containers to inspect."`
}

// Run prints the containers.
func (c *ContainerInspectCmd) Run(g *Globals) error {
	return inspectObjects(g, c.Containers, c.Format, "container")
}

// inspectObjects looks each name up as a container, then as an image
// (kind narrows it), prints what it found, and names on stderr what it
// did not, exiting 1 as Docker does.
func inspectObjects(g *Globals, names []string, format, kind string) error {
	s, err := g.openStore()
	if err != nil {
		return err
	}
	m, err := container.Open(s, container.Options{Logger: g.Log})
	if err != nil {
		return err
	}
	var out []any
	failed := false
	for _, name := range names {
		obj, err := lookupObject(s, m, name, kind)
		if err != nil {
			fmt.Fprintf(g.Stderr, "nook: %v\n", err)
			failed = true
			continue
		}
		out = append(out, obj)
	}
	if err := printObjects(g, format, out); err != nil {
		return err
	}
	if failed {
		return ExitError{Code: 1}
	}
	return nil
}

func lookupObject(s *image.Store, m *container.Manager, name, kind string) (any, error) {
	if kind == "" || kind == "container" {
		ctr, err := m.Get(name)
		if err == nil {
			return m.Inspect(ctr), nil
		}
		if !errors.Is(err, container.ErrNotFound) {
			return nil, err
		}
	}
	if kind != "container" && kind != "volume" {
		img, err := s.Resolve(name)
		if err == nil {
			return s.Inspect(img), nil
		}
		if !errors.Is(err, image.ErrNotFound) {
			return nil, err
		}
	}
	if kind == "" || kind == "volume" {
		v, err := m.InspectVolume(name)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, container.ErrNoSuchVolume) {
			return nil, err
		}
	}
	what := "object"
	if kind != "" {
		what = kind
	}
	return nil, fmt.Errorf("no such %s: %s", what, name)
}

// printObjects prints objects as a JSON array or through a template that
// sees their JSON shape, as Docker's inspect does: {{.Id}}, {{.Config.Cmd}}.
func printObjects(g *Globals, format string, out []any) error {
	if format == "" {
		if out == nil {
			out = []any{}
		}
		b, err := json.MarshalIndent(out, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, string(b))
		return nil
	}
	tmpl, err := parseInspectFormat(format)
	if err != nil {
		return err
	}
	for _, o := range out {
		var shaped any
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		// Numbers stay numbers ({{.Size}} prints 1996800, not 1.9968e+06).
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&shaped); err != nil {
			return err
		}
		if err := tmpl.Execute(g.Stdout, shaped); err != nil {
			return fmt.Errorf("formatting: %w", err)
		}
		fmt.Fprintln(g.Stdout)
	}
	return nil
}

func parseInspectFormat(format string) (*template.Template, error) {
	t, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) { b, err := json.Marshal(v); return string(b), err },
	}).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("parsing --format %q: %w", format, err)
	}
	return t, nil
}
