package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/container"
	"nook/image"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// run runs a RUN step in a build container, or takes it from the cache.
func (b *builder) run(st *stage, c *instructions.RunCommand, src, label string) error {
	args := runArgs(c, &st.cfg.Config)
	network := b.o.Network
	if n := instructions.GetNetwork(c); n != "" && n != instructions.NetworkDefault {
		network = string(n)
	}
	mounts, mountKey, err := b.runMounts(st, c)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	if len(args) == 1 && strings.HasPrefix(args[0], scriptDir+"/") {
		m, err := b.script(c.Files[0])
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		mounts = append(mounts, m)
	}
	key := chainKey(st.key, src, strings.Join(args, "\x00"), st.visibleArgs(), network, mountKey, b.clampKey())
	if b.useCache(st, key) {
		return nil
	}
	cfg := st.cfg
	created := b.created
	cfg.Created = &created
	hist := ocispec.History{Created: &created, CreatedBy: "RUN " + strings.Join(args, " "), Comment: historyComment}
	var stepImg image.Image
	code, err := b.m.RunStep(container.StepOptions{
		Image: st.image(), Args: args, Env: b.runEnv(st), WorkingDir: cfg.Config.WorkingDir,
		User: cfg.Config.User, Network: network, Mounts: mounts, Stdout: b.out, Stderr: b.out,
		LogLevel: b.o.LogLevel, Clamp: b.clamp(), Context: b.ctx,
		Layer: func(l container.StepLayer) error {
			var err error
			stepImg, err = b.s.CommitBuildStep(image.BuildStep{Config: cfg, Layers: st.layers, History: hist, CacheKey: key,
				WriteLayer: l.Write, FromDir: l.Dir, NotInLayer: l.NotInLayer, Clamp: b.clamp()})
			return err
		},
	})
	if err != nil {
		return fmt.Errorf("%s: RUN %s: %w", label, strings.Join(args, " "), err)
	}
	if b.ctx.Err() != nil {
		return fmt.Errorf("%s: interrupted: %w", label, b.ctx.Err())
	}
	if code != 0 {
		return &StepError{Step: label, Command: strings.Join(args, " "), Code: code}
	}
	b.took(st, stepImg, cfg, hist, key)
	return nil
}

// useCache takes the step keyed key from the cache when it is there.
func (b *builder) useCache(st *stage, key string) bool {
	if b.o.NoCache {
		return false
	}
	hit, ok, err := b.cached(key)
	if err != nil {
		b.log.Warn("reading the build cache", "err", err)
	}
	if !ok {
		return false
	}
	st.cfg, st.layers, st.key = hit.cfg, hit.layers, key
	fmt.Fprintf(b.out, "--> Using cache %s\n", hit.img.ID.Encoded())
	fmt.Fprintf(b.out, "--> %s\n", hit.img.ShortID())
	return true
}

// took moves the stage on to the image a step stored.
func (b *builder) took(st *stage, img image.Image, cfg dockerspec.DockerOCIImage, hist ocispec.History, key string) {
	cfg.RootFS.DiffIDs = slices.Clone(img.Config.RootFS.DiffIDs)
	cfg.History = append(slices.Clone(cfg.History), hist)
	st.cfg, st.layers, st.key = cfg, slices.Clone(img.Manifest.Layers), key
	fmt.Fprintf(b.out, "--> %s\n", img.ShortID())
}

// scriptDir is where a RUN heredoc with a #! line is bound, as BuildKit does.
const scriptDir = "/dev/pipes"

// runArgs is the command a RUN runs: exec form as given, shell form after
// the stage's SHELL; a heredoc alone is the script, as BuildKit runs it.
func runArgs(c *instructions.RunCommand, cfg *dockerspec.DockerOCIImageConfig) []string {
	args := slices.Clone(c.CmdLine)
	if len(c.Files) > 0 && len(args) == 1 {
		if h := parser.MustParseHeredoc(args[0]); h != nil {
			data := c.Files[0].Data
			if c.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				// A script with its own interpreter runs as a file,
				// which run binds at scriptDir.
				return []string{path.Join(scriptDir, c.Files[0].Name)}
			}
			args = []string{data}
		} else {
			full := args[0]
			for _, f := range c.Files {
				full += "\n" + f.Data + f.Name
			}
			args = []string{full}
		}
	}
	if c.PrependShell {
		return append(slices.Clone(shellOf(cfg)), strings.Join(args, " "))
	}
	return args
}

