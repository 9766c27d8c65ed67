package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"golang.org/x/term"

	"nook/container"
)

// TopCmd is `nook top`.
type TopCmd struct {
	Container commandFollows `arg:"" help:"Running container."`
	PsOptions []string       `arg:"" optional:"" passthrough:"" help:"ps options (e.g. aux, -eo pid,user,args): the host's ps, its lines of the container's processes."`
}

// Run lists the container's processes: from /proc, or through ps with
// ps's options.
func (c *TopCmd) Run(g *Globals) error {
	m, ctr, err := g.openContainer(string(c.Container))
	if err != nil {
		return err
	}
	if len(c.PsOptions) > 0 {
		titles, rows, err := m.Top(ctr, c.PsOptions)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(g.Stdout, 5, 1, 3, ' ', 0)
		fmt.Fprintln(tw, strings.Join(titles, "\t"))
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		return tw.Flush()
	}
	procs, err := m.Processes(ctr)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(g.Stdout, 5, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "UID\tPID\tPPID\tTIME\tCMD")
	for _, p := range procs {
		uid := strconv.Itoa(p.UID)
		if p.UID == 0 {
			uid = "root"
		}
		secs := p.CPU / 100
		fmt.Fprintf(tw, "%s\t%d\t%d\t%02d:%02d:%02d\t%s\n", uid, p.Pid, p.PPid, secs/3600, secs/60%60, secs%60, p.Cmd)
	}
	return tw.Flush()
}

// StatsCmd is `nook stats`.
type StatsCmd struct {
	NoStream   bool     `help:"Print one sample and exit."`
	All        bool     `short:"a" help:"Show stopped containers too."`
	Format     string   `help:"Output: table, json, or a Go template such as 'table {{.Name}}\\t{{.CPUPerc}}'."`
	Containers []string `arg:"" optional:"" help:"Containers (default: every running one)."`
}

// statsRow has Docker's field names for --format json.
type statsRow struct {
	Container string `header:"CONTAINER"`
	ID        string `header:"CONTAINER ID"`
	Name      string `header:"NAME"`
	CPUPerc   string `header:"CPU %"`
	MemUsage  string `header:"MEM USAGE / LIMIT"`
	MemPerc   string `header:"MEM %"`
	NetIO     string `header:"NET I/O"`
	BlockIO   string `header:"BLOCK I/O"`
	PIDs      string `header:"PIDS"`
}

// Run samples the containers' resource use from /proc: once with
// --no-stream, else every second until interrupted.
func (c *StatsCmd) Run(g *Globals) error {
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	clear := false
	if f, ok := g.Stdout.(*os.File); ok && !c.NoStream && term.IsTerminal(int(f.Fd())) {
		clear = true
	}
	for {
		rows, err := c.sample(m)
		if err != nil {
			return err
		}
		if clear {
			fmt.Fprint(g.Stdout, "\033[2J\033[H")
		}
		if err := c.print(g, rows); err != nil {
			return err
		}
		if c.NoStream {
			return nil
		}
	}
}

func (c *StatsCmd) sample(m *container.Manager) ([]statsRow, error) {
	var ctrs []*container.Container
	if len(c.Containers) == 0 {
		all, err := m.List()
		if err != nil {
			return nil, err
		}
		for _, ctr := range all {
			if ctr.Running() || c.All {
				ctrs = append(ctrs, ctr)
			}
		}
	}
	for _, ref := range c.Containers {
		ctr, err := m.Get(ref)
		if err != nil {
			return nil, err
		}
		ctrs = append(ctrs, ctr)
	}
	rows := make([]statsRow, len(ctrs))
	done := make(chan struct{}, len(ctrs))
	for i, ctr := range ctrs {
		// Side by side: each sample takes the interval.
		go func() {
			defer func() { done <- struct{}{} }()
			r := statsRow{Container: ctr.ID[:12], ID: ctr.ID[:12], Name: ctr.Name, CPUPerc: "0.00%",
				MemUsage: "0B / 0B", MemPerc: "0.00%", NetIO: "--", BlockIO: "--", PIDs: "0"}
			if st, err := m.Stats(ctr, time.Second/2); err == nil {
				r.CPUPerc = fmt.Sprintf("%.2f%%", st.CPUPercent)
				r.MemUsage = units.BytesSize(float64(st.Memory)) + " / " + units.BytesSize(float64(st.MemoryLimit))
				if st.MemoryLimit > 0 {
					r.MemPerc = fmt.Sprintf("%.2f%%", float64(st.Memory)/float64(st.MemoryLimit)*100)
				}
				r.BlockIO = units.HumanSize(float64(st.BlockRead)) + " / " + units.HumanSize(float64(st.BlockWritten))
				r.PIDs = strconv.Itoa(st.Pids)
			}
			rows[i] = r
		}()
	}
	for range ctrs {
		<-done
	}
	return rows, nil
}

func (c *StatsCmd) print(g *Globals, rows []statsRow) error {
	return listing[statsRow]{
		header: "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS",
		cells: func(r statsRow) []string {
			return []string{r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs}
		},
	}.print(g, c.Format, false, rows)
}
