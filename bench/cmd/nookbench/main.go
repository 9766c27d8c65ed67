// Command nookbench is the driver of nook's benchmark suites. bench/run.sh
// builds and runs it; it prints each suite's Markdown table on stdout and
// its progress on stderr.
//
//	nookbench [flags] [fs|all]  run the filesystem suite, or every suite (default)
//	nookbench worker OP ARGS   one timed operation (the driver runs this as the bench user)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"nook/bench/fixture"
	"nook/bench/fsbench"
	"nook/bench/host"
	"nook/bench/report"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := fsbench.Worker(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("nookbench", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var (
		runs    = fl.Int("runs", 5, "timed runs per workload and configuration; the minimum is reported")
		quick   = fl.Bool("quick", false, "small fixture and one run: a smoke test in under a minute")
		timeout = fl.Duration("timeout", 5*time.Minute, "limit for each single operation")
		work    = fl.String("work", "", "work dir for the fixture and scratch trees (default $TMPDIR or /var/tmp, /nookbench-USER)")
		as      = fl.String("user", "", "unprivileged user that mounts and runs the workloads (default: nook-ci when root, else yourself)")
		nook    = fl.String("nook", "", "nook binary; empty leaves nook's column out")
		fo      = fl.String("fuse-overlayfs", "fuse-overlayfs", "fuse-overlayfs binary; empty leaves its column out")
		userns  = fl.String("nook-userns", "auto", "mount nook inside unshare -Urm: auto (if plain fails), always, never")
		keep    = fl.Bool("keep", false, "keep the work dir (and its fixture) afterwards")
		reuse   = fl.Bool("reuse", false, "reuse a kept fixture built from the same spec")
		noCold  = fl.Bool("no-cold", false, "skip the cold runs (as root they drop the whole machine's page cache)")
		verbose = fl.Bool("v", false, "log every run")
		only    = fl.String("only", "", "regular expression: run only the workloads whose name matches (e.g. 'untar|copy-up')")
	)
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: nookbench [flags] [fs|all]\n       nookbench worker OP ARGS...")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	which := "all"
	if fl.NArg() == 1 {
		which = fl.Arg(0)
	}
	if fl.NArg() > 1 || (which != "all" && !slices.ContainsFunc(suites(), func(s suite) bool { return s.name == which })) {
		fl.Usage()
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	opts, err := options(*as, *work, *fo, *nook)
	if err != nil {
		log.Error("setting up", "err", err)
		return 1
	}
	opts.Spec, opts.WriteBytes = fixture.Full(), 1<<30
	if *quick {
		opts.Spec, opts.WriteBytes = fixture.Quick(), 128<<20
	}
	opts.Runs, opts.Quick, opts.Timeout, opts.NookUserns, opts.Reuse, opts.NoCold, opts.Only, opts.Log =
		*runs, *quick, *timeout, *userns, *reuse, *noCold, *only, log
	set := map[string]bool{}
	fl.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick && !set["runs"] {
		opts.Runs = 1
	}
	if *quick {
		opts.Timeout = min(opts.Timeout, time.Minute)
	}
	if opts.Runs < 1 {
		log.Error("-runs must be at least 1")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := runSuites(ctx, which, opts, stdout)
	if !*keep {
		cleanWork(opts)
	}
	return code
}

// suite is one table of the benchmark. A new suite (run/exec/ps latency,
// save/load) is a package like fsbench with a Run of this shape, listed in
// suites.
type suite struct {
	name string
	run  func(context.Context, fsbench.Options) (*report.Table, []string, error)
}

func suites() []suite {
	return []suite{
		{"fs", func(ctx context.Context, o fsbench.Options) (*report.Table, []string, error) {
			tab, notes, err := fsbench.Run(ctx, o)
			return tab, append(fsbench.Method(o.Quick), notes...), err
		}},
	}
}

// runSuites runs the named suite, or every suite for "all", printing the
// machine line once and each suite's table with its notes.
func runSuites(ctx context.Context, name string, opts fsbench.Options, stdout io.Writer) int {
	code := 0
	fmt.Fprintf(stdout, "Machine: %s · load average %s at the start. Each cell: the minimum of %d run(s), as user %s.\n\n",
		host.Machine(opts.Work), host.LoadAverage(), opts.Runs, opts.User.Name)
	for _, s := range suites() {
		if name != "all" && name != s.name {
			continue
		}
		tab, notes, err := s.run(ctx, opts)
		if tab != nil {
			if werr := tab.Markdown(stdout); werr != nil {
				err = errors.Join(err, werr)
			}
			fmt.Fprintln(stdout)
			for _, n := range notes {
				fmt.Fprintf(stdout, "- %s\n", n)
			}
			fmt.Fprintf(stdout, "- Load average at the end: %s.\n\n", host.LoadAverage())
		}
		if err != nil {
			opts.Log.Error("suite failed", "suite", s.name, "err", err)
			code = 1
		}
		if ctx.Err() != nil {
			break
		}
	}
	return code
}

// options resolves who runs the workloads, where, and which binaries.
func options(as, work, fo, nook string) (fsbench.Options, error) {
	var o fsbench.Options
	if as == "" && host.IsRoot() {
		as = "nook-ci"
	}
	u, err := host.LookupUser(as)
	if err != nil {
		return o, err
	}
	if u.UID == 0 {
		return o, errors.New("the workloads must run as an unprivileged user: pass -user")
	}
	o.User = u
	if o.Self, err = os.Executable(); err != nil {
		return o, fmt.Errorf("finding this binary: %w", err)
	}
	if work == "" {
		dir := os.Getenv("TMPDIR")
		if dir == "" || host.IsRoot() {
			dir = "/var/tmp"
		}
		work = filepath.Join(dir, "nookbench-"+u.Name)
	}
	if o.Work, err = filepath.Abs(work); err != nil {
		return o, fmt.Errorf("resolving work dir %s: %w", work, err)
	}
	for _, bin := range []struct {
		path *string
		in   string
	}{{&o.FuseOverlayfs, fo}, {&o.Nook, nook}} {
		if bin.in == "" {
			continue
		}
		p, err := exec.LookPath(bin.in)
		if err != nil {
			return o, fmt.Errorf("finding %s: %w", bin.in, err)
		}
		if *bin.path, err = filepath.Abs(p); err != nil {
			return o, err
		}
	}
	return o, nil
}

// cleanWork removes the work dir as the bench user, who owns what is in it.
func cleanWork(o fsbench.Options) {
	if !strings.Contains(filepath.Base(o.Work), "nookbench") {
		o.Log.Warn("not removing a work dir not named nookbench*", "dir", o.Work)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := o.User.Command(ctx, nil, "rm", "-rf", "--one-file-system", o.Work).CombinedOutput(); err != nil {
		o.Log.Warn("removing work dir", "dir", o.Work, "err", err, "output", string(out))
	}
}
