package image

import (
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// Inspect is an image as `docker image inspect` prints it.
type Inspect struct {
	ID            string          `json:"Id"`
	RepoTags      []string        `json:"RepoTags"`
	RepoDigests   []string        `json:"RepoDigests"`
	Parent        string          `json:"Parent"`
	Comment       string          `json:"Comment"`
	Created       string          `json:"Created"`
	DockerVersion string          `json:"DockerVersion"`
	Author        string          `json:"Author"`
	Config        InspectConfig   `json:"Config"`
	Architecture  string          `json:"Architecture"`
	Variant       string          `json:"Variant,omitempty"`
	Os            string          `json:"Os"`
	Size          int64           `json:"Size"`
	GraphDriver   GraphDriver     `json:"GraphDriver"`
	RootFS        InspectRootFS   `json:"RootFS"`
	Metadata      InspectMetadata `json:"Metadata"`
}

// InspectConfig is the container configuration part of Inspect.
type InspectConfig struct {
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Volumes      map[string]struct{} `json:"Volumes"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	OnBuild      []string            `json:"OnBuild"`
	Labels       map[string]string   `json:"Labels"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

// GraphDriver names where the layers are on disk.
type GraphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// InspectRootFS lists the diff ids.
type InspectRootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

// InspectMetadata is Docker's image metadata.
type InspectMetadata struct {
	LastTagTime string `json:"LastTagTime"`
}

// Inspect describes img in Docker's shape.
func (s *Store) Inspect(img Image) Inspect {
	c := img.Config
	out := Inspect{
		ID:           img.ID.String(),
		RepoTags:     []string{},
		RepoDigests:  []string{},
		Created:      img.Created().Format(time.RFC3339Nano),
		Author:       c.Author,
		Architecture: c.Architecture,
		Variant:      c.Variant,
		Os:           c.OS,
		Size:         img.Size,
		Config: InspectConfig{
			User: c.Config.User, ExposedPorts: c.Config.ExposedPorts, Env: c.Config.Env,
			Cmd: c.Config.Cmd, Volumes: c.Config.Volumes, WorkingDir: c.Config.WorkingDir,
			Entrypoint: c.Config.Entrypoint, Labels: c.Config.Labels, StopSignal: c.Config.StopSignal,
		},
		GraphDriver: GraphDriver{Name: "overlay", Data: s.layerDirs(img.Config.RootFS.DiffIDs)},
		RootFS:      InspectRootFS{Type: "layers", Layers: []string{}},
		Metadata:    InspectMetadata{LastTagTime: time.Time{}.Format(time.RFC3339Nano)},
	}
	if n := len(c.History); n > 0 {
		out.Comment = c.History[n-1].Comment
	}
	// RepoDigests holds only what a registry gave: an image only made or
	// loaded here has been to none, and has none, as Docker shows it.
	seen := map[string]bool{}
	for _, n := range img.Names {
		repo, tag := FamiliarRepoTag(n)
		if tag != "" { // a name pulled by digest is no tag
			out.RepoTags = append(out.RepoTags, FamiliarName(n))
		}
		if rd, ok := img.RepoDigests[n]; ok {
			if d := repo + "@" + rd.String(); !seen[d] {
				seen[d] = true
				out.RepoDigests = append(out.RepoDigests, d)
			}
		}
	}
	if t := s.lastTagTime(img); !t.IsZero() {
		out.Metadata.LastTagTime = t.Format(time.RFC3339Nano)
	}
	for _, d := range c.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	return out
}

// layerDirs names the unpacked layers as overlay would stack them: the top
// layer as UpperDir, the rest top first as LowerDir.
func (s *Store) layerDirs(diffIDs []digest.Digest) map[string]string {
	if len(diffIDs) == 0 {
		return map[string]string{}
	}
	dirs := make([]string, 0, len(diffIDs))
	for i := len(diffIDs) - 1; i >= 0; i-- {
		dirs = append(dirs, s.LayerDir(diffIDs[i]))
	}
	data := map[string]string{"UpperDir": dirs[0]}
	if len(dirs) > 1 {
		data["LowerDir"] = strings.Join(dirs[1:], ":")
	}
	return data
}