// runEnv is RUN's environment: the stage's ENV, its ARGs where ENV does
// not set them, the proxy args given, and a PATH when none is set.
func (b *builder) runEnv(st *stage) []string {
	env := slices.Clone(st.cfg.Config.Env)
	has := func(k string) bool {
		return slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
	}
	for _, k := range slices.Sorted(maps.Keys(st.args)) {
		if !has(k) {
			env = append(env, k+"="+st.args[k])
		}
	}
	for k, v := range b.o.BuildArgs {
		if proxyArgs[k] && !has(k) {
			env = append(env, k+"="+v)
		}
	}
	if !has("PATH") {
		env = append(env, defaultPath)
	}
	return env
}

// image is the stage as an image in memory, for the build container.
func (st *stage) image() image.Image {
	var img image.Image
	img.Config = st.cfg.Image
	img.Config.Config = st.cfg.Config.ImageConfig
	raw, _ := json.Marshal(st.cfg)
	img.ID = digest.FromBytes(raw)
	img.Manifest.Layers = st.layers
	return img
}

// clamp is the time new layers' mtimes are capped at, zero for none.
func (b *builder) clamp() time.Time {
	if b.o.Timestamp == nil {
		return time.Time{}
	}
	return b.created
}

func (b *builder) clampKey() string {
	if b.o.Timestamp == nil {
		return ""
	}
	return fmt.Sprint(*b.o.Timestamp)
}

// runMounts turns RUN --mount into the build container's mounts, and
// what of them the cache key depends on.
func (b *builder) runMounts(st *stage, c *instructions.RunCommand) ([]container.MountSpec, string, error) {
	var out []container.MountSpec
	var key strings.Builder
	for _, m := range instructions.GetMounts(c) {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			target = path.Join("/", st.cfg.Config.WorkingDir, target)
		}
		switch m.Type {
		case instructions.MountTypeCache:
			id := m.CacheID
			if id == "" {
				id = target
			}
			sum := sha256.Sum256([]byte(id))
			dir := filepath.Join(b.s.Root(), "build-cache", hex.EncodeToString(sum[:16]))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, "", fmt.Errorf("making cache mount %s: %w", id, err)
			}
			if m.UID != nil || m.GID != nil || m.Mode != nil {
				if err := setOwnerMode(dir, m.UID, m.GID, m.Mode); err != nil {
					return nil, "", err
				}
			}
			out = append(out, container.MountSpec{Type: "bind", Source: dir, Target: target, ReadOnly: m.ReadOnly})
		case instructions.MountTypeTmpfs:
			out = append(out, container.MountSpec{Type: "tmpfs", Target: target})
		case instructions.MountTypeSecret:
			id := m.CacheID
			if id == "" {
				id = path.Base(target)
			}
			if target == "" {
				target = "/run/secrets/" + id
			}
			src, ok := b.o.Secrets[id]
			if !ok {
				if m.Required {
					return nil, "", fmt.Errorf("secret %q is required: give it with --secret id=%s,src=FILE", id, id)
				}
				continue
			}
			out = append(out, container.MountSpec{Type: "bind", Source: src, Target: target, ReadOnly: true})
		case instructions.MountTypeBind:
			if m.From != "" {
				spec, h, err := b.bindFrom(m.From, cleanRel(m.Source), target)
				if err != nil {
					return nil, "", fmt.Errorf("RUN --mount=type=bind,from=%s: %w", m.From, err)
				}
				key.WriteString(h)
				out = append(out, spec)
				continue
			}
			rel, err := b.context.resolve(cleanRel(m.Source))
			if err != nil {
				return nil, "", fmt.Errorf("RUN --mount=type=bind,source=%s: %w", m.Source, err)
			}
			h, err := b.hashSources(b.context, []string{rel})
			if err != nil {
				return nil, "", err
			}
			key.WriteString(h)
			out = append(out, container.MountSpec{Type: "bind", Source: filepath.Join(b.o.Context, rel), Target: target, ReadOnly: true}) // writes must not reach the context
		default:
			return nil, "", fmt.Errorf("RUN --mount=type=%s is not supported", m.Type)
		}
	}
	return out, key.String(), nil
}

