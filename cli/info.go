package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"nook/container"
	"nook/image"
)

// InfoCmd is `nook info`: the host preflight plus where the store is.
type InfoCmd struct {
	Format string `enum:"table,json" default:"table" help:"Output: table (for people) or json (for scripts)."`
}

// infoReport is the JSON of `nook info --format json`.
type infoReport struct {
	Version string `json:"version"`
	Store   string `json:"store"`
	// StoreState is "ok", "absent" (not created yet) or the error met
	// reading it.
	StoreState string            `json:"store_state"`
	Images     int               `json:"images"`
	Checks     []container.Check `json:"checks"`
}

// Run checks the host. Findings, failures included, are output, not
// errors: the exit status is 0 unless the command itself breaks.
func (c *InfoCmd) Run(g *Globals) error {
	root := g.Root
	if root == "" {
		var err error
		if root, err = image.DefaultRoot(); err != nil {
			return err
		}
	}
	r := infoReport{Version: Version, Store: root}
	r.Images, r.StoreState = countImages(g, root)
	r.Checks = container.Preflight(context.Background(), container.PreflightOptions{
		StoreRoot: root, Logger: g.Log,
	})
	if c.Format == "json" {
		enc := json.NewEncoder(g.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return writeInfoTable(g.Stdout, r, outputWidth(g.Stdout))
}

// countImages counts the store's images without creating a store.
func countImages(g *Globals, root string) (int, string) {
	if _, err := os.Stat(filepath.Join(root, "index.json")); err != nil {
		if os.IsNotExist(err) {
			return 0, "absent"
		}
		return 0, err.Error()
	}
	s, err := image.Open(root, image.Options{Logger: g.Log})
	if err != nil {
		return 0, err.Error()
	}
	imgs, err := s.Images()
	if err != nil {
		return 0, err.Error()
	}
	return len(imgs), "ok"
}

// outputWidth is the terminal's width, or 100 columns off a terminal.
func outputWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols >= 60 {
			return cols
		}
	}
	return 100
}

// writeInfoTable prints one row per check; the detail, what nook does and
// the remedy wrap inside the last column.
func writeInfoTable(w io.Writer, r infoReport, width int) error {
	var b strings.Builder
	store := fmt.Sprintf("store %s, %d image%s", r.Store, r.Images, plural(r.Images))
	switch r.StoreState {
	case "ok":
	case "absent":
		store = fmt.Sprintf("store %s, not created yet", r.Store)
	default:
		store = fmt.Sprintf("store %s, unreadable: %s", r.Store, r.StoreState)
	}
	fmt.Fprintf(&b, "nook %s  (%s)\n\n", r.Version, store)

	nameW := len("CHECK")
	for _, c := range r.Checks {
		nameW = max(nameW, len(c.Name))
	}
	nameW += 2
	const verdictW = 9
	indent := strings.Repeat(" ", nameW+verdictW)
	textW := max(width-nameW-verdictW, 30)
	fmt.Fprintf(&b, "%-*s%-*s%s\n", nameW, "CHECK", verdictW, "VERDICT", "DETAIL")
	count := map[container.Verdict]int{}
	for _, c := range r.Checks {
		count[c.Verdict]++
		v := string(c.Verdict)
		if c.Verdict == container.VerdictWarn || c.Verdict == container.VerdictFail {
			v = strings.ToUpper(v)
		}
		fmt.Fprintf(&b, "%-*s%-*s", nameW, c.Name, verdictW, v)
		writeWrapped(&b, "", c.Detail, indent, textW)
		if c.Action != "" {
			b.WriteString(indent)
			writeWrapped(&b, "→ ", c.Action, indent, textW)
		}
		if c.Remedy != "" {
			b.WriteString(indent)
			writeWrapped(&b, "→ remedy: ", c.Remedy, indent, textW)
		}
	}
	b.WriteString("\n" + infoSummary(count) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeWrapped writes prefix+text wrapped at width runes; continuation
// lines get indent plus the prefix's width in spaces. The first line's
// indent is the caller's.
func writeWrapped(b *strings.Builder, prefix, text, indent string, width int) {
	pad := len([]rune(prefix))
	hang := indent + strings.Repeat(" ", pad)
	b.WriteString(prefix)
	col, empty := pad, true // col counts from the start of the column
	for _, word := range strings.Fields(text) {
		n := len([]rune(word))
		switch {
		case empty:
		case col+1+n > width:
			b.WriteString("\n" + hang)
			col = pad
		default:
			b.WriteString(" ")
			col++
		}
		b.WriteString(word)
		col += n
		empty = false
	}
	b.WriteString("\n")
}

func infoSummary(n map[container.Verdict]int) string {
	s := fmt.Sprintf("%d ok, %d info, %d warning%s, %d failure%s: ",
		n[container.VerdictOK], n[container.VerdictInfo],
		n[container.VerdictWarn], plural(n[container.VerdictWarn]),
		n[container.VerdictFail], plural(n[container.VerdictFail]))
	switch {
	case n[container.VerdictFail] > 0:
		return s + "nook cannot run containers here until the failures are fixed."
	case n[container.VerdictWarn] > 0:
		return s + "nook can run containers here, with the limits above."
	}
	return s + "nook can run containers here."
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// The preflight's probe stage, listed in Stages.
const stageProbeUserNS = container.StageProbeUserNS

func probeUserNSStage() int { return container.ProbeUserNS() }
