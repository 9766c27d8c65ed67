package fsbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"nook/bench/fixture"
	"nook/bench/host"
	"nook/bench/report"
)

// target is a configuration's tree for the read phase.
type target struct {
	cfg  *config
	root string
	m    *mount      // nil for native
	base host.Memory // the server right after mounting
	dir  string      // scratch dir of the mount, removed after the phase
}

// serverMemory is a union server's memory before and after the walks.
type serverMemory struct{ base, peak host.Memory }

// reads runs the read workloads, interleaving configurations run by run,
// each union on one mount for the whole phase; then it reads the servers'
// memory high-water marks and unmounts.
func (s *suite) reads(ctx context.Context, ws []workload, rows []report.Row) (map[string]serverMemory, error) {
	var ts []*target
	for _, c := range s.configs {
		t, err := s.readTarget(ctx, c)
		if err != nil {
			s.log.Error("mount failed", "config", c.name, "err", err)
			for i := range rows {
				rows[i].Miss(c.name, "mount failed: "+oneLine(err))
			}
			continue
		}
		ts = append(ts, t)
	}
	drop := func(t *target, err error) { // a timed-out mount may be wedged: take it out
		for i, u := range ts {
			if u == t {
				ts = append(ts[:i], ts[i+1:]...)
			}
		}
		if t.m != nil {
			s.unmount(t.m)
			s.clean(t.dir)
		}
		for i := range rows {
			rows[i].Miss(t.cfg.name, "mount torn down after: "+oneLine(err))
		}
	}
	for wi, w := range ws {
		if w.write {
			continue
		}
		row := &rows[wi]
		if w.cold && (!host.IsRoot() || s.opts.NoCold) {
			why := "cold runs drop the page cache, which needs root"
			if s.opts.NoCold {
				why = "cold runs switched off (-no-cold)"
			}
			for _, t := range ts {
				row.Miss(t.cfg.name, why)
			}
			continue
		}
		s.log.Info("workload", "name", w.name)
		failed := map[*target]bool{}
		for i := -1; i < s.opts.Runs; i++ {
			if i < 0 && w.cold {
				continue // run -1 only warms the cache
			}
			for _, t := range rotate(ts, max(i, 0)) {
				if failed[t] {
					continue
				}
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				r, err := s.timed(ctx, t.cfg, w, t.root, i >= 0)
				switch {
				case errors.Is(err, ErrTimeout):
					drop(t, err)
				case err != nil:
					failed[t] = true
					row.Miss(t.cfg.name, oneLine(err))
				case i >= 0:
					row.Add(t.cfg.name, r.Millis())
				}
			}
		}
	}
	mem := map[string]serverMemory{}
	for _, t := range ts {
		if t.m == nil {
			continue
		}
		if peak, err := host.TreeMemory(t.m.server.Process.Pid); err == nil {
			mem[t.cfg.name] = serverMemory{base: t.base, peak: peak}
		}
		s.unmount(t.m)
		s.clean(t.dir)
	}
	return mem, ctx.Err()
}

func (s *suite) readTarget(ctx context.Context, c *config) (*target, error) {
	if c.native() {
		return &target{cfg: c, root: s.fx.Native}, nil
	}
	base, err := s.scratch(ctx, "read-"+c.name)
	if err != nil {
		return nil, err
	}
	m, err := s.mount(ctx, c, base)
	if err != nil {
		return nil, err
	}
	t := &target{cfg: c, root: m.dir, m: m, dir: base}
	t.base, err = host.TreeMemory(m.server.Process.Pid)
	return t, err
}

// timed runs one workload once (cold: after dropping caches) and checks
// its result; timing is for the caller to keep or not.
func (s *suite) timed(ctx context.Context, c *config, w workload, root string, timed bool) (Result, error) {
	if w.cold {
		if err := host.DropCaches(); err != nil {
			return Result{}, err
		}
	}
	r, err := s.work(ctx, c, w.args(s.fx, root, c.native())...)
	if err != nil {
		return r, err
	}
	if w.want != nil {
		if err := w.want(s.fx, r); err != nil {
			return r, err
		}
	}
	if timed {
		s.log.Debug("run", "workload", w.name, "config", c.name, "ms", fmt.Sprintf("%.1f", r.Millis()))
	}
	return r, nil
}

