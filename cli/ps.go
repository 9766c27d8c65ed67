package cli

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	units "github.com/docker/go-units"

	"nook/container"
)

// PsCmd is `nook ps` (and `nook container ls`).
type PsCmd struct {
	All     bool     `short:"a" help:"Show all containers (default: running ones)."`
	Quiet   bool     `short:"q" help:"Only container ids."`
	NoTrunc bool     `help:"Do not truncate ids and commands."`
	Latest  bool     `short:"l" help:"Only the latest created container."`
	Last    int      `short:"n" default:"-1" help:"Only the N latest created containers, in any state."`
	Size    bool     `short:"s" help:"Show the size of each container's writable layer (and with its image's, virtual)."`
	Filter  []string `short:"f" sep:"none" help:"Filter: id=, name=, status=created|running|paused|exited, label=KEY[=VALUE], ancestor=IMAGE, exited=CODE, volume=NAME|PATH."`
	Format  string   `help:"Output: table, json, or a Go template such as '{{.Names}} {{.Status}}'."`
}

// psRow is one line of `ps`, with Docker's field names for --format.
type psRow struct {
	Command      string `header:"COMMAND"`
	CreatedAt    string `header:"CREATED AT"`
	ID           string `header:"CONTAINER ID"`
	Image        string `header:"IMAGE"`
	Labels       string `header:"LABELS"`
	Mounts       string `header:"MOUNTS"`
	Names        string `header:"NAMES"`
	Networks     string `header:"NETWORKS"`
	Ports        string `header:"PORTS"`
	RunningFor   string `header:"CREATED"`
	Size         string `header:"SIZE"`
	State        string `header:"STATE"`
	Status       string `header:"STATUS"`
	LocalVolumes string `header:"LOCAL VOLUMES"`
}

// Run lists containers.
func (c *PsCmd) Run(g *Globals) error {
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	all, err := m.List()
	if err != nil {
		return err
	}
	keep, err := psFilter(c.Filter)
	if err != nil {
		return err
	}
	last := c.Last
	if c.Latest {
		last = 1
	}
	var rows []psRow
	for _, ctr := range all { // newest first
		if !c.All && last < 0 && !ctr.Running() && len(c.Filter) == 0 {
			continue
		}
		if !keep(ctr) {
			continue
		}
		if last >= 0 && len(rows) == last {
			break
		}
		row := c.row(ctr)
		if c.Size {
			rw, virtual := m.Size(ctr)
			row.Size = fmt.Sprintf("%s (virtual %s)", humanSize(rw), humanSize(virtual))
		}
		rows = append(rows, row)
	}
	header := "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES"
	if c.Size {
		header += "\tSIZE"
	}
	return listing[psRow]{
		header: header,
		cells: func(r psRow) []string {
			cells := []string{r.ID, r.Image, r.Command, r.RunningFor, r.Status, r.Ports, r.Names}
			if c.Size {
				cells = append(cells, r.Size)
			}
			return cells
		},
		id: func(r psRow) string { return r.ID },
	}.print(g, c.Format, c.Quiet, rows)
}

func (c *PsCmd) row(ctr *container.Container) psRow {
	id, cmd := ctr.ID, strings.Join(ctr.Args(), " ")
	if !c.NoTrunc {
		id = id[:12]
		if len(cmd) > 20 {
			cmd = cmd[:19] + "…"
		}
	}
	var labels []string
	for k, v := range ctr.Labels {
		labels = append(labels, k+"="+v)
	}
	sort.Strings(labels)
	return psRow{
		Command: `"` + cmd + `"`, CreatedAt: ctr.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
		ID: id, Image: ctr.Image, Labels: strings.Join(labels, ","), Names: ctr.Name,
		Networks: ctr.Network, RunningFor: units.HumanDuration(time.Since(ctr.Created)) + " ago",
		State: ctr.Status(), Status: statusText(ctr),
	}
}

// statusText is Docker's STATUS column: "Up 3 minutes", "Exited (0) 2
// seconds ago", "Created".
func statusText(c *container.Container) string {
	switch c.State.Status {
	case container.StatusRunning:
		if c.Restarting() {
			return fmt.Sprintf("Restarting (%d) %s ago", c.State.ExitCode, units.HumanDuration(time.Since(c.State.FinishedAt)))
		}
		if c.Paused() {
			return "Up " + units.HumanDuration(time.Since(c.State.StartedAt)) + " (Paused)"
		}
		return "Up " + units.HumanDuration(time.Since(c.State.StartedAt))
	case container.StatusExited:
		return fmt.Sprintf("Exited (%d) %s ago", c.State.ExitCode, units.HumanDuration(time.Since(c.State.FinishedAt)))
	}
	return "Created"
}

// psFilter turns --filter values into a predicate; filters of one key
// are alternatives, different keys must all match, as in Docker.
func psFilter(filters []string) (func(*container.Container) bool, error) {
	byKey := map[string][]string{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("filter %q: want KEY=VALUE", f)
		}
		switch k {
		case "id", "name", "status", "label", "ancestor", "exited", "volume":
		default:
			return nil, fmt.Errorf("filter %q: unknown key %q", f, k)
		}
		byKey[k] = append(byKey[k], v)
	}
	match := func(c *container.Container, k, v string) bool {
		switch k {
		case "id":
			return strings.HasPrefix(c.ID, v)
		case "name":
			return strings.Contains(c.Name, v)
		case "status":
			return c.Status() == v
		case "label":
			lk, lv, hasValue := strings.Cut(v, "=")
			got, ok := c.Labels[lk]
			return ok && (!hasValue || got == lv)
		case "ancestor":
			return c.Image == v || strings.HasPrefix(strings.TrimPrefix(c.ImageID, "sha256:"), strings.TrimPrefix(v, "sha256:"))
		case "exited":
			return c.State.Status == container.StatusExited && fmt.Sprint(c.State.ExitCode) == v
		case "volume": // a volume's name or a mount's destination
			return slices.ContainsFunc(c.Mounts, func(m container.MountSpec) bool {
				return m.Type == "volume" && m.Source == v || m.Target == v
			})
		}
		return false
	}
	return func(c *container.Container) bool {
		for k, vs := range byKey {
			any := false
			for _, v := range vs {
				any = any || match(c, k, v)
			}
			if !any {
				return false
			}
		}
		return true
	}, nil
}
