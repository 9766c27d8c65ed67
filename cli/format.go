package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	units "github.com/docker/go-units"
)

// listing is what a list verb (images, ps) prints, in Docker's forms.
type listing[T any] struct {
	header string           // table header, columns separated by tabs
	cells  func(T) []string // a row's table cells
	id     func(T) string   // what -q prints
}

// print writes rows as ids (-q), one JSON object per line (--format json),
// a Go template (--format '{{.ID}}'), or a table.
func (l listing[T]) print(g *Globals, format string, quiet bool, rows []T) error {
	switch {
	case quiet:
		for _, r := range rows {
			fmt.Fprintln(g.Stdout, l.id(r))
		}
		return nil
	case format == "json":
		enc := json.NewEncoder(g.Stdout)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case format != "" && format != "table":
		return printTemplate(g, format, rows)
	}
	tw := tabwriter.NewWriter(g.Stdout, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, l.header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(l.cells(r), "\t"))
	}
	return tw.Flush()
}

// printTemplate renders one line per row with a Go template, as Docker's --format.
func printTemplate[T any](g *Globals, format string, rows []T) error {
	tmpl, err := parseInspectFormat(strings.TrimPrefix(format, "table "))
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := tmpl.Execute(g.Stdout, r); err != nil {
			return fmt.Errorf("formatting: %w", err)
		}
		fmt.Fprintln(g.Stdout)
	}
	return nil
}

// humanSize prints sizes as Docker does: 4.26MB.
func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
