// Package report turns benchmark samples into the Markdown table the README
// carries: the minimum of each configuration's runs (the machine is small
// and shared, so noise only ever adds time), the ratios of the subject
// (nook) to each peer, and a mark for every bar the subject must meet.
package report

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Bar is one target a row's subject value must meet.
type Bar struct {
	Versus string  // configuration to divide by; "" compares the value itself
	Max    float64 // highest ratio (or value) that meets the bar
	Strict bool    // the value must stay below Max, not reach it
}

// Row is one workload: the samples of every configuration.
type Row struct {
	Name    string
	Unit    string               // "ms", "MiB", "B/file"
	Samples map[string][]float64 // configuration -> one value per run
	Missing map[string]string    // configuration -> why it has no value
	Bars    []Bar
}

// Table is one suite's result.
type Table struct {
	Title   string
	Configs []string    // columns, in order
	Subject string      // the configuration bars and ratios are about
	Ratios  [][2]string // ratio columns: numerator, denominator
	Rows    []Row
}

// Min is the smallest finite sample; ok is false when there is none.
func Min(xs []float64) (m float64, ok bool) {
	m = math.Inf(1)
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) && x < m {
			m, ok = x, true
		}
	}
	return m, ok
}

// Value is a configuration's reported value in a row: its minimum.
func (r *Row) Value(config string) (float64, bool) { return Min(r.Samples[config]) }

// Ratio divides a's value by b's; ok is false if either is missing or b is 0.
func (r *Row) Ratio(a, b string) (float64, bool) {
	x, okx := r.Value(a)
	y, oky := r.Value(b)
	if !okx || !oky || y == 0 {
		return 0, false
	}
	return x / y, true
}

// Add records one sample.
func (r *Row) Add(config string, v float64) {
	if r.Samples == nil {
		r.Samples = map[string][]float64{}
	}
	r.Samples[config] = append(r.Samples[config], v)
}

// Miss records why a configuration has no value; the first reason stays.
func (r *Row) Miss(config, why string) {
	if r.Missing == nil {
		r.Missing = map[string]string{}
	}
	if _, ok := r.Missing[config]; !ok {
		r.Missing[config] = why
	}
}

// Met reports whether subject meets bar b in this row; ok is false when
// the values needed are missing.
func (r *Row) Met(subject string, b Bar) (met, ok bool) {
	v, ok := r.Value(subject)
	if b.Versus != "" {
		// Judge the ratio as printed, so a row never shows 1.20 and fails ≤1.2.
		v, ok = r.Ratio(subject, b.Versus)
		v = math.Round(v*100) / 100
	}
	if !ok {
		return false, false
	}
	if b.Strict {
		return v < b.Max, true
	}
	return v <= b.Max, true
}

// Markdown writes the table: one line per row, values as minimums, "n/a"
// with its reason in a footnote list when a configuration has no value.
func (t *Table) Markdown(w io.Writer) error {
	var b strings.Builder
	if t.Title != "" {
		fmt.Fprintf(&b, "### %s\n\n", t.Title)
	}
	head := []string{"workload"}
	head = append(head, t.Configs...)
	for _, r := range t.Ratios {
		head = append(head, r[0]+"/"+r[1])
	}
	head = append(head, "bars for "+t.Subject)
	writeLine(&b, head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---:"
	}
	sep[0], sep[len(sep)-1] = "---", "---"
	writeLine(&b, sep)

	var notes []string
	for _, r := range t.Rows {
		cells := []string{fmt.Sprintf("%s (%s)", r.Name, r.Unit)}
		for _, c := range t.Configs {
			if v, ok := r.Value(c); ok {
				cells = append(cells, FormatValue(v))
				continue
			}
			why := r.Missing[c]
			if why == "" {
				why = "not measured"
			}
			notes = appendOnce(notes, why)
			cells = append(cells, fmt.Sprintf("n/a[^%d]", indexOf(notes, why)+1))
		}
		for _, p := range t.Ratios {
			if v, ok := r.Ratio(p[0], p[1]); ok {
				cells = append(cells, FormatRatio(v))
			} else {
				cells = append(cells, "–")
			}
		}
		cells = append(cells, t.bars(&r))
		writeLine(&b, cells)
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for i, n := range notes {
			fmt.Fprintf(&b, "[^%d]: %s\n", i+1, n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// bars renders a row's bars with a mark each: ✓ met, ✗ missed, ? unknown.
func (t *Table) bars(r *Row) string {
	if len(r.Bars) == 0 {
		return ""
	}
	parts := make([]string, 0, len(r.Bars))
	for _, b := range r.Bars {
		mark := "?"
		if met, ok := r.Met(t.Subject, b); ok {
			mark = map[bool]string{true: "✓", false: "✗"}[met]
		}
		parts = append(parts, BarText(b, r.Unit)+" "+mark)
	}
	return strings.Join(parts, ", ")
}

// BarText says a bar in words: "≤1.2× native", "≤ fuse-overlayfs", "<1024 B/file".
func BarText(b Bar, unit string) string {
	op := "≤"
	if b.Strict {
		op = "<"
	}
	switch {
	case b.Versus == "":
		return fmt.Sprintf("%s%s %s", op, FormatValue(b.Max), unit)
	case b.Max == 1:
		return fmt.Sprintf("%s %s", op, b.Versus)
	default:
		return fmt.Sprintf("%s%s× %s", op, strconv.FormatFloat(b.Max, 'g', -1, 64), b.Versus)
	}
}

// FormatValue prints one decimal below 100 and none above: the runs vary
// more than that anyway.
func FormatValue(v float64) string {
	if math.Abs(v) < 100 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// FormatRatio prints a ratio with two decimals.
func FormatRatio(v float64) string { return fmt.Sprintf("%.2f", v) }

func writeLine(b *strings.Builder, cells []string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

func appendOnce(xs []string, x string) []string {
	if indexOf(xs, x) >= 0 {
		return xs
	}
	return append(xs, x)
}

func indexOf(xs []string, x string) int {
	for i, y := range xs {
		if y == x {
			return i
		}
	}
	return -1
}
