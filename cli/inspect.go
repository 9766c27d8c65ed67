package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/template"

	"nook/image"
)

// InspectCmd is `nook inspect` (and `nook image inspect`).
type InspectCmd struct {
	Names  []string `arg:"" help:"Images to inspect: names, ids or digests."`
	Format string   `short:"f" help:"Format each object with a Go template, e.g. '{{.Id}}'."`
	Type   string   `enum:"image," default:"" help:"Only objects of this type (image)."`
}

// Run prints a JSON array of the objects, or one templated line each.
func (c *InspectCmd) Run(g *Globals) error {
	s, err := g.openStore()
	if err != nil {
		return err
	}
	var tmpl *template.Template
	if c.Format != "" {
		if tmpl, err = parseInspectFormat(c.Format); err != nil {
			return err
		}
	}
	var out []any
	failed := false
	for _, name := range c.Names {
		img, err := s.Resolve(name)
		if err != nil {
			if errors.Is(err, image.ErrNotFound) {
				err = fmt.Errorf("no such object: %s", name)
			}
			fmt.Fprintf(g.Stderr, "nook: %v\n", err)
			failed = true
			continue
		}
		out = append(out, s.Inspect(img))
	}
	if tmpl != nil {
		for _, o := range out {
			// Templates see the JSON shape, as Docker's do: {{.Id}}, {{.Config.Cmd}}.
			var shaped any
			b, err := json.Marshal(o)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &shaped); err != nil {
				return err
			}
			if err := tmpl.Execute(g.Stdout, shaped); err != nil {
				return fmt.Errorf("formatting: %w", err)
			}
			fmt.Fprintln(g.Stdout)
		}
	} else {
		if out == nil {
			out = []any{}
		}
		b, err := json.MarshalIndent(out, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, string(b))
	}
	if failed {
		return ExitError{Code: 1}
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
