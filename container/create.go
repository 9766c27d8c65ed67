package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"nook/image"
	"nook/rootless"
)

// CreateOptions are `nook create`'s (and `run`'s) settings. Zero values
// take the image's.
type CreateOptions struct {
	Image      string
	Name       string   // empty: a generated one
	Cmd        []string // replaces the image's Cmd when not empty
	Entrypoint *string  // replaces the image's Entrypoint; "" clears it
	Env        []string // KEY=VALUE over the image's; a bare KEY takes the caller's value
	WorkingDir string
	User       string
	Hostname   string
	Network    string // host (default) or none
	Mounts     []MountSpec
	ReadOnly   bool
	Tty        bool
	OpenStdin  bool
	AutoRemove bool
	Init       bool // nook's init as pid 1 (--init)
	// FakeIDs is rootless.FakeIDsNone to let identity calls fail in
	// single-id mode; empty or rootless.FakeIDsSeccomp fakes them.
	FakeIDs    string
	StopSignal string
	// StopTimeout is the default of `stop -t`; nil means 10 s.
	StopTimeout *int
	Labels      map[string]string
	HostOptions
	// SecurityOpt are --security-opt values: seccomp=FILE|unconfined.
	SecurityOpt []string
}

// ErrNoCommand means neither the options nor the image give a command.
var ErrNoCommand = errors.New("no command specified")

// validName is compiled on first use, not at init (see validVolumeName).
var validName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
})

// Create makes a container from an image: its directory with an empty
// writable layer, its configuration, and state "created".
func (m *Manager) Create(opts CreateOptions) (*Container, error) {
	return m.create(opts, newID())
}

// Run is Create then Start, save that the shim's process starts first:
// its namespaces, id maps and start-up overlap the container's creation.
// created, when not nil, is called with the container before it starts
// (`run --cidfile`); its error ends the run. The container is returned
// once it exists, also with an error. A container to be removed on exit
// (AutoRemove) whose shim never ran is removed here: nobody else would.
func (m *Manager) Run(opts CreateOptions, o StartOptions, created func(*Container) error) (*Container, int, error) {
	c, code, err := m.run(opts, o, created)
	var se *StartError
	if err != nil && c != nil && c.AutoRemove && !errors.As(err, &se) && !errors.Is(err, ErrDetached) {
		_ = m.Remove(c, true)
	}
	return c, code, err
}

func (m *Manager) run(opts CreateOptions, o StartOptions, created func(*Container) error) (*Container, int, error) {
	id := newID()
	// A directory without a config is no container yet: listings skip
	// it until create writes the config.
	r, err := m.dirs(true)
	if err != nil {
		return nil, 0, fmt.Errorf("creating container %s: %w", id, err)
	}
	if err := mkdirIn(r, id); err != nil {
		return nil, 0, fmt.Errorf("creating container %s: %w", id, err)
	}
	lock, err := lockForStart(r, id)
	if err != nil {
		r.RemoveAll(id)
		return nil, 0, fmt.Errorf("creating container %s: %w", id, err)
	}
	defer lock.Close()
	rootless.Trace("cli launching")
	ls, err := m.launchShim(lock, opts.Network, o)
	if err != nil {
		r.RemoveAll(id)
		return nil, 0, err
	}
	c, err := m.create(opts, id)
	if err == nil && created != nil {
		err = created(c)
	}
	if err != nil {
		ls.abort()
		if c == nil {
			r.RemoveAll(id)
		}
		return c, 0, err
	}
	rootless.Trace("cli created")
	code, err := m.finishStart(c, ls, o)
	return c, code, err
}

func (m *Manager) create(opts CreateOptions, id string) (*Container, error) {
	img, err := m.store.Resolve(opts.Image)
	if err != nil {
		return nil, err
	}
	opts.Mounts = imageVolumes(img, opts.Mounts)
	return m.createFrom(img, opts, id)
}