// writes runs each write workload on a fresh tree per run: a fresh mount
// with an empty upper dir, or a native scratch dir.
func (s *suite) writes(ctx context.Context, ws []workload, rows []report.Row) error {
	for wi, w := range ws {
		if !w.write {
			continue
		}
		s.log.Info("workload", "name", w.name)
		failed := map[string]bool{}
		for i := range s.opts.Runs {
			for _, c := range rotate(s.configs, i) {
				if failed[c.name] {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				ms, err := s.writeRun(ctx, c, w)
				if err != nil {
					failed[c.name] = true
					rows[wi].Miss(c.name, oneLine(err))
					s.log.Error("write run failed", "workload", w.name, "config", c.name, "err", err)
					continue
				}
				rows[wi].Add(c.name, ms)
			}
		}
	}
	for _, dir := range s.later {
		s.clean(dir)
	}
	s.later = nil
	return nil
}

func (s *suite) writeRun(ctx context.Context, c *config, w workload) (ms float64, err error) {
	base, err := s.scratch(ctx, "write-"+c.name)
	if err != nil {
		return 0, err
	}
	if w.manyFiles {
		s.later = append(s.later, base)
	} else {
		defer s.clean(base)
	}
	root := base
	var m *mount
	if c.native() {
		if w.prep != nil {
			for _, args := range w.prep(s.fx, root) {
				if _, err := s.work(ctx, nil, args...); err != nil {
					return 0, err
				}
			}
		}
	} else {
		if m, err = s.mount(ctx, c, base); err != nil {
			return 0, err
		}
		defer s.unmount(m)
		root = m.dir
	}
	// Write back the previous run's data now, not during this one.
	if _, err := s.work(ctx, nil, "sync"); err != nil {
		return 0, err
	}
	r, err := s.timed(ctx, c, w, root, true)
	if err != nil {
		return 0, err
	}
	if m != nil && strings.HasPrefix(w.name, "copy-up") {
		// The lower file must have been copied up whole, not just appended to.
		fi, err := os.Stat(filepath.Join(m.upper, fixture.BigName))
		if err != nil || fi.Size() != s.fx.Spec.BigSize+1 {
			return 0, fmt.Errorf("copy-up left no %d-byte %s in the upper dir: %v", s.fx.Spec.BigSize+1, fixture.BigName, err)
		}
	}
	return r.Millis(), nil
}

// memoryRows reports each server's peak memory after the walks, and what
// it grew by per entry of the tree the walks touched.
func (s *suite) memoryRows(mem map[string]serverMemory) []report.Row {
	peak := report.Row{Name: "FUSE server peak RSS after the walks", Unit: "MiB"}
	per := report.Row{Name: fmt.Sprintf("server RSS growth per file touched (%d entries)", s.fx.Merged.Entries),
		Unit: "B/file", Bars: []report.Bar{{Max: 1024, Strict: true}}}
	for _, c := range s.configs {
		m, ok := mem[c.name]
		switch {
		case c.native():
			peak.Miss(c.name, "no FUSE server")
			per.Miss(c.name, "no FUSE server")
		case !ok:
			peak.Miss(c.name, "server memory not read")
			per.Miss(c.name, "server memory not read")
		default:
			peak.Add(c.name, float64(m.peak.Peak)/(1<<20))
			per.Add(c.name, float64(m.peak.Peak-m.base.RSS)/float64(s.fx.Merged.Entries))
		}
	}
	return []report.Row{peak, per}
}

// clean removes a scratch dir, also after ctx ended; a failure only warns,
// as the next run starts from a fresh dir anyway.
func (s *suite) clean(dir string) {
	if _, err := s.work(context.Background(), nil, "clean", dir); err != nil {
		s.log.Warn("removing scratch dir", "dir", dir, "err", err)
	}
}

func oneLine(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}
