package container

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"nook/container/shim"
	"nook/image"
	"nook/internal/atomicfile"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound   = errors.New("no such container")
	ErrAmbiguous  = errors.New("ambiguous container id")
	ErrNameInUse  = errors.New("container name already in use")
	ErrRunning    = errors.New("container is running")
	ErrNotRunning = errors.New("container is not running")
)

// Container statuses, as Docker names them (see shim.State).
const (
	StatusCreated = shim.StatusCreated
	StatusRunning = shim.StatusRunning
	StatusExited  = shim.StatusExited
)

// Config is what a container was created with; it never changes.
type Config struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Created    time.Time   `json:"created"`
	Image      string      `json:"image"` // as the user named it
	ImageID    string      `json:"imageId"`
	DiffIDs    []string    `json:"diffIds"` // the image's layers, bottom first
	Entrypoint []string    `json:"entrypoint,omitempty"`
	Cmd        []string    `json:"cmd,omitempty"`
	Env        []string    `json:"env,omitempty"`
	WorkingDir string      `json:"workingDir"`
	User       string      `json:"user,omitempty"`
	Hostname   string      `json:"hostname"`
	Network    string      `json:"network"` // host or none
	Mounts     []MountSpec `json:"mounts,omitempty"`
	ReadOnly   bool        `json:"readOnly,omitempty"`
	Tty        bool        `json:"tty,omitempty"`
	OpenStdin  bool        `json:"openStdin,omitempty"`
	AutoRemove bool        `json:"autoRemove,omitempty"`
	// Init runs nook's init as pid 1, reaping and forwarding signals to
	// the command (--init); else the command is pid 1, as Docker runs it.
	Init bool `json:"init,omitempty"`
	// FakeIDs is rootless.FakeIDsNone when the identity calls are not to
	// be faked in single-id mode; empty fakes them (--force).
	FakeIDs     string            `json:"fakeIds,omitempty"`
	StopSignal  string            `json:"stopSignal,omitempty"`
	StopTimeout *int              `json:"stopTimeout,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	HostOptions
	// Seccomp is the payload's filter as rootless.InitProcess.Seccomp
	// takes it: "" Docker's default profile, "unconfined", or a profile.
	Seccomp string `json:"seccomp,omitempty"`
}

// Args is the payload's command line: entrypoint then cmd.
func (c *Config) Args() []string { return append(append([]string{}, c.Entrypoint...), c.Cmd...) }

// State is where a container is in its life; the shim writes it.
type State = shim.State

// Container is a container's configuration and current state.
type Container struct {
	Config
	State State
	// dir is the container's directory as a path: it is handed to the
	// shim and the stages (another process, in other namespaces) and to
	// the union as upper and work directories, which take paths only.
	// nook's own reads and writes go through fs instead.
	dir string
	fs  *os.Root // the containers directory; files are fs's name/…
	// paused is set when the running container is paused (pause.go).
	paused bool
}

// name is the container's directory in the containers root.
func (c *Container) name() string { return filepath.Base(c.dir) }

// file is the name of a file of the container, relative to c.fs.
func (c *Container) file(name string) string { return path.Join(c.name(), name) }

// Dir is the container's directory in the store.
func (c *Container) Dir() string { return c.dir }

// Options configure a Manager.
type Options struct {
	Logger *slog.Logger // nil discards
}

// Manager keeps the containers of one image store, under root/containers.
type Manager struct {
	store *image.Store
	root  string
	log   *slog.Logger

	mu sync.Mutex
	r  *os.Root // root, opened through the store's descriptor on first use
}

// dirs returns the containers directory, opened through the store (see
// image.Store.OpenDir) on first use; with create it is made if missing.
// A missing directory without create is fs.ErrNotExist.
func (m *Manager) dirs(create bool) (*os.Root, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.r != nil {
		return m.r, nil
	}
	var r *os.Root
	var err error
	if m.store != nil {
		r, err = m.store.OpenDir("containers", create)
	} else { // a bare Manager of the package's tests
		if create {
			err = os.MkdirAll(m.root, 0o700)
		}
		if err == nil {
			r, err = os.OpenRoot(m.root)
		}
	}
	if err != nil {
		return nil, err
	}
	m.r = r
	return r, nil
}

// list names the entries of the containers directory; none when it does
// not exist yet.
func (m *Manager) list() ([]os.DirEntry, error) {
	r, err := m.dirs(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d, err := r.Open(".")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir(-1)
}

// Open returns the manager of the containers of store.
func Open(store *image.Store, opts Options) (*Manager, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// containers/ is made by the first create: opening only to read (rmi
	// asking which images are in use) leaves the store as it was.
	return &Manager{store: store, root: filepath.Join(store.Root(), "containers"), log: log}, nil
}

// Files of a container directory.
const (
	configFile = "config.json"
	stateFile  = shim.StateFile
	lockFile   = "lock" // held by the shim while the container runs
)

func (m *Manager) dir(id string) string { return filepath.Join(m.root, id) }

// newID returns a random 64-hex-digit container id.
func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// allLockFile in the containers' directory is lockAll's.
const allLockFile = ".lock"

// lockAll serializes creation and removal, which must see every name.
func (m *Manager) lockAll() (func(), error) {
	r, err := m.dirs(true)
	if err != nil {
		return nil, err
	}
	f, err := r.OpenFile(allLockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the containers lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// List returns every container, newest first.
func (m *Manager) List() ([]*Container, error) {
	ents, err := m.list()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c, err := m.load(e.Name())
		if err != nil {
			// Half created or half removed: not a container.
			m.log.Debug("skipping container directory", "id", e.Name(), "err", err)
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Get finds a container by full id, unique id prefix, or name.
func (m *Manager) Get(ref string) (*Container, error) {
	ref = strings.TrimPrefix(ref, "/")
	if ref == "" {
		return nil, fmt.Errorf("container %q: %w", ref, ErrNotFound)
	}
	if c := m.getExact(ref); c != nil {
		return c, nil
	}
	all, err := m.List()
	if err != nil {
		return nil, err
	}
	var byPrefix []*Container
	for _, c := range all {
		if c.ID == ref || c.Name == ref {
			return c, nil
		}
		if strings.HasPrefix(c.ID, ref) {
			byPrefix = append(byPrefix, c)
		}
	}
	switch len(byPrefix) {
	case 0:
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	case 1:
		return byPrefix[0], nil
	}
	return nil, fmt.Errorf("%s matches %d containers: %w", ref, len(byPrefix), ErrAmbiguous)
}

// getExact finds the container whose id or name is ref, as Get does,
// reading no more of the others than their names: an exec finds its
// container on every start. Nil when none is, or it cannot be loaded:
// Get's search of them all then says why.
func (m *Manager) getExact(ref string) *Container {
	ents, err := m.list()
	if err != nil {
		return nil
	}
	r, err := m.dirs(false)
	if err != nil {
		return nil
	}
	var found string
	var newest time.Time
	for _, e := range ents {
		id := e.Name()
		if !e.IsDir() || strings.HasPrefix(id, ".") {
			continue
		}
		if id == ref {
			found = id
			break
		}
		b, err := r.ReadFile(path.Join(id, configFile))
		if err != nil {
			continue
		}
		var named struct {
			Name    string    `json:"name"`
			Created time.Time `json:"created"`
		}
		// Get prefers the newest of the containers of one name.
		if json.Unmarshal(b, &named) == nil && named.Name == ref && (found == "" || named.Created.After(newest)) {
			found, newest = id, named.Created
		}
	}
	if found == "" {
		return nil
	}
	c, err := m.load(found)
	if err != nil {
		return nil
	}
	return c
}

// load reads a container's files and settles its state: a container whose
// shim is gone is exited, whatever its state file says (see settleDead).
func (m *Manager) load(id string) (*Container, error) {
	r, err := m.dirs(false)
	if err != nil {
		return nil, err
	}
	c := &Container{dir: m.dir(id), fs: r}
	b, err := r.ReadFile(c.file(configFile))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &c.Config); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", configFile, err)
	}
	if b, err := r.ReadFile(c.file(stateFile)); err == nil {
		if err := json.Unmarshal(b, &c.State); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", stateFile, err)
		}
	}
	if c.State.Status == "" {
		c.State.Status = StatusCreated
	}
	if c.State.Status == StatusRunning && !c.shimAlive() && m.settleDead(c) {
		return nil, errRemovedOnDiscovery
	}
	c.readPaused()
	return c, nil
}

// shimAlive reports whether a shim holds the container's lock.
func (c *Container) shimAlive() bool {
	f, err := c.fs.Open(c.file(lockFile))
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	return errors.Is(err, unix.EWOULDBLOCK)
}

// Running reports whether the container runs now, or is restarting
// (Docker counts that as running too).
func (c *Container) Running() bool { return c.State.Status == StatusRunning }

// Restarting reports whether the container's payload exited and its
// restart policy is about to start it again.
func (c *Container) Restarting() bool { return c.Running() && c.State.Restarting }

// writeJSON replaces name in r by rename, so readers never see half a
// file. It does not fsync: that would cost `run` milliseconds, and after
// a crash the state is settled again from the shim's lock anyway.
func writeJSON(r *os.Root, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.ReplaceIn(r, name, b, 0o600)
}

// ImageUsers tells, for an image, which container uses it ("" for none),
// so the store can refuse to delete an image from under a container.
func (m *Manager) ImageUsers() (func(image.Image) string, error) {
	cs, err := m.List()
	if err != nil {
		return nil, err
	}
	users := map[string]string{}
	for _, c := range cs {
		if _, taken := users[c.ImageID]; !taken {
			users[c.ImageID] = c.ID[:12]
		}
	}
	return func(img image.Image) string { return users[img.ID.String()] }, nil
}

// debrisAge is how old a directory without a config must be before
// RemoveDebris takes it for the remains of a creation that was killed: a
// creation under way (nook run makes the directory, then resolves the
// image and writes the config) is done in far less.
const debrisAge = 10 * time.Minute

// RemoveDebris removes what a killed create or run left: container
// directories without a config, older than debrisAge, whose lock no shim
// holds. It returns their names.
func (m *Manager) RemoveDebris() ([]string, error) {
	ents, err := m.list()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	if ents == nil {
		return nil, nil
	}
	unlock, err := m.lockAll() // no create writes a config meanwhile
	if err != nil {
		return nil, err
	}
	defer unlock()
	r, err := m.dirs(false)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || !isDebris(r, e.Name()) {
			continue
		}
		if err := r.RemoveAll(e.Name()); err != nil {
			return removed, fmt.Errorf("removing the remains of container %s: %w", e.Name(), err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// isDebris says whether dir (in r) is an old container directory without
// a config and with nobody holding its lock.
func isDebris(r *os.Root, dir string) bool {
	if _, err := r.Lstat(path.Join(dir, configFile)); !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	fi, err := r.Lstat(dir)
	if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < debrisAge {
		return false
	}
	f, err := r.Open(path.Join(dir, lockFile))
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}
