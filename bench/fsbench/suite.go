// Package fsbench is the filesystem suite of nook's benchmark: the same
// workloads, in one run, on the native disk, on Debian's fuse-overlayfs and
// on nook's FUSE union, each union mounted as the unprivileged bench user
// over the same two layers with its own fresh upper dir.
//
// The driver (Run) may run as root: it then keeps root only to drop the
// page cache before cold runs and to abort a stuck FUSE connection; every
// mount and every workload runs as the bench user, in a worker process (the
// same binary, "worker" verb) that times itself.
package fsbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"nook/bench/fixture"
	"nook/bench/host"
	"nook/bench/report"
)

// Options configure a run.
type Options struct {
	Work          string        // work dir: fixture and scratch, on the disk measured
	Runs          int           // timed runs per workload and configuration
	Spec          fixture.Spec  // the fixture: fixture.Full, or Quick for a smoke test
	WriteBytes    int64         // size of the write workload
	Quick         bool          // a smoke test: said under the table
	Timeout       time.Duration // per worker operation
	Self          string        // this binary, run as the worker
	User          *host.User    // who mounts and runs the workloads
	FuseOverlayfs string        // fuse-overlayfs binary; "" leaves the column out
	Nook          string        // nook binary; "" leaves the column out
	NookUserns    string        // "auto", "always" or "never": mount nook inside unshare -Urm
	Reuse         bool          // keep a fixture whose spec matches, from an earlier -keep run
	NoCold        bool          // skip cold runs: dropping the page cache disturbs everyone's timings
	Only          string        // regular expression: run only the workloads whose name matches
	Log           *slog.Logger
}

// ErrTimeout marks a worker operation that ran out of time.
var ErrTimeout = errors.New("timed out")

type suite struct {
	opts    Options
	log     *slog.Logger
	fx      *fixture.Manifest
	configs []*config
	live    map[*mount]bool
	seq     int // numbers scratch dirs
	// later holds the scratch dirs of many-file write runs, removed once
	// every write run is done (see workload.manyFiles).
	later    []string
	notes    []string
	lockFile *os.File
	// nookMissing says why nook has no column, when it has none.
	nookMissing string
}

// Run runs the suite and returns its table and notes on how it ran. It
// tears down every mount it made before returning, also when ctx ends.
func Run(ctx context.Context, opts Options) (tab *report.Table, notes []string, err error) {
	s := &suite{opts: opts, log: opts.Log, live: map[*mount]bool{},
		nookMissing: "no nook binary with a `mount` verb was given (run.sh passes one once `nook mount --help` works)"}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	defer s.teardown()
	if err := s.prepare(ctx); err != nil {
		return nil, nil, err
	}
	ws, err := selectWorkloads(workloads(s.fx, s.opts.WriteBytes), s.opts.Only)
	if err != nil {
		return nil, nil, err
	}
	rows := make([]report.Row, len(ws))
	for i, w := range ws {
		rows[i] = report.Row{Name: w.name, Unit: "ms", Bars: w.bars}
	}
	mem, err := s.reads(ctx, ws, rows)
	if err != nil {
		return nil, nil, err
	}
	if err := s.writes(ctx, ws, rows); err != nil {
		return nil, nil, err
	}
	rows = append(rows, s.memoryRows(mem)...)
	tab = &report.Table{Title: "Filesystem", Subject: Nook, Rows: rows,
		Ratios: [][2]string{{FuseOverlayfs, Native}, {Nook, Native}, {Nook, FuseOverlayfs}}}
	for _, c := range s.configs {
		tab.Configs = append(tab.Configs, c.name)
	}
	if !s.has(Nook) {
		tab.Configs = append(tab.Configs, Nook)
		for i := range tab.Rows {
			tab.Rows[i].Miss(Nook, s.nookMissing)
		}
	}
	return tab, s.notes, ctx.Err()
}

func (s *suite) has(name string) bool {
	for _, c := range s.configs {
		if c.name == name {
			return true
		}
	}
	return false
}

// work runs one worker operation as the bench user, in cfg's namespace
// (nil: the host's), bounded by the operation timeout.
func (s *suite) work(ctx context.Context, cfg *config, args ...string) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var prefix []string
	if cfg != nil {
		prefix = cfg.prefix()
	}
	cmd := s.opts.User.Command(ctx, prefix, s.opts.Self, append([]string{"worker"}, args...)...)
	cmd.Dir = "/" // never inside a mount: the server must not serve its own cwd
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return Result{}, fmt.Errorf("worker %s: %w after %s", strings.Join(args, " "), ErrTimeout, s.opts.Timeout)
	}
	if err != nil {
		return Result{}, fmt.Errorf("worker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var r Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return Result{}, fmt.Errorf("worker %s printed %q: %w", args[0], stdout.String(), err)
	}
	return r, nil
}

// scratch makes a fresh directory owned by the bench user for one run.
func (s *suite) scratch(ctx context.Context, label string) (string, error) {
	s.seq++
	dir := filepath.Join(s.opts.Work, "runs", fmt.Sprintf("%03d-%s", s.seq, label))
	_, err := s.work(ctx, nil, "mkdir", dir)
	return dir, err
}

// teardown unmounts whatever is still mounted and ends the namespaces.
func (s *suite) teardown() {
	for m := range s.live {
		s.unmount(m)
	}
	for _, dir := range s.later {
		s.clean(dir)
	}
	for _, c := range s.configs {
		if c.ns != nil {
			c.ns.close()
		}
	}
	if s.lockFile != nil {
		s.lockFile.Close()
	}
}

// rotate starts run i at a different configuration, so no configuration
// always runs right after the same neighbour's cache traffic.
func rotate[T any](xs []T, i int) []T {
	if len(xs) == 0 {
		return xs
	}
	i %= len(xs)
	return append(append([]T{}, xs[i:]...), xs[:i]...)
}

func (s *suite) note(format string, args ...any) {
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}
