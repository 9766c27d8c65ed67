package fsbench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"nook/bench/fixture"
)

// prepare makes the work dir and the fixture, and decides the columns.
func (s *suite) prepare(ctx context.Context) error {
	if err := os.MkdirAll(s.opts.Work, 0o755); err != nil {
		return fmt.Errorf("creating work dir %s: %w", s.opts.Work, err)
	}
	if err := s.opts.User.Chown(s.opts.Work); err != nil {
		return err
	}
	if err := s.lock(); err != nil {
		return err
	}
	if _, err := s.work(ctx, nil, "noop"); err != nil {
		return fmt.Errorf("running the worker as %s (is %s readable and executable by it?): %w",
			s.opts.User.Name, s.opts.Self, err)
	}
	// Scratch dirs of an interrupted run.
	if _, err := s.work(ctx, nil, "clean", filepath.Join(s.opts.Work, "runs")); err != nil {
		return err
	}
	if err := s.fixture(ctx); err != nil {
		return err
	}
	s.configs = []*config{{name: Native}}
	if s.opts.FuseOverlayfs != "" {
		s.configs = append(s.configs, &config{name: FuseOverlayfs, server: []string{s.opts.FuseOverlayfs}})
	}
	if s.opts.Nook != "" {
		c, err := s.nookConfig(ctx)
		if err != nil {
			s.log.Warn("leaving nook out", "err", err)
			s.nookMissing = "nook left out: " + oneLine(err)
		} else {
			s.configs = append(s.configs, c)
		}
	}
	return nil
}

// fixture builds the fixture as the bench user, or reuses a kept one
// built from the same spec.
func (s *suite) fixture(ctx context.Context) error {
	dir := filepath.Join(s.opts.Work, "fixture")
	if s.opts.Reuse {
		if m, err := readManifest(dir); err == nil && m.Spec == s.opts.Spec {
			s.log.Info("reusing fixture", "dir", dir)
			s.fx = m
			return nil
		}
	}
	if _, err := s.work(ctx, nil, "clean", dir); err != nil {
		return err
	}
	spec, err := json.Marshal(s.opts.Spec)
	if err != nil {
		return fmt.Errorf("encoding fixture spec: %w", err)
	}
	s.log.Info("building fixture", "dir", dir, "files", s.opts.Spec.Files, "big_mib", s.opts.Spec.BigSize>>20)
	r, err := s.work(ctx, nil, "fixture", dir, string(spec))
	if err != nil {
		return err
	}
	s.log.Info("fixture built", "seconds", fmt.Sprintf("%.1f", r.Millis()/1000))
	s.fx, err = readManifest(dir)
	return err
}

func readManifest(dir string) (*fixture.Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, fixture.ManifestName))
	if err != nil {
		return nil, fmt.Errorf("reading fixture manifest: %w", err)
	}
	var m fixture.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding fixture manifest in %s: %w", dir, err)
	}
	return &m, nil
}

// lock keeps a second run off this work dir, whose mounts and scratch
// trees it would tear down. The lock goes with the process.
func (s *suite) lock() error {
	f, err := os.OpenFile(filepath.Join(s.opts.Work, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening work dir lock: %w", err)
	}
	if err := s.opts.User.Chown(f.Name()); err != nil { // so the user's own runs can lock it
		f.Close()
		return err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("locking work dir %s (is another run using it?): %w", s.opts.Work, err)
	}
	s.lockFile = f
	return nil
}

// nookConfig checks that nook has a mount verb and finds how it mounts for
// an unprivileged user: through fusermount3 like fuse-overlayfs, or, if
// that fails (or NookUserns says so), inside a user namespace.
func (s *suite) nookConfig(ctx context.Context) (*config, error) {
	c := &config{name: Nook, server: []string{s.opts.Nook, "mount"}}
	if err := s.tool(c, 30*time.Second, s.opts.Nook, "mount", "--help"); err != nil {
		return nil, fmt.Errorf("nook has no mount verb: %w", err)
	}
	var plainErr error
	if s.opts.NookUserns != "always" {
		if plainErr = s.trial(ctx, c); plainErr == nil {
			s.note("nook mounts as the plain user, like fuse-overlayfs (through fusermount3).")
			return c, nil
		}
		if s.opts.NookUserns == "never" {
			return nil, plainErr
		}
		s.log.Info("nook cannot mount as the plain user, trying a user namespace", "err", plainErr)
	}
	ns, err := s.newUserns(ctx)
	if err != nil {
		return nil, err
	}
	c.ns = ns
	if err := s.trial(ctx, c); err != nil {
		ns.close()
		return nil, fmt.Errorf("as the plain user: %v; in a user namespace: %w", plainErr, err)
	}
	s.note("nook mounts inside `unshare -Urm` (user and mount namespace, the user mapped to root); " +
		"its workloads run there too, through nsenter.")
	return c, nil
}

// trial mounts and unmounts once.
func (s *suite) trial(ctx context.Context, c *config) error {
	base, err := s.scratch(ctx, "trial-"+c.name)
	if err != nil {
		return err
	}
	m, err := s.mount(ctx, c, base)
	if err == nil {
		s.unmount(m)
	}
	if _, rmErr := s.work(ctx, nil, "clean", base); err == nil {
		err = rmErr
	}
	return err
}
