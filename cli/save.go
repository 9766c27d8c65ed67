package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	"golang.org/x/term"

	"nook/image"
	"nook/internal/atomicfile"
	"nook/internal/compression"
	"nook/tarball"
)

// SaveCmd is `nook save`: images to one tar, as `docker save` writes it.
type SaveCmd struct {
	Output   string   `short:"o" placeholder:"FILE" help:"Write to FILE instead of stdout (- for stdout)."`
	Format   string   `enum:"docker-archive,oci-archive" default:"docker-archive" help:"Archive format (${enum}): docker-archive is Docker 25's (an OCI layout plus manifest.json), which Docker, Podman and skopeo read."`
	Compress string   `enum:"none,gzip,zstd" default:"none" help:"Compress the whole archive (${enum})."`
	Quiet    bool     `short:"q" help:"No progress output."`
	Images   []string `arg:"" name:"image" help:"Images to save: names, ids or digests; a name without tag saves every tag of it."`
}

var errTerminal = errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")

// Run writes the archive.
func (c *SaveCmd) Run(g *Globals) error {
	kind := map[string]compression.Kind{"none": compression.None, "gzip": compression.Gzip, "zstd": compression.Zstd}[c.Compress]
	toStdout := c.Output == "" || c.Output == "-"
	if toStdout {
		if f, ok := g.Stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return errTerminal
		}
	}
	s, err := g.openStore()
	if err != nil {
		return err
	}
	err = s.Export(c.Images, func(imgs []image.ExportImage) error {
		write := func(w io.Writer) error { return c.write(g, w, kind, imgs, s.OpenBlob) }
		if toStdout {
			return write(g.Stdout)
		}
		if fi, err := os.Stat(c.Output); err == nil && !fi.Mode().IsRegular() {
			return writeTo(c.Output, write) // a device or a pipe: no rename over it
		}
		return atomicfile.Write(c.Output, 0o644, write)
	})
	if err != nil {
		return fmt.Errorf("saving %s: %w", joinRefs(c.Images), err)
	}
	return nil
}

func (c *SaveCmd) write(g *Globals, w io.Writer, kind compression.Kind, imgs []image.ExportImage, open func(digest.Digest) (*os.File, error)) error {
	if bar := c.progress(g, imgs); bar != nil {
		w = progressWriter{w, bar}
		defer bar.Finish()
	}
	zw, err := compression.NewWriter(w, kind, 0)
	if err != nil {
		return err
	}
	if err := tarball.Write(zw, imgs, open, tarball.WriteOptions{Format: c.Format}); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// progress is a byte counter on a terminal, nil elsewhere or with -q.
func (c *SaveCmd) progress(g *Globals, imgs []image.ExportImage) *progress {
	var total int64
	for _, img := range imgs {
		total += img.Desc.Size + img.Manifest.Config.Size
		for _, l := range img.Manifest.Layers {
			total += l.Size
		}
	}
	if c.Compress != "none" {
		total = -1
	}
	return g.progressBar(total, "saving", c.Quiet)
}

func writeTo(p string, fill func(io.Writer) error) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func joinRefs(refs []string) string {
	if len(refs) == 1 {
		return refs[0]
	}
	return fmt.Sprintf("%d images", len(refs))
}
