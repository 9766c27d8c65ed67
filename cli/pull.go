package cli

import (
	"context"
	"fmt"
	"io"

	"nook/image"
	"nook/registry"
	"nook/registry/hosts"
)

// PullCmd is `nook pull`.
type PullCmd struct {
	Quiet         bool   `short:"q" help:"Print only the image's full reference."`
	AllTags       bool   `short:"a" name:"all-tags" help:"Pull every tag of the repository."`
	Platform      string `help:"Pull the image for this platform, os/arch[/variant], from a multi-platform image (default: this machine's)."`
	TLSVerify     bool   `name:"tls-verify" default:"true" negatable:"" help:"Check the registry's TLS certificate (--tls-verify=false skips it)."`
	AuthFile      string `name:"authfile" type:"path" help:"Credentials file (default: Docker's config.json)."`
	MaxConcurrent int    `name:"max-concurrent-downloads" default:"3" help:"Layers downloaded at once."`
	Image         string `arg:"" help:"Image to pull: NAME[:TAG|@DIGEST]."`
}

// Run pulls the image.
func (c *PullCmd) Run(g *Globals) error {
	opts, err := pullOptions(c.Platform, c.TLSVerify, c.AuthFile, c.MaxConcurrent)
	if err != nil {
		return err
	}
	opts.AllTags = c.AllTags
	if _, err := image.ParseRef(c.Image); err != nil {
		return err
	}
	if done, err := g.enterUserNS(); done {
		return err
	}
	_, err = g.pull(c.Image, opts, c.Quiet, g.Stdout)
	return err
}

// pullOptions checks the flags pull, run and create share.
func pullOptions(platform string, tlsVerify bool, authFile string, concurrent int) (registry.PullOptions, error) {
	opts := registry.PullOptions{MaxConcurrent: concurrent, Chown: canChown(), Hosts: hosts.Options{AuthFile: authFile}}
	if platform != "" {
		p, err := image.ParsePlatform(platform)
		if err != nil {
			return opts, err
		}
		opts.Platform = p
	}
	if concurrent < 1 {
		return opts, fmt.Errorf("--max-concurrent-downloads %d: want at least 1", concurrent)
	}
	if !tlsVerify {
		opts.Hosts.TLSVerify = &tlsVerify
	}
	return opts, nil
}

// pull runs a pull with Docker's output: progress and status on stderr,
// the full reference of each image pulled on stdout.
func (g *Globals) pull(ref string, opts registry.PullOptions, quiet bool, stdout io.Writer) ([]registry.Pulled, error) {
	s, err := g.openStore()
	if err != nil {
		return nil, err
	}
	opts.Log = g.Log
	view := g.newTransferView(quiet)
	opts.Progress = view.Event
	if !quiet {
		opts.Resolved = func(r image.Ref) {
			tag := r.Tag
			if r.Digest != "" {
				tag = r.Digest.String()
			}
			fmt.Fprintf(g.Stderr, "%s: Pulling from %s\n", tag, r.Path)
		}
	}
	pulled, err := registry.Pull(context.Background(), s, ref, opts)
	view.Done()
	for _, p := range pulled {
		for _, w := range p.Warnings {
			fmt.Fprintf(g.Stderr, "nook: warning: %s\n", w)
		}
		if !quiet {
			fmt.Fprintf(g.Stderr, "Digest: %s\n", p.Digest)
			status := "Downloaded newer image for "
			if p.UpToDate {
				status = "Image is up to date for "
			}
			fmt.Fprintf(g.Stderr, "Status: %s%s\n", status, p.Ref.Familiar())
		}
		fmt.Fprintln(stdout, p.Ref.String())
	}
	return pulled, err
}
