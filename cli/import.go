package cli

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"nook/build"
	"nook/image"
)

// ImportCmd is `nook import`: a root filesystem tar becomes a one-layer image.
type ImportCmd struct {
	File string `arg:"" help:"Tar file of a root filesystem (plain, gzip, zstd, bzip2 or xz), or - for stdin."`
	Ref  string `arg:"" optional:"" help:"Name for the image, REPOSITORY[:TAG]."`
	changeFlag
	Message  string `short:"m" help:"Commit message for the image's history."`
	Platform string `help:"Platform of the image, linux/ARCH (only this machine's is accepted)."`
	Quiet    bool   `short:"q" help:"No progress output."`
}

// Run imports the tar.
func (c *ImportCmd) Run(g *Globals) error {
	if strings.Contains(c.File, "://") {
		return fmt.Errorf("importing %s: URLs are not supported; download the file and import it", c.File)
	}
	if c.Platform != "" && c.Platform != "linux/"+runtime.GOARCH {
		return fmt.Errorf("importing %s: platform %s is not this machine's (linux/%s)", c.File, c.Platform, runtime.GOARCH)
	}
	if done, err := g.enterUserNS(); done {
		return err
	}
	in, size, closeIn, err := openInput(g, c.File)
	if err != nil {
		return err
	}
	defer closeIn()
	s, err := g.openStore()
	if err != nil {
		return err
	}
	r, finish := g.progressReader(in, size, "importing", c.Quiet)
	res, err := s.Import(r, image.ImportOptions{
		Name: c.Ref, Message: c.Message, Changes: build.Changes(c.Change), Source: c.File, Chown: canChown(),
	})
	finish()
	if err != nil {
		return fmt.Errorf("importing %s: %w", c.File, err)
	}
	warnSkipped(g, res.Skipped)
	if res.SingleID {
		fmt.Fprintln(g.Stderr, "nook: warning: only one id is mapped (single-id mode): files belong to root inside containers, their owners are recorded in user.rootlesscontainers and kept in images")
	}
	fmt.Fprintln(g.Stdout, res.Image.ID)
	return nil
}

// changeFlag is --change of import and commit, one definition for both:
// each flag is one Dockerfile instruction, never split at commas, which
// JSON forms (CMD ["cat","a"]) hold.
type changeFlag struct {
	Change []string `short:"c" sep:"none" placeholder:"INSTRUCTION" help:"Apply a Dockerfile instruction to the image: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR."`
}

// openInput opens a file argument, "-" meaning stdin, and its size when known.
func openInput(g *Globals, name string) (io.Reader, int64, func(), error) {
	if name == "-" {
		return g.Stdin, -1, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("opening %s: %w", name, err)
	}
	var size int64 = -1
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, func() { f.Close() }, nil
}
