package container

import (
	"cmp"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"nook/container/shim"
)

// Inspect is a container as `docker inspect` shows it, as far as nook has
// the fields.
type Inspect struct {
	ID              string        `json:"Id"`
	Created         string        `json:"Created"`
	Path            string        `json:"Path"`
	Args            []string      `json:"Args"`
	State           InspectState  `json:"State"`
	Image           string        `json:"Image"`
	ResolvConfPath  string        `json:"ResolvConfPath"`
	HostnamePath    string        `json:"HostnamePath"`
	HostsPath       string        `json:"HostsPath"`
	LogPath         string        `json:"LogPath"`
	Name            string        `json:"Name"`
	RestartCount    int           `json:"RestartCount"`
	Driver          string        `json:"Driver"`
	Platform        string        `json:"Platform"`
	HostConfig      HostConfig    `json:"HostConfig"`
	GraphDriver     GraphDriver   `json:"GraphDriver"`
	Mounts          []MountPoint  `json:"Mounts"`
	Config          InspectConfig `json:"Config"`
	NetworkSettings struct {
		// IPAddress is empty: a host network (or none) has no address
		// of the container's own, as Docker shows it.
		IPAddress string              `json:"IPAddress"`
		Networks  map[string]struct{} `json:"Networks"`
	} `json:"NetworkSettings"`
}

// InspectState is Docker's State object.
type InspectState struct {
	Status     string `json:"Status"`
	Running    bool   `json:"Running"`
	Paused     bool   `json:"Paused"`
	Restarting bool   `json:"Restarting"`
	OOMKilled  bool   `json:"OOMKilled"`
	Dead       bool   `json:"Dead"`
	Pid        int    `json:"Pid"`
	ExitCode   int    `json:"ExitCode"`
	Error      string `json:"Error"`
	StartedAt  string `json:"StartedAt"`
	FinishedAt string `json:"FinishedAt"`
}

// HostConfig is the part of Docker's HostConfig nook knows.
type HostConfig struct {
	Binds          []string          `json:"Binds"`
	NetworkMode    string            `json:"NetworkMode"`
	AutoRemove     bool              `json:"AutoRemove"`
	ReadonlyRootfs bool              `json:"ReadonlyRootfs"`
	Tmpfs          map[string]string `json:"Tmpfs,omitempty"`
	RestartPolicy  RestartPolicy     `json:"RestartPolicy"`
	Init           bool              `json:"Init"`
	ExtraHosts     []string          `json:"ExtraHosts"`
	ShmSize        int64             `json:"ShmSize"`
	Ulimits        []Ulimit          `json:"Ulimits"`
	SecurityOpt    []string          `json:"SecurityOpt"`
	CapAdd         []string          `json:"CapAdd"`
	CapDrop        []string          `json:"CapDrop"`
	Privileged     bool              `json:"Privileged"`
	GroupAdd       []string          `json:"GroupAdd"`
	Devices        []DeviceMapping   `json:"Devices"`
	Memory         int64             `json:"Memory"`
	MemorySwap     int64             `json:"MemorySwap"`
	NanoCpus       int64             `json:"NanoCpus"`
	PidsLimit      *int64            `json:"PidsLimit"` // null when unlimited, as Docker shows it
}

