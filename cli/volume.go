package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"nook/container"
)

// VolumeCmd groups the volume verbs as `docker volume` does.
type VolumeCmd struct {
	Create  VolumeCreateCmd  `cmd:"" help:"Create a named volume."`
	Ls      VolumeLsCmd      `cmd:"" aliases:"list" help:"List volumes."`
	Inspect VolumeInspectCmd `cmd:"" help:"Show volumes as JSON."`
	Rm      VolumeRmCmd      `cmd:"" aliases:"remove" help:"Remove volumes no container uses."`
	Prune   VolumePruneCmd   `cmd:"" help:"Remove volumes no container uses (with -a)."`
}

// VolumeCreateCmd is `nook volume create`.
type VolumeCreateCmd struct {
	Name   string   `arg:"" help:"The volume's name."`
	Driver string   `short:"d" default:"local" help:"Only local."`
	Label  []string `sep:"none" help:"A label, KEY=VALUE."`
	Opt    []string `short:"o" sep:"none" help:"Driver options: none are supported."`
}

// Run creates.
func (c *VolumeCreateCmd) Run(g *Globals) error {
	if c.Driver != "local" {
		return fmt.Errorf("volume driver %q: only \"local\" is supported", c.Driver)
	}
	if len(c.Opt) > 0 {
		return fmt.Errorf("volume option %q: the local driver's options (mounting devices) are not supported", c.Opt[0])
	}
	labels := map[string]string{}
	for _, l := range c.Label {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	v, err := m.CreateVolume(c.Name, labels)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.Stdout, v.Name)
	return nil
}

// VolumeLsCmd is `nook volume ls`.
type VolumeLsCmd struct {
	Quiet  bool     `short:"q" help:"Only names."`
	Format string   `help:"Output: table, json, or a Go template such as '{{.Name}}'."`
	Filter []string `short:"f" sep:"none" help:"Filter: dangling=true|false, name=PART, label=KEY[=VALUE], driver=local."`
}

// volumeRow is one line of `volume ls`, with Docker's field names.
type volumeRow struct {
	Driver     string `header:"DRIVER"`
	Labels     string `header:"LABELS"`
	Mountpoint string `header:"MOUNTPOINT"`
	Name       string `header:"VOLUME NAME"`
	Scope      string `header:"SCOPE"`
}

// Run lists.
func (c *VolumeLsCmd) Run(g *Globals) error {
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	vols, err := m.ListVolumes()
	if err != nil {
		return err
	}
	match, err := volumeFilter(c.Filter)
	if err != nil {
		return err
	}
	users, err := m.VolumeUsers()
	if err != nil {
		return err
	}
	rows := make([]volumeRow, 0, len(vols))
	for _, v := range vols {
		if !match(v, len(users[v.Name]) > 0) {
			continue
		}
		var labels []string
		for k, val := range v.Labels {
			labels = append(labels, k+"="+val)
		}
		rows = append(rows, volumeRow{Driver: v.Driver, Labels: strings.Join(labels, ","), Mountpoint: v.Mountpoint, Name: v.Name, Scope: v.Scope})
	}
	l := listing[volumeRow]{
		header: "DRIVER\tVOLUME NAME",
		cells:  func(r volumeRow) []string { return []string{r.Driver, r.Name} },
		id:     func(r volumeRow) string { return r.Name },
	}
	return l.print(g, c.Format, c.Quiet, rows)
}

// volumeFilter turns --filter values into a predicate over a volume and
// whether a container uses it; values of one key are alternatives, keys
// must all match, as in Docker.
func volumeFilter(filters []string) (func(container.Volume, bool) bool, error) {
	byKey := map[string][]string{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("filter %q: want KEY=VALUE", f)
		}
		switch k {
		case "dangling":
			if v != "true" && v != "false" && v != "1" && v != "0" {
				return nil, fmt.Errorf("filter %q: dangling is true or false", f)
			}
		case "name", "label", "driver":
		default:
			return nil, fmt.Errorf("filter %q: unknown key %q (dangling, name, label, driver)", f, k)
		}
		byKey[k] = append(byKey[k], v)
	}
	one := func(vol container.Volume, used bool, k, v string) bool {
		switch k {
		case "dangling":
			return used != (v == "true" || v == "1")
		case "name":
			return strings.Contains(vol.Name, v)
		case "driver":
			return vol.Driver == v
		}
		lk, lv, hasValue := strings.Cut(v, "=")
		got, ok := vol.Labels[lk]
		return ok && (!hasValue || got == lv)
	}
	return func(vol container.Volume, used bool) bool {
		for k, vs := range byKey {
			if !slices.ContainsFunc(vs, func(v string) bool { return one(vol, used, k, v) }) {
				return false
			}
		}
		return true
	}, nil
}

// VolumeInspectCmd is `nook volume inspect`.
type VolumeInspectCmd struct {
	Names  []string `arg:"" help:"Volumes."`
	Format string   `short:"f" help:"A Go template over each volume's JSON, such as '{{.Mountpoint}}'."`
}

// Run inspects: what is found is printed, and a missing name fails the
// verb at the end, as Docker does.
func (c *VolumeInspectCmd) Run(g *Globals) error {
	return inspectObjects(g, c.Names, c.Format, "volume")
}

// VolumeRmCmd is `nook volume rm`.
type VolumeRmCmd struct {
	Names []string `arg:"" help:"Volumes."`
	Force bool     `short:"f" help:"Do not fail on a missing volume (one in use is still kept)."`
}

// Run removes each volume, reporting failures as it goes.
func (c *VolumeRmCmd) Run(g *Globals) error {
	if done, err := g.enterUserNS(); done {
		return err
	}
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	failed := false
	for _, n := range c.Names {
		err := m.RemoveVolume(n)
		switch {
		case err == nil:
			fmt.Fprintln(g.Stdout, n)
		case c.Force && errors.Is(err, container.ErrNoSuchVolume):
		default:
			fmt.Fprintf(g.Stderr, "nook: %v\n", err)
			failed = true
		}
	}
	if failed {
		return ExitError{Code: 1}
	}
	return nil
}

// VolumePruneCmd is `nook volume prune`.
type VolumePruneCmd struct {
	All   bool `short:"a" help:"Remove every unused volume; without it only anonymous ones."`
	Force bool `short:"f" help:"Do not ask for confirmation."`
}

// Run prunes.
func (c *VolumePruneCmd) Run(g *Globals) error {
	if done, err := g.enterUserNS(); done {
		return err
	}
	if !c.Force && !confirm(g, "WARNING! This will remove all unused volumes.\nAre you sure you want to continue? [y/N] ") {
		return nil
	}
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	gone, reclaimed, err := m.PruneVolumes(c.All)
	if len(gone) > 0 {
		fmt.Fprintln(g.Stdout, "Deleted Volumes:")
		for _, n := range gone {
			fmt.Fprintln(g.Stdout, n)
		}
		fmt.Fprintln(g.Stdout)
	}
	fmt.Fprintf(g.Stdout, "Total reclaimed space: %s\n", humanSize(reclaimed))
	return err
}
