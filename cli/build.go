package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"nook/build"
)

// BuildCmd is `nook build` (and `nook image build`).
type BuildCmd struct {
	Tag       []string `short:"t" sep:"none" placeholder:"NAME[:TAG]" help:"Name the image (repeatable)."`
	File      string   `short:"f" placeholder:"FILE|-" help:"The Dockerfile (default: CONTEXT/Dockerfile; - reads it from stdin)."`
	BuildArg  []string `name:"build-arg" sep:"none" placeholder:"KEY=VALUE" help:"Set a build argument (KEY alone takes this shell's value)."`
	Target    string   `help:"Build this stage and the ones it needs, not the last."`
	NoCache   bool     `name:"no-cache" help:"Run every step, without the cache."`
	Pull      bool     `help:"Pull FROM images even when the store has them."`
	Label     []string `sep:"none" placeholder:"KEY=VALUE" help:"Set a label on the image."`
	Iidfile   string   `type:"path" help:"Write the image id to this file."`
	Quiet     bool     `short:"q" help:"Print only the image id."`
	Network   string   `default:"host" enum:"host,none" help:"RUN's network: host or none."`
	Secret    []string `sep:"none" placeholder:"id=ID,src=PATH" help:"A file RUN --mount=type=secret reads (never stored in the image)."`
	Timestamp *int64   `help:"Seconds since 1970: new files' times are clamped to it and the image's times are it, for a reproducible image (default: $SOURCE_DATE_EPOCH)."`
	Context   string   `arg:"" placeholder:"CONTEXT|-" help:"The build context directory (- reads a tar from stdin)."`
}

// Run builds and prints the image id.
func (c *BuildCmd) Run(g *Globals) error {
	opts, err := c.options()
	if err != nil {
		return err
	}
	if c.Context == "-" && c.File == "-" {
		return errors.New("the context and the Dockerfile cannot both come from stdin")
	}
	// Layers keep their owners and build containers start from here.
	if done, err := g.enterUserNS(); done {
		return err
	}
	if c.Context == "-" {
		dir, err := build.UnpackContext(g.Stdin)
		if dir != "" {
			defer os.RemoveAll(dir)
		}
		if err != nil {
			return err
		}
		opts.Context = dir
	}
	if err := c.readDockerfile(g, &opts); err != nil {
		return err
	}
	s, err := g.openStore()
	if err != nil {
		return err
	}
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	if opts.PullOptions, err = pullOptions("", true, "", 3); err != nil {
		return err
	}
	opts.Out, opts.LogLevel, opts.Logger = g.Stderr, g.slogLevel(), g.Log
	if c.Quiet {
		opts.Out = io.Discard
	}
	// ^C ends the build between steps, or kills the step's command, and
	// still removes the build container.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	img, err := build.Build(ctx, s, m, opts)
	var se *build.StepError
	if errors.As(err, &se) {
		fmt.Fprintf(g.Stderr, "nook: %v\n", err)
		return ExitError{Code: 1}
	}
	if err != nil {
		return err
	}
	if c.Iidfile != "" {
		if err := os.WriteFile(c.Iidfile, []byte(img.ID.String()), 0o644); err != nil {
			return fmt.Errorf("writing image id file: %w", err)
		}
	}
	fmt.Fprintln(g.Stdout, img.ID.Encoded())
	return nil
}

// options checks the flags that need no file.
func (c *BuildCmd) options() (build.Options, error) {
	o := build.Options{Tags: c.Tag, Target: c.Target, NoCache: c.NoCache, Pull: c.Pull,
		Network: c.Network, Context: c.Context, BuildArgs: map[string]string{}}
	for _, kv := range c.BuildArg {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			if v, ok = os.LookupEnv(k); !ok {
				continue
			}
		}
		o.BuildArgs[k] = v
	}
	for _, kv := range c.Label {
		k, v, _ := strings.Cut(kv, "=")
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[k] = v
	}
	for _, s := range c.Secret {
		id, src, err := parseSecret(s)
		if err != nil {
			return o, err
		}
		if o.Secrets == nil {
			o.Secrets = map[string]string{}
		}
		o.Secrets[id] = src
	}
	o.Timestamp = c.Timestamp
	if o.Timestamp == nil {
		if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return o, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", v)
			}
			o.Timestamp = &n
		}
	}
	return o, nil
}

// parseSecret reads --secret id=ID,src=PATH (source= too, type=file).
func parseSecret(s string) (id, src string, err error) {
	for _, f := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "id":
			id = v
		case "src", "source":
			src = v
		case "type":
			if v != "file" {
				return "", "", fmt.Errorf("--secret %s: only type=file is supported", s)
			}
		default:
			return "", "", fmt.Errorf("--secret %s: unknown field %q (id, src, type are)", s, k)
		}
	}
	if id == "" || src == "" {
		return "", "", fmt.Errorf("--secret %s: want id=ID,src=PATH", s)
	}
	abs, err := filepath.Abs(src)
	return id, abs, err
}

// readDockerfile reads -f (or CONTEXT/Dockerfile, or stdin for -).
func (c *BuildCmd) readDockerfile(g *Globals, o *build.Options) error {
	name := c.File
	var err error
	switch {
	case name == "-":
		o.Dockerfile, err = io.ReadAll(g.Stdin)
		o.DockerfileName = "Dockerfile (stdin)"
	default:
		if name == "" {
			name = filepath.Join(o.Context, "Dockerfile")
			if _, serr := os.Stat(name); serr != nil {
				if alt := filepath.Join(o.Context, "Containerfile"); fileExists(alt) {
					name = alt
				}
			}
		}
		o.Dockerfile, err = os.ReadFile(name)
		o.DockerfileName = name
	}
	if err != nil {
		return fmt.Errorf("reading the Dockerfile: %w", err)
	}
	return nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