// RestartPolicy is Docker's: the shim restarts the payload while it
// lives (restart.go); Name is empty without --restart.
type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// GraphDriver names the union and its directories.
type GraphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// MountPoint is one entry of Docker's Mounts.
type MountPoint struct {
	Type        string `json:"Type"`
	Name        string `json:"Name,omitempty"` // a volume's
	Source      string `json:"Source"`
	Driver      string `json:"Driver,omitempty"` // a volume's
	Destination string `json:"Destination"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
}

// InspectConfig is Docker's Config object.
type InspectConfig struct {
	Hostname     string            `json:"Hostname"`
	Domainname   string            `json:"Domainname"`
	User         string            `json:"User"`
	AttachStdin  bool              `json:"AttachStdin"`
	AttachStdout bool              `json:"AttachStdout"`
	AttachStderr bool              `json:"AttachStderr"`
	Tty          bool              `json:"Tty"`
	OpenStdin    bool              `json:"OpenStdin"`
	StdinOnce    bool              `json:"StdinOnce"`
	Env          []string          `json:"Env"`
	Cmd          []string          `json:"Cmd"`
	Image        string            `json:"Image"`
	WorkingDir   string            `json:"WorkingDir"`
	Entrypoint   []string          `json:"Entrypoint"`
	Labels       map[string]string `json:"Labels"`
	// Volumes are the paths of the container's anonymous volumes; null
	// without any, as Docker shows it.
	Volumes     map[string]struct{} `json:"Volumes"`
	StopSignal  string              `json:"StopSignal,omitempty"`
	StopTimeout *int                `json:"StopTimeout,omitempty"`
}

// dockerTime is how Docker prints times; the zero time as Docker's zero.
func dockerTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Inspect describes c in Docker's shape.
func (m *Manager) Inspect(c *Container) Inspect {
	args := c.Args()
	in := Inspect{
		ID: c.ID, Created: dockerTime(c.Created), Image: c.ImageID, Name: "/" + c.Name, RestartCount: c.State.RestartCount,
		ResolvConfPath: filepath.Join(c.dir, "resolv.conf"), HostnamePath: filepath.Join(c.dir, "hostname"),
		HostsPath: filepath.Join(c.dir, "hosts"), LogPath: filepath.Join(c.dir, shim.LogFile),
		Driver: "nook-fuse", Platform: "linux",
		State: InspectState{
			Status: c.Status(), Running: c.Running(), Paused: c.Paused(), Restarting: c.Restarting(),
			ExitCode: c.State.ExitCode, Error: c.State.Error,
			StartedAt: dockerTime(c.State.StartedAt), FinishedAt: dockerTime(c.State.FinishedAt),
		},
		HostConfig: HostConfig{Binds: []string{}, NetworkMode: c.Network, AutoRemove: c.AutoRemove, ReadonlyRootfs: c.ReadOnly,
			Init: c.Init, ExtraHosts: c.ExtraHosts, ShmSize: cmp.Or(c.ShmSize, defaultShmSize), Ulimits: c.Ulimits,
			SecurityOpt: c.securityOpt(), CapAdd: c.CapAdd, CapDrop: c.CapDrop, Privileged: c.Privileged,
			GroupAdd: c.GroupAdd, Devices: c.Devices, RestartPolicy: c.RestartPolicy,
			Memory: c.Limits.Memory, MemorySwap: c.Limits.MemorySwap, NanoCpus: c.Limits.NanoCPUs},
		GraphDriver: GraphDriver{Name: "nook-fuse", Data: map[string]string{
			"LowerDir":  strings.Join(m.lowerDirs(c), ":"),
			"UpperDir":  filepath.Join(c.dir, "upper"),
			"WorkDir":   filepath.Join(c.dir, "work"),
			"MergedDir": filepath.Join(c.dir, "merged"),
		}},
		Mounts: []MountPoint{},
		Config: InspectConfig{
			Hostname: c.Hostname, User: c.User, AttachStdin: c.OpenStdin, AttachStdout: true, AttachStderr: true,
			Tty: c.Tty, OpenStdin: c.OpenStdin, StdinOnce: c.OpenStdin, Env: c.Env, Cmd: c.Cmd, Image: c.Image,
			WorkingDir: c.WorkingDir, Entrypoint: c.Entrypoint, Labels: c.Labels, StopSignal: c.StopSignal,
			StopTimeout: c.StopTimeout,
		},
	}
	if in.Config.Labels == nil {
		in.Config.Labels = map[string]string{}
	}
	if len(args) > 0 {
		in.Path, in.Args = args[0], args[1:]
	}
	if in.Args == nil {
		in.Args = []string{}
	}
	if c.Running() {
		in.State.Pid = c.State.Pid
	}
	if c.Limits.Pids > 0 {
		in.HostConfig.PidsLimit = &c.Limits.Pids
	}
	in.NetworkSettings.Networks = map[string]struct{}{c.Network: {}}
	for _, v := range c.Mounts {
		mode, rw := "", !v.ReadOnly
		if v.ReadOnly {
			mode = "ro"
		}
		switch v.Type {
		case "bind":
			spec := v.Source + ":" + v.Target
			if v.ReadOnly {
				spec += ":ro"
			}
			in.HostConfig.Binds = append(in.HostConfig.Binds, spec)
			in.Mounts = append(in.Mounts, MountPoint{Type: "bind", Source: v.Source, Destination: v.Target, Mode: mode, RW: rw, Propagation: "rprivate"})
		case "volume":
			spec := v.Source + ":" + v.Target
			if v.ReadOnly {
				spec += ":ro"
			}
			if !v.Anonymous {
				in.HostConfig.Binds = append(in.HostConfig.Binds, spec)
			} else { // Docker lists those in Config.Volumes
				if in.Config.Volumes == nil {
					in.Config.Volumes = map[string]struct{}{}
				}
				in.Config.Volumes[v.Target] = struct{}{}
			}
			in.Mounts = append(in.Mounts, MountPoint{Type: "volume", Name: v.Source, Source: m.VolumeMountpoint(v.Source),
				Driver: "local", Destination: v.Target, Mode: "z", RW: rw})
		case "tmpfs":
			if in.HostConfig.Tmpfs == nil {
				in.HostConfig.Tmpfs = map[string]string{}
			}
			in.HostConfig.Tmpfs[v.Target] = strings.Join(v.Options, ",")
			in.Mounts = append(in.Mounts, MountPoint{Type: "tmpfs", Destination: v.Target, Mode: mode, RW: rw})
		}
	}
	return in
}

// lowerDirs are the image's layer directories, top first.
func (m *Manager) lowerDirs(c *Container) []string {
	var out []string
	for i := len(c.DiffIDs) - 1; i >= 0; i-- {
		if d, err := digest.Parse(c.DiffIDs[i]); err == nil {
			out = append(out, m.store.LayerDir(d))
		}
	}
	return out
}
