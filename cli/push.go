package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"

	"nook/image"
	"nook/registry"
	"nook/registry/hosts"
)

// PushCmd is `nook push`: an image of the store to its registry.
type PushCmd struct {
	AllTags     bool   `short:"a" name:"all-tags" help:"Push every tag of the repository."`
	Quiet       bool   `short:"q" help:"Print only the reference pushed (and errors)."`
	TLSVerify   bool   `name:"tls-verify" default:"true" negatable:"" help:"Check the registry's TLS certificate (--tls-verify=false skips it)."`
	AuthFile    string `name:"authfile" type:"path" placeholder:"FILE" help:"Credentials file (default: Docker's config.json)."`
	Compression string `name:"compression-format" enum:"gzip,zstd" default:"gzip" help:"Compression for layers the store keeps uncompressed (${enum})."`
	Ref         string `arg:"" name:"name" help:"NAME[:TAG]: without a tag, :latest, or with -a every tag."`
}

// Run pushes and prints, as Docker does, one line per tag pushed.
func (c *PushCmd) Run(g *Globals) error {
	s, err := g.openStore()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := registry.PushOptions{
		AllTags:     c.AllTags,
		Compression: c.Compression,
		Hosts:       hosts.Options{AuthFile: c.AuthFile, Log: g.Log},
		Log:         g.Log,
	}
	if !c.TLSVerify {
		opts.Hosts.TLSVerify = &c.TLSVerify
	}
	view := g.newTransferView(c.Quiet)
	var header sync.Once
	opts.Progress = func(e registry.Event) {
		// Said once the registry has answered: a push it refuses is
		// the error's one line alone.
		header.Do(func() {
			if r, err := image.ParseRef(c.Ref); err == nil {
				fmt.Fprintf(g.Stderr, "The push refers to repository [%s]\n", r.Name())
			}
		})
		view.Event(e)
	}
	pushed, err := registry.Push(ctx, s, c.Ref, opts)
	view.Done()
	for _, p := range pushed {
		if c.Quiet {
			fmt.Fprintln(g.Stdout, p.Ref)
		} else {
			fmt.Fprintf(g.Stdout, "%s: digest: %s size: %d\n", p.Tag, p.Digest, p.Size)
		}
	}
	return err
}
