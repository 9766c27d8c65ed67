package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"
)

// VersionCmd is `nook version`: Docker's client and server shape. nook
// has no daemon, so both halves describe this binary; scripts that read
// {{.Server.Version}} still find it.
type VersionCmd struct {
	Format string `short:"f" help:"Output: json, or a Go template such as '{{.Client.Version}}'."`
}

// versionInfo has Docker's field names for --format.
type versionInfo struct {
	Client versionPart
	Server versionServer
}

type versionPart struct {
	Version   string
	GoVersion string
	GitCommit string
	BuildTime string
	Os        string
	Arch      string
}

type versionServer struct {
	Platform   struct{ Name string }
	Components []versionComponent
	versionPart
	Rootless bool
}

type versionComponent struct {
	Name    string
	Version string
}

// Run prints the versions.
func (c *VersionCmd) Run(g *Globals) error {
	v := versionOf(debug.ReadBuildInfo())
	switch c.Format {
	case "":
	case "json":
		return json.NewEncoder(g.Stdout).Encode(v)
	default:
		tmpl, err := parseInspectFormat(c.Format)
		if err != nil {
			return err
		}
		if err := tmpl.Execute(g.Stdout, v); err != nil {
			return fmt.Errorf("formatting: %w", err)
		}
		fmt.Fprintln(g.Stdout)
		return nil
	}
	tw := tabwriter.NewWriter(g.Stdout, 20, 1, 1, ' ', 0) // Docker's widths
	fmt.Fprintln(tw, "Client:")
	printVersionPart(tw, " ", v.Client)
	fmt.Fprintf(tw, "\nServer: %s\n", v.Server.Platform.Name)
	fmt.Fprintln(tw, " Engine:")
	printVersionPart(tw, "  ", v.Server.versionPart)
	fmt.Fprintf(tw, "  Rootless:\t%t\n", v.Server.Rootless)
	for _, comp := range v.Server.Components[1:] {
		fmt.Fprintf(tw, " %s:\n  Version:\t%s\n", comp.Name, comp.Version)
	}
	return tw.Flush()
}

func printVersionPart(tw *tabwriter.Writer, indent string, p versionPart) {
	fmt.Fprintf(tw, "%sVersion:\t%s\n", indent, p.Version)
	fmt.Fprintf(tw, "%sGo version:\t%s\n", indent, p.GoVersion)
	fmt.Fprintf(tw, "%sGit commit:\t%s\n", indent, p.GitCommit)
	fmt.Fprintf(tw, "%sBuilt:\t%s\n", indent, p.BuildTime)
	fmt.Fprintf(tw, "%sOS/Arch:\t%s/%s\n", indent, p.Os, p.Arch)
}

// versionOf reads what the Go toolchain recorded in the binary.
func versionOf(bi *debug.BuildInfo, ok bool) versionInfo {
	p := versionPart{Version: Version, GoVersion: runtime.Version(), GitCommit: "unknown", BuildTime: "unknown",
		Os: runtime.GOOS, Arch: runtime.GOARCH}
	fuse := "unknown"
	if ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				p.GitCommit = s.Value[:min(len(s.Value), 7)]
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					p.BuildTime = t.UTC().Format(time.ANSIC)
				}
			case "vcs.modified":
				if s.Value == "true" && p.GitCommit != "unknown" {
					p.GitCommit += "-dirty"
				}
			}
		}
		for _, d := range bi.Deps {
			if strings.HasPrefix(d.Path, "github.com/hanwen/go-fuse") {
				fuse = d.Version
			}
		}
	}
	v := versionInfo{Client: p}
	v.Server.Platform.Name = "nook (no daemon: this binary runs the containers)"
	v.Server.versionPart = p
	v.Server.Rootless = true
	v.Server.Components = []versionComponent{{Name: "Engine", Version: p.Version}, {Name: "go-fuse", Version: fuse}}
	return v
}
