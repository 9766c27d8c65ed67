package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"nook/container/shim"
	"nook/image"
)

// Named volumes live in the store as volumes/NAME/_data, Docker's layout,
// with volumes/NAME/volume.json holding when and with which labels the
// volume was made. A container's volume is bound on its _data; the first
// container to mount an empty volume fills it from the image's content at
// that path (init does, see rootless.Mount.Populate), as Docker does.

// Sentinel errors of volumes that callers branch on.
var (
	ErrNoSuchVolume = errors.New("no such volume")
	ErrVolumeInUse  = errors.New("volume is in use")
	ErrVolumeExists = errors.New("volume already exists")
)

// validVolumeName is compiled on first use, not at init: every nook
// process (a `nook exec` too) would pay for it before main.
var validVolumeName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
})

const (
	volumesDir = "volumes"
	volumeData = "_data"
	volumeMeta = shim.VolumeFile
)

// Volume is a named volume in docker volume inspect's shape.
type Volume struct {
	CreatedAt  time.Time         `json:"CreatedAt"`
	Driver     string            `json:"Driver"`
	Labels     map[string]string `json:"Labels"`
	Mountpoint string            `json:"Mountpoint"`
	Name       string            `json:"Name"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
}

type volumeFile struct {
	CreatedAt time.Time         `json:"createdAt"`
	Labels    map[string]string `json:"labels,omitempty"`
}

// CheckVolumeName validates a volume name as Docker does.
func CheckVolumeName(name string) error {
	if !validVolumeName().MatchString(name) {
		return fmt.Errorf("volume name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, two characters or more", name)
	}
	return nil
}

// volumes opens the store's volumes directory (see image.Store.OpenDir).
func (m *Manager) volumes(create bool) (*os.Root, error) {
	return m.store.OpenDir(volumesDir, create)
}

// VolumeMountpoint is where volume name's data lives on the host.
func (m *Manager) VolumeMountpoint(name string) string {
	return filepath.Join(m.store.Root(), volumesDir, name, volumeData)
}

// CreateVolume makes the named volume; an existing one is returned as it
// is, as docker volume create does.
func (m *Manager) CreateVolume(name string, labels map[string]string) (Volume, error) {
	if err := CheckVolumeName(name); err != nil {
		return Volume{}, err
	}
	unlock, err := m.lockAll()
	if err != nil {
		return Volume{}, err
	}
	defer unlock()
	return m.createVolume(name, labels)
}

// createVolume is CreateVolume under the containers' lock.
func (m *Manager) createVolume(name string, labels map[string]string) (Volume, error) {
	if v, err := m.inspectVolume(name); err == nil {
		return v, nil
	}
	r, err := m.volumes(true)
	if err != nil {
		return Volume{}, err
	}
	defer r.Close()
	if err := r.MkdirAll(path.Join(name, volumeData), 0o755); err != nil {
		return Volume{}, fmt.Errorf("creating volume %s: %w", name, err)
	}
	b, err := json.Marshal(volumeFile{CreatedAt: time.Now().UTC(), Labels: labels})
	if err != nil {
		return Volume{}, err
	}
	// The description last: a directory without it is no volume yet.
	if err := r.WriteFile(path.Join(name, volumeMeta), b, 0o600); err != nil {
		return Volume{}, fmt.Errorf("creating volume %s: %w", name, err)
	}
	return m.inspectVolume(name)
}

// InspectVolume describes the named volume.
func (m *Manager) InspectVolume(name string) (Volume, error) { return m.inspectVolume(name) }

func (m *Manager) inspectVolume(name string) (Volume, error) {
	if CheckVolumeName(name) != nil {
		return Volume{}, fmt.Errorf("volume %q: %w", name, ErrNoSuchVolume)
	}
	r, err := m.volumes(false)
	if errors.Is(err, fs.ErrNotExist) {
		return Volume{}, fmt.Errorf("volume %q: %w", name, ErrNoSuchVolume)
	}
	if err != nil {
		return Volume{}, err
	}
	defer r.Close()
	b, err := r.ReadFile(path.Join(name, volumeMeta))
	if errors.Is(err, fs.ErrNotExist) {
		return Volume{}, fmt.Errorf("volume %q: %w", name, ErrNoSuchVolume)
	}
	if err != nil {
		return Volume{}, fmt.Errorf("reading volume %s: %w", name, err)
	}
	var f volumeFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Volume{}, fmt.Errorf("reading volume %s: %w", name, err)
	}
	labels := f.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return Volume{CreatedAt: f.CreatedAt, Driver: "local", Labels: labels, Mountpoint: m.VolumeMountpoint(name),
		Name: name, Options: map[string]string{}, Scope: "local"}, nil
}

// ListVolumes returns every volume, by name.
func (m *Manager) ListVolumes() ([]Volume, error) {
	r, err := m.volumes(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d, err := r.Open(".")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("listing volumes: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("listing volumes: %w", err)
	}
	sort.Strings(names)
	var out []Volume
	for _, n := range names {
		if v, err := m.inspectVolume(n); err == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// VolumeUsers maps each volume name to the containers (any state) that
// mount it: such a volume is in use.
func (m *Manager) VolumeUsers() (map[string][]string, error) {
	all, err := m.List()
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, c := range all {
		for _, v := range c.Mounts {
			if v.Type == "volume" {
				users[v.Source] = append(users[v.Source], c.ID)
			}
		}
	}
	return users, nil
}

// RemoveVolume deletes the named volume and its data; one a container
// mounts is refused (ErrVolumeInUse), as Docker does even with force.
// Its files belong to containers' ids: call it inside the user namespace.
func (m *Manager) RemoveVolume(name string) error {
	unlock, err := m.lockAll()
	if err != nil {
		return err
	}
	defer unlock()
	return m.removeVolume(name)
}

func (m *Manager) removeVolume(name string) error {
	if _, err := m.inspectVolume(name); err != nil {
		return err
	}
	users, err := m.VolumeUsers()
	if err != nil {
		return err
	}
	if ids := users[name]; len(ids) > 0 {
		return fmt.Errorf("volume %s: %w by container %.12s: remove the container first", name, ErrVolumeInUse, ids[0])
	}
	r, err := m.volumes(false)
	if err != nil {
		return err
	}
	defer r.Close()
	// The description first: from then on it is no volume.
	if err := r.Remove(path.Join(name, volumeMeta)); err != nil {
		return fmt.Errorf("removing volume %s: %w", name, err)
	}
	if err := r.RemoveAll(name); err != nil {
		return fmt.Errorf("removing volume %s: %w", name, err)
	}
	return nil
}

// PruneVolumes removes the volumes no container mounts and returns their
// names: as Docker (≥ 23), only anonymous ones unless all is set.
// The bytes they held are reclaimed.
func (m *Manager) PruneVolumes(all bool) (gone []string, reclaimed int64, err error) {
	unlock, err := m.lockAll()
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	vols, err := m.ListVolumes()
	if err != nil {
		return nil, 0, err
	}
	users, err := m.VolumeUsers()
	if err != nil {
		return nil, 0, err
	}
	for _, v := range vols {
		if _, anon := v.Labels[anonymousLabel]; len(users[v.Name]) > 0 || !all && !anon {
			continue
		}
		size := VolumeSize(v)
		if err := m.removeVolume(v.Name); err != nil {
			return gone, reclaimed, err
		}
		gone, reclaimed = append(gone, v.Name), reclaimed+size
	}
	return gone, reclaimed, nil
}

// VolumeSize is the bytes of v's regular files (those the caller can
// read: call it inside the user namespace to see them all).
func VolumeSize(v Volume) int64 {
	var n int64
	_ = filepath.WalkDir(v.Mountpoint, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// anonymousLabel marks an anonymous volume, as Docker (≥ 23) does; prune
// without --all removes only such volumes.
const anonymousLabel = "com.docker.volume.anonymous"

// createVolumes makes the volumes cfg mounts that do not exist yet, under
// the containers' lock, as docker create does; an anonymous one gets a
// random name, as Docker's do.
func (m *Manager) createVolumes(cfg *Config) error {
	for i, v := range cfg.Mounts {
		if v.Type != "volume" {
			continue
		}
		var labels map[string]string
		if v.Anonymous && v.Source == "" {
			cfg.Mounts[i].Source, labels = newID(), map[string]string{anonymousLabel: ""}
		}
		if _, err := m.createVolume(cfg.Mounts[i].Source, labels); err != nil {
			return err
		}
	}
	return nil
}

// imageVolumes adds to mounts an anonymous volume for each of the image's
// volumes (VOLUME) that no mount covers already. A build's steps get none
// (createFrom), as BuildKit's RUN does not.
func imageVolumes(img image.Image, mounts []MountSpec) []MountSpec {
	targets := slices.Sorted(maps.Keys(img.Config.Config.Volumes))
	out := slices.Clone(mounts)
	for _, t := range targets {
		t = path.Clean(t)
		if !path.IsAbs(t) || t == "/" || slices.ContainsFunc(mounts, func(m MountSpec) bool { return path.Clean(m.Target) == t }) {
			continue
		}
		out = append(out, MountSpec{Type: "volume", Target: t, Anonymous: true})
	}
	return out
}

// removeAnonymous removes c's anonymous volumes, once c is gone; one that
// another container mounts is kept, as Docker keeps it.
func (m *Manager) removeAnonymous(c *Container) {
	for _, v := range c.Mounts {
		if v.Type == "volume" && v.Anonymous {
			if err := m.removeVolume(v.Source); err != nil && !errors.Is(err, ErrNoSuchVolume) {
				m.log.Warn("keeping an anonymous volume", "volume", v.Source, "err", err)
			}
		}
	}
}

// volumeBind turns a volume mount into the bind of its data, filled from
// the image on first use unless NoCopy.
func (m *Manager) volumeBind(v MountSpec) MountSpec {
	v.Type, v.Source, v.populate = "bind", m.VolumeMountpoint(v.Source), !v.NoCopy
	return v
}
