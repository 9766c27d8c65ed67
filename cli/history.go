package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// HistoryCmd is `nook history` (and `nook image history`).
type HistoryCmd struct {
	Human   bool   `short:"H" default:"true" negatable:"" help:"Sizes and dates for people (--no-human: bytes and RFC 3339)."`
	NoTrunc bool   `help:"Do not truncate ids and commands."`
	Quiet   bool   `short:"q" help:"Only image ids."`
	Format  string `help:"Output: table, json, or a Go template such as 'table {{.CreatedBy}}\\t{{.Size}}'."`
	Image   string `arg:"" help:"Image: name, id or digest."`
}

// historyRow is one line of `history`, with Docker's field names for --format.
type historyRow struct {
	ID           string `header:"IMAGE"`
	CreatedSince string `header:"CREATED"`
	CreatedAt    string `header:"CREATED AT"`
	CreatedBy    string `header:"CREATED BY"`
	Size         string `header:"SIZE"`
	Comment      string `header:"COMMENT"`
}

// Run lists the image's steps, newest first.
func (c *HistoryCmd) Run(g *Globals) error {
	s, err := g.openStore()
	if err != nil {
		return err
	}
	img, err := s.Resolve(c.Image)
	if err != nil {
		return err
	}
	var rows []historyRow
	for _, h := range s.History(img) {
		r := historyRow{ID: "<missing>", CreatedBy: strings.ReplaceAll(h.CreatedBy, "\t", " "), Comment: h.Comment,
			CreatedSince: "N/A", CreatedAt: "N/A", Size: strconv.FormatInt(h.Size, 10)}
		if h.ID != "" {
			r.ID = h.ID
			if !c.NoTrunc {
				r.ID = strings.TrimPrefix(h.ID, "sha256:")[:12]
			}
		}
		if !h.Created.IsZero() {
			r.CreatedAt = h.Created.Format(time.RFC3339)
			r.CreatedSince = r.CreatedAt
			if c.Human {
				r.CreatedSince = units.HumanDuration(time.Since(h.Created)) + " ago"
			}
		}
		if c.Human {
			r.Size = humanSize(h.Size)
		}
		if !c.NoTrunc {
			r.CreatedBy = ellipsis(r.CreatedBy, 45)
		}
		rows = append(rows, r)
	}
	return listing[historyRow]{
		header: "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT",
		cells: func(r historyRow) []string {
			return []string{r.ID, r.CreatedSince, r.CreatedBy, r.Size, r.Comment}
		},
		id: func(r historyRow) string { return r.ID },
	}.print(g, c.Format, c.Quiet, rows)
}

// ellipsis cuts s to n characters, the last one "…", as Docker's columns.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// RenameCmd is `nook rename` (and `nook container rename`).
type RenameCmd struct {
	Container string `arg:"" help:"Container to rename."`
	Name      string `arg:"" help:"Its new name."`
}

// Run renames the container.
func (c *RenameCmd) Run(g *Globals) error {
	m, ctr, err := g.openContainer(c.Container)
	if err != nil {
		return err
	}
	if err := m.Rename(ctr, c.Name); err != nil {
		return fmt.Errorf("renaming %s: %w", c.Container, err)
	}
	return nil
}