// createFrom is create from an image already resolved, which a build's
// step holds in memory without a name.
func (m *Manager) createFrom(img image.Image, opts CreateOptions, id string) (*Container, error) {
	cfg, err := configFor(img, opts, id)
	if err != nil {
		return nil, err
	}
	unlock, err := m.lockAll()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := m.pickName(&cfg); err != nil {
		return nil, err
	}
	if err := m.createVolumes(&cfg); err != nil {
		return nil, err
	}
	r, err := m.dirs(true)
	if err != nil {
		return nil, err
	}
	if err := mkdirIn(r, cfg.ID, "upper", "work", "merged"); err != nil {
		return nil, fmt.Errorf("creating container %s: %w", cfg.ID, err)
	}
	c := &Container{Config: cfg, State: State{Status: StatusCreated}, dir: m.dir(cfg.ID), fs: r}
	if err := writeJSON(r, c.file(stateFile), c.State); err != nil {
		return nil, err
	}
	// The config last: a directory without it is not a container yet.
	if err := writeJSON(r, c.file(configFile), cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// configFor merges the options over the image's configuration.
func configFor(img image.Image, o CreateOptions, id string) (Config, error) {
	ic := img.Config.Config
	c := Config{
		ID: id, Name: o.Name, Created: time.Now().UTC(), Image: o.Image,
		ImageID: img.ID.String(), Entrypoint: ic.Entrypoint, Cmd: ic.Cmd,
		WorkingDir: ic.WorkingDir, User: ic.User, Hostname: o.Hostname, Network: o.Network,
		Mounts: o.Mounts, ReadOnly: o.ReadOnly, Tty: o.Tty, OpenStdin: o.OpenStdin,
		AutoRemove: o.AutoRemove, Init: o.Init, StopSignal: ic.StopSignal, StopTimeout: o.StopTimeout,
		Labels: o.Labels, HostOptions: o.HostOptions, FakeIDs: o.FakeIDs,
	}
	for _, d := range img.Config.RootFS.DiffIDs {
		c.DiffIDs = append(c.DiffIDs, d.String())
	}
	if o.Entrypoint != nil {
		c.Entrypoint = nil
		if *o.Entrypoint != "" {
			c.Entrypoint = []string{*o.Entrypoint}
		}
		// Docker drops the image's Cmd along with its Entrypoint.
		c.Cmd = nil
	}
	if len(o.Cmd) > 0 {
		c.Cmd = o.Cmd
	}
	if len(c.Args()) == 0 {
		return c, ErrNoCommand
	}
	if o.WorkingDir != "" {
		c.WorkingDir = o.WorkingDir
	}
	if c.WorkingDir == "" {
		c.WorkingDir = "/"
	}
	if !path.IsAbs(c.WorkingDir) {
		return c, fmt.Errorf("working directory %q is not absolute", c.WorkingDir)
	}
	if o.User != "" {
		c.User = o.User
	}
	if o.StopSignal != "" {
		c.StopSignal = o.StopSignal
	}
	if c.StopSignal != "" {
		if _, err := ParseSignal(c.StopSignal); err != nil {
			return c, err
		}
	}
	switch c.Network {
	case "":
		c.Network = "host"
	case "host", "none":
	default:
		return c, fmt.Errorf("network %q: only host and none are supported", c.Network)
	}
	hosts, err := resolveExtraHosts(c.ExtraHosts, c.Network)
	if err != nil {
		return c, err
	}
	c.ExtraHosts = hosts
	if c.Hostname == "" {
		c.Hostname = c.ID[:12]
		if c.Network == "host" {
			// Docker's host network shares the host's name too.
			if h, err := os.Hostname(); err == nil {
				c.Hostname = h
			}
		}
	}
	base := img.Config.Config.Env
	if !slices.ContainsFunc(base, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		// As Docker: the container's config holds the PATH it runs with.
		base = append([]string{"PATH=" + rootless.DefaultPath}, base...)
	}
	c.Env = mergeEnv(base, append([]string{"HOSTNAME=" + c.Hostname}, o.Env...))
	if c.Seccomp, err = securitySpec(o.SecurityOpt, &c.HostOptions); err != nil {
		return c, err
	}
	return c, c.Privileges.check()
}

// mergeEnv sets each KEY=VALUE of over on base, in order; a bare KEY takes
// the caller's value and is dropped when the caller has none.
func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			v, set := os.LookupEnv(k)
			if !set {
				continue
			}
			kv = k + "=" + v
		}
		replaced := false
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// pickName checks or generates the name; called under lockAll.
func (m *Manager) pickName(c *Config) error {
	taken, err := m.names()
	if err != nil {
		return err
	}
	if c.Name != "" {
		c.Name = strings.TrimPrefix(c.Name, "/")
		if !validName().MatchString(c.Name) {
			return fmt.Errorf("invalid container name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", c.Name)
		}
		if taken[c.Name] {
			return fmt.Errorf("%q: %w", c.Name, ErrNameInUse)
		}
		return nil
	}
	for {
		if n := randomName(); !taken[n] {
			c.Name = n
			return nil
		}
	}
}

// names returns the name in every container directory's readable config
// (List also skips a directory whose state is damaged; its name stays
// taken here). It reads each config alone: not the state, nor whether the
// shim lives (a lock probe per running container), which `run` would
// otherwise pay for every container in the store.
func (m *Manager) names() (map[string]bool, error) {
	ents, err := m.list()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	taken := map[string]bool{}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := m.r.ReadFile(path.Join(e.Name(), configFile))
		var c struct {
			Name string `json:"name"`
		}
		if err == nil && json.Unmarshal(b, &c) == nil {
			taken[c.Name] = true
		} // else half created or half removed: not a container
	}
	return taken, nil
}

// randomName makes a Docker-like adjective_noun name.
func randomName() string {
	adj := []string{"brave", "calm", "eager", "fond", "gentle", "happy", "keen", "lucid",
		"merry", "nimble", "quiet", "rapid", "sharp", "tender", "vivid", "witty", "zen"}
	noun := []string{"badger", "crane", "dingo", "egret", "finch", "gecko", "heron", "ibis",
		"koala", "lynx", "marten", "newt", "otter", "puffin", "quokka", "raven", "stoat", "wren"}
	return fmt.Sprintf("%s_%s%d", adj[rand.IntN(len(adj))], noun[rand.IntN(len(noun))], rand.IntN(100))
}
