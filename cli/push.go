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
	TLSVerify   *bool  `name:"tls-verify" help:"Check the registry's TLS certificate (default: true, or registries.conf's insecure)."`
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
		Hosts:       hosts.Options{TLSVerify: c.TLSVerify, AuthFile: c.AuthFile, Log: g.Log},
		Log:         g.Log,
	}
	if !c.Quiet {
		if r, err := image.ParseRef(c.Ref); err == nil {
			fmt.Fprintf(g.Stderr, "The push refers to repository [%s]\n", r.Name())
		}
		opts.Progress = pushEvents(g)
	}
	pushed, err := registry.Push(ctx, s, c.Ref, opts)
	for _, p := range pushed {
		if c.Quiet {
			fmt.Fprintln(g.Stdout, p.Ref)
		} else {
			fmt.Fprintf(g.Stdout, "%s: digest: %s size: %d\n", p.Tag, p.Digest, p.Size)
		}
	}
	return err
}

// pushEvents prints one line per layer event, the byte counts aside.
// TODO(reg-pull): the shared renderer (cli/transfer.go) replaces this.
func pushEvents(g *Globals) func(registry.Event) {
	var mu sync.Mutex
	return func(e registry.Event) {
		if e.Status == registry.StatusPushing {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if e.Detail != "" {
			fmt.Fprintf(g.Stderr, "%s: %s %s\n", e.ID, e.Status, e.Detail)
			return
		}
		fmt.Fprintf(g.Stderr, "%s: %s\n", e.ID, e.Status)
	}
}