// setOwnerMode applies a cache mount's uid, gid and mode to its directory.
func setOwnerMode(dir string, uid, gid, mode *uint64) error {
	u, g := -1, -1
	if uid != nil {
		u = int(*uid)
	}
	if gid != nil {
		g = int(*gid)
	}
	if err := os.Lchown(dir, u, g); err != nil {
		return fmt.Errorf("setting the owner of cache mount %s: %w", dir, err)
	}
	if mode != nil {
		if err := os.Chmod(dir, os.FileMode(*mode&0o7777)); err != nil {
			return fmt.Errorf("setting the mode of cache mount %s: %w", dir, err)
		}
	}
	return nil
}

// hashSources hashes context paths as COPY's cache does, for a bind
// mount's part of a RUN's key.
func (b *builder) hashSources(t tree, rels []string) (string, error) {
	p := &copyPlan{entries: map[string]*entry{}, mode: -1}
	for i, r := range rels {
		fi, err := t.lstat(r)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrSource, r, err)
		}
		name := fmt.Sprintf("src%d", i)
		p.putFrom(name, t, r, fi, b)
		if fi.IsDir() {
			if err := p.walk(t, nil, nil, r, "", name, b); err != nil {
				return "", err
			}
		}
	}
	return p.hash()
}

// bindFrom makes a stage's or image's path bindable: the union of its
// layers has no directory of its own, so the path is assembled under the
// store (files hard-linked, copied where a link is refused) and bound
// read-only. The directory goes when the build ends.
func (b *builder) bindFrom(from, src, target string) (container.MountSpec, string, error) {
	t, _, err := b.copySource(from, nil)
	if err != nil {
		return container.MountSpec{}, "", err
	}
	fi, err := t.lstat(src)
	if err != nil {
		return container.MountSpec{}, "", fmt.Errorf("%w: %s: %v", ErrSource, src, err)
	}
	h, err := b.hashSources(t, []string{src})
	if err != nil {
		return container.MountSpec{}, "", err
	}
	root := filepath.Join(b.s.Root(), "build-mounts")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return container.MountSpec{}, "", err
	}
	dir, err := os.MkdirTemp(root, "bind-")
	if err != nil {
		return container.MountSpec{}, "", err
	}
	b.cleanup = append(b.cleanup, func() { os.RemoveAll(dir) })
	dest := filepath.Join(dir, "src")
	if err := assemble(t, src, dest, fi); err != nil {
		return container.MountSpec{}, "", err
	}
	return container.MountSpec{Type: "bind", Source: dest, Target: target, ReadOnly: true}, h, nil
}

// assemble recreates p of t at dest: directories made, files linked.
func assemble(t tree, p, dest string, fi os.FileInfo) error {
	switch {
	case fi.IsDir():
		if err := os.Mkdir(dest, fi.Mode().Perm()|0o700); err != nil {
			return err
		}
		names, err := t.readDir(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			cfi, err := t.lstat(path.Join(p, n))
			if err != nil {
				return err
			}
			if err := assemble(t, path.Join(p, n), filepath.Join(dest, n), cfi); err != nil {
				return err
			}
		}
		return os.Chmod(dest, fi.Mode().Perm())
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := t.readlink(p)
		if err != nil {
			return err
		}
		return os.Symlink(target, dest)
	case fi.Mode().IsRegular():
		if lt, ok := t.(layerTree); ok {
			if host, err := lt.find(p); err == nil && os.Link(host, dest) == nil {
				return nil
			}
		}
		in, err := t.open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dest, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fi.Mode().Perm())
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return nil // special files are left out
}

// script writes a RUN heredoc that names its interpreter to a file bound
// read-only at scriptDir.
func (b *builder) script(f instructions.ShellInlineFile) (container.MountSpec, error) {
	data := f.Data
	if f.Chomp {
		data = parser.ChompHeredocContent(data)
	}
	if b.scratch == "" {
		var err error
		if b.scratch, err = os.MkdirTemp("", "nook-build-"); err != nil {
			return container.MountSpec{}, err
		}
	}
	file, err := os.CreateTemp(b.scratch, "script-")
	if err != nil {
		return container.MountSpec{}, err
	}
	_, err = file.WriteString(data)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(file.Name(), 0o755)
	}
	if err != nil {
		return container.MountSpec{}, fmt.Errorf("writing the RUN script: %w", err)
	}
	return container.MountSpec{Type: "bind", Source: file.Name(), Target: path.Join(scriptDir, f.Name), ReadOnly: true}, nil
}
