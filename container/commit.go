package container

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"nook/image"
	"nook/image/layer"
)

// CommitOptions are `nook commit`'s settings.
type CommitOptions struct {
	Name    string             // "" leaves the image untagged
	Comment string             // -m
	Author  string             // -a
	Changes image.ConfigChange // --change: over the config (nil: none)
}

// Commit makes an image of the container: its image's layers, reused by
// diff id, plus one layer written from the writable layer alone, with the
// container's configuration (command, environment, user, working
// directory, labels, stop signal) as Docker's commit takes it. Call it
// inside the user namespace. A running container is not paused (a
// rootless host has no freezer to pause it with): a file changing while it
// is read fails the commit rather than going in torn.
func (m *Manager) Commit(c *Container, o CommitOptions) (image.Image, error) {
	parent, err := m.store.Resolve(c.ImageID)
	if err != nil {
		return image.Image{}, fmt.Errorf("image of %s: %w", c.Name, err)
	}
	lowers, err := m.Lowers(c)
	if err != nil {
		return image.Image{}, err
	}
	skip := createdMountPoints(c.Upper(), lowers, c.MountPoints())
	img, err := m.store.Commit(image.CommitOptions{
		Parent: c.ImageID, Config: c.imageConfig(parent), Changes: o.Changes, Name: o.Name,
		Comment: o.Comment, Author: o.Author, CreatedBy: strings.Join(c.Args(), " "),
		WriteLayer: func(w io.Writer) error {
			return layer.Write(w, c.Upper(), layer.WriteOptions{Skip: func(name string) bool { return skip["/"+name] }, Logger: m.log})
		},
	})
	if err != nil {
		return img, fmt.Errorf("committing %s: %w", c.Name, err)
	}
	return img, nil
}

// imageConfig is the parent's runtime config with the container's own
// settings over it.
func (c *Container) imageConfig(parent image.Image) ocispec.ImageConfig {
	cfg := parent.Config.Config
	cfg.Cmd, cfg.Entrypoint, cfg.User, cfg.StopSignal = c.Cmd, c.Entrypoint, c.User, c.StopSignal
	if c.WorkingDir != "/" || cfg.WorkingDir != "" {
		cfg.WorkingDir = c.WorkingDir
	}
	// HOSTNAME is set per container at create; the image must not keep it.
	cfg.Env = slices.DeleteFunc(slices.Clone(c.Env), func(kv string) bool {
		return strings.HasPrefix(kv, "HOSTNAME=") && !slices.Contains(parent.Config.Config.Env, kv)
	})
	if len(c.Labels) > 0 {
		labels := maps.Clone(cfg.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, c.Labels)
		cfg.Labels = labels
	}
	return cfg
}

// createdMountPoints finds the mount points nook created in upper (empty,
// absent below), which are not the container's changes.
func createdMountPoints(upper string, lowers, points []string) map[string]bool {
	out := map[string]bool{}
	w := &differ{mountPoints: points}
	for _, p := range points {
		var st unix.Stat_t
		rel := strings.TrimPrefix(p, "/")
		if statBeneath(upper, rel, &st) != nil || lookupLower(lowers, p) != nil {
			continue
		}
		dir, base := pathSplit(rel)
		pfd, err := openBeneath(upper, dir, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			continue
		}
		if w.isMountPoint(p, &st, pfd, base) {
			out[p] = true
		}
		unix.Close(pfd)
	}
	return out
}
