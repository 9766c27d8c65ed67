package cli

import (
	"encoding/json"
	"fmt"
	"reflect"
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

// printTemplate renders one line per row with a Go template, as Docker's
// --format: `\t` and `\n` in it are a tab and a newline, and a format
// starting with "table" prints a header row (each field's `header` tag)
// and aligns the columns at its tabs.
func printTemplate[T any](g *Globals, format string, rows []T) error {
	body, table := strings.CutPrefix(format, "table")
	body = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(strings.TrimSpace(body))
	tmpl, err := parseInspectFormat(body)
	if err != nil {
		return err
	}
	// The header runs the same template over the field names' headers;
	// a field without one (or a name no row has) heads an empty column.
	tmpl.Option("missingkey=zero")
	out := g.Stdout
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(g.Stdout, 10, 1, 3, ' ', 0)
		out = tw
		if err := tmpl.Execute(out, headers[T]()); err != nil {
			return fmt.Errorf("formatting: %w", err)
		}
		fmt.Fprintln(out)
	}
	for _, r := range rows {
		if err := tmpl.Execute(out, r); err != nil {
			return fmt.Errorf("formatting: %w", err)
		}
		fmt.Fprintln(out)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// headers maps each field of the row type T to its column's header, its
// `header` tag.
func headers[T any]() map[string]string {
	h := map[string]string{}
	t := reflect.TypeFor[T]()
	for i := range t.NumField() {
		h[t.Field(i).Name] = t.Field(i).Tag.Get("header")
	}
	return h
}

// humanSize prints sizes as Docker does: 4.26MB.
func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }
