package cli

import (
	"fmt"
	"strings"

	"nook/container"
)

// SystemCmd groups `docker system`'s verbs.
type SystemCmd struct {
	Df    SystemDfCmd    `cmd:"" help:"Show the disk space images, containers, volumes and the build cache take."`
	Prune SystemPruneCmd `cmd:"" help:"Remove stopped containers, dangling images and build cache (and unused volumes)."`
	Info  InfoCmd        `cmd:"" help:"Check this host for rootless containers and show nook's setup (as nook info)."`
}

// SystemDfCmd is `nook system df`.
type SystemDfCmd struct {
	Format string `help:"Output: table, json, or a Go template such as '{{.Type}} {{.Size}}'."`
}

// dfRow is one line of `system df`, with Docker's field names.
type dfRow struct {
	Type        string `header:"TYPE"`
	TotalCount  string `header:"TOTAL"`
	Active      string `header:"ACTIVE"`
	Size        string `header:"SIZE"`
	Reclaimable string `header:"RECLAIMABLE"`
}

// Run measures; the files of containers' ids are read in the user
// namespace.
func (c *SystemDfCmd) Run(g *Globals) error {
	if done, err := g.enterUserNS(); done {
		return err
	}
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	usage, err := m.DiskUsage()
	if err != nil {
		return err
	}
	rows := make([]dfRow, 0, len(usage))
	for _, u := range usage {
		rows = append(rows, dfRow{Type: u.Type, TotalCount: fmt.Sprint(u.Total), Active: fmt.Sprint(u.Active),
			Size: humanSize(u.Size), Reclaimable: reclaimable(u)})
	}
	l := listing[dfRow]{
		header: "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE",
		cells:  func(r dfRow) []string { return []string{r.Type, r.TotalCount, r.Active, r.Size, r.Reclaimable} },
		id:     func(r dfRow) string { return r.Type },
	}
	return l.print(g, c.Format, false, rows)
}

// reclaimable is Docker's RECLAIMABLE cell: bytes and their share.
func reclaimable(u container.Usage) string {
	if u.Size == 0 {
		return humanSize(u.Reclaimable)
	}
	return fmt.Sprintf("%s (%d%%)", humanSize(u.Reclaimable), u.Reclaimable*100/u.Size)
}

// SystemPruneCmd is `nook system prune`: container prune, then volume
// prune with --volumes, then image prune (build cache included).
type SystemPruneCmd struct {
	All     bool `short:"a" help:"Remove every unused image, not only dangling ones (and every unused volume with --volumes)."`
	Volumes bool `help:"Prune volumes too."`
	Force   bool `short:"f" help:"Do not ask for confirmation."`
}

// Run prunes each kind in turn.
func (c *SystemPruneCmd) Run(g *Globals) error {
	if done, err := g.enterUserNS(); done {
		return err
	}
	if !c.Force {
		what := []string{"all stopped containers"}
		if c.Volumes {
			what = append(what, "all volumes not used by at least one container")
		}
		if c.All {
			what = append(what, "all images without at least one container associated to them")
		} else {
			what = append(what, "all dangling images")
		}
		what = append(what, "unused build cache")
		if !confirm(g, "WARNING! This will remove:\n  - "+strings.Join(what, "\n  - ")+"\nAre you sure you want to continue? [y/N] ") {
			return nil
		}
	}
	if err := (&ContainerPruneCmd{Force: true}).Run(g); err != nil {
		return err
	}
	if c.Volumes {
		if err := (&VolumePruneCmd{All: c.All, Force: true}).Run(g); err != nil {
			return err
		}
	}
	return (&ImagePruneCmd{All: c.All, Force: true}).Run(g)
}
