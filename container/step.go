package container

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"nook/image"
	"nook/image/layer"
)

// StepOptions describe one RUN step of a build: a command in a container
// over the stage's layers, whose changes become the step's layer.
type StepOptions struct {
	// Image is the stage so far. It need not be in the store's index (a
	// build holds its metadata in memory), but its layers must be stored.
	Image      image.Image
	Args       []string // the command, the shell already put before it
	Env        []string // KEY=VALUE over the image's
	WorkingDir string
	User       string
	Network    string // host (default) or none
	Mounts     []MountSpec
	Stdout     io.Writer
	Stderr     io.Writer
	LogLevel   slog.Level
	Clamp      time.Time // caps the layer's mtimes when not zero
	// Context, when done, kills the step's command (an interrupted build).
	Context context.Context
	// Layer is handed the container's changes once the command
	// succeeded; it stores them.
	Layer func(StepLayer) error
}

// StepLayer is a build step's changes.
type StepLayer struct {
	Write      func(io.Writer) error // writes them as a layer tar
	Dir        string                // the writable layer they are read from, free to be moved
	NotInLayer []string              // paths in Dir (relative) the tar leaves out: mount points
}

// RunStep runs a build step's command in a container of its own and, when
// the command exits 0, hands its changes to o.Layer, leaving out the mount
// points nook made as commit does. The container is removed whatever
// happens. It returns the command's exit status. Call it inside the user
// namespace, as commit.
func (m *Manager) RunStep(o StepOptions) (int, error) {
	id := newID()
	r, err := m.dirs(true)
	if err != nil {
		return 0, fmt.Errorf("creating build container %s: %w", id, err)
	}
	if err := mkdirIn(r, id); err != nil {
		return 0, fmt.Errorf("creating build container %s: %w", id, err)
	}
	lock, err := lockForStart(r, id)
	if err != nil {
		r.RemoveAll(id)
		return 0, fmt.Errorf("creating build container %s: %w", id, err)
	}
	defer lock.Close()
	so := StartOptions{Stdout: o.Stdout, Stderr: o.Stderr, LogLevel: o.LogLevel}
	ls, err := m.launchShim(lock, o.Network, so)
	if err != nil {
		r.RemoveAll(id)
		return 0, err
	}
	noEntrypoint := ""
	c, err := m.createFrom(o.Image, CreateOptions{
		Image: o.Image.ID.String(), Name: "build-" + id[:12], Cmd: o.Args, Entrypoint: &noEntrypoint,
		Env: o.Env, WorkingDir: o.WorkingDir, User: o.User, Network: o.Network, Mounts: o.Mounts,
	}, id)
	if err != nil {
		ls.abort()
		r.RemoveAll(id)
		return 0, err
	}
	defer func() {
		start := time.Now()
		if err := m.Remove(c, true); err != nil {
			m.log.Warn("removing build container", "id", c.ID, "err", err)
		}
		m.log.Debug("build container removed", "id", c.ID[:12], "took", time.Since(start))
	}()
	if o.Context != nil {
		stop := make(chan struct{})
		defer close(stop)
		go m.killOnDone(o.Context, c, stop)
	}
	start := time.Now()
	code, err := m.finishStart(c, ls, so)
	m.log.Debug("build step ran", "id", c.ID[:12], "code", code, "took", time.Since(start))
	if err != nil || code != 0 {
		return code, err
	}
	defer func(start time.Time) { m.log.Debug("build step's layer stored", "took", time.Since(start)) }(time.Now())
	lowers, err := m.Lowers(c)
	if err != nil {
		return 0, err
	}
	skip := createdMountPoints(c.Upper(), lowers, c.MountPoints())
	var notIn []string
	for p := range skip {
		notIn = append(notIn, strings.TrimPrefix(p, "/"))
	}
	return 0, o.Layer(StepLayer{
		Write: func(w io.Writer) error {
			return layer.Write(w, c.Upper(), layer.WriteOptions{Skip: func(name string) bool { return skip["/"+name] }, Clamp: o.Clamp, Logger: m.log})
		},
		Dir: c.Upper(), NotInLayer: notIn,
	})
}

// killOnDone kills the step's container once ctx is done, unless stop
// closes first; it retries while the container is still starting.
func (m *Manager) killOnDone(ctx context.Context, c *Container, stop <-chan struct{}) {
	select {
	case <-stop:
		return
	case <-ctx.Done():
	}
	for range 100 {
		if fresh, err := m.load(c.ID); err == nil && fresh.Running() && m.Kill(fresh, syscall.SIGKILL) == nil {
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
