package build

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"runtime"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
	"nook/registry"
)

// stage is a stage's image so far, held in memory: only steps that make a
// layer store an image.
type stage struct {
	cfg    dockerspec.DockerOCIImage
	layers []ocispec.Descriptor
	key    string            // the cache key of everything so far
	args   map[string]string // the ARGs declared in the stage, with values
	cmdSet bool              // CMD given in this stage (ENTRYPOINT then keeps it)
}

func (st *stage) clone() *stage {
	c := *st
	c.layers = slices.Clone(st.layers)
	c.args = maps.Clone(st.args)
	c.cfg.History = slices.Clone(st.cfg.History)
	c.cfg.RootFS.DiffIDs = slices.Clone(st.cfg.RootFS.DiffIDs)
	c.cfg.Config.Env = slices.Clone(st.cfg.Config.Env)
	c.cfg.Config.Labels = maps.Clone(st.cfg.Config.Labels)
	c.cfg.Config.ExposedPorts = maps.Clone(st.cfg.Config.ExposedPorts)
	c.cfg.Config.Volumes = maps.Clone(st.cfg.Config.Volumes)
	return &c
}

// buildStage runs stage i's FROM and its instructions.
func (b *builder) buildStage(i int) (*stage, error) {
	sd := b.df.stages[i]
	b.printStep(sd.SourceCode)
	st, err := b.from(sd, i)
	if err != nil {
		return nil, err
	}
	triggers := st.cfg.Config.OnBuild
	st.cfg.Config.OnBuild = nil
	for _, t := range triggers {
		if err := b.trigger(st, t); err != nil {
			return nil, fmt.Errorf("ONBUILD %s: %w", t, err)
		}
	}
	for _, cmd := range sd.Commands {
		if err := b.ctx.Err(); err != nil {
			return nil, fmt.Errorf("build interrupted: %w", err)
		}
		label := b.printStep(b.df.source(cmd))
		if err := b.dispatch(st, cmd, label); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// from starts a stage from scratch, an earlier stage or an image.
func (b *builder) from(sd instructions.Stage, i int) (*stage, error) {
	base, err := b.expand(sd.BaseName, b.meta)
	if err != nil {
		return nil, fmt.Errorf("%s: FROM %s: %w", b.df.name, sd.BaseName, err)
	}
	if sd.Platform != "" {
		p, err := b.expand(sd.Platform, b.meta)
		if err != nil {
			return nil, err
		}
		if host := "linux/" + runtime.GOARCH; p != host && p != "$BUILDPLATFORM" && p != "$TARGETPLATFORM" {
			return nil, fmt.Errorf("FROM --platform=%s: only this machine's platform, %s, can be built", p, host)
		}
	}
	st := &stage{args: map[string]string{}}
	switch j, isStage := b.stageIndex(base); {
	case strings.EqualFold(base, "scratch"):
		st.cfg, st.key = scratchConfig(), chainKey("scratch")
	case isStage && j < i:
		st = b.stages[j].clone()
		st.args, st.cmdSet = map[string]string{}, false
	default:
		img, err := b.baseImage(base)
		if err != nil {
			return nil, err
		}
		if st.cfg, err = b.rawConfig(img); err != nil {
			return nil, err
		}
		st.layers, st.key = slices.Clone(img.Manifest.Layers), chainKey("image", img.ID.String())
		fmt.Fprintf(b.out, "--> %s\n", img.ShortID())
	}
	return st, nil
}

// baseImage finds a FROM or --from image in the store, pulling it when
// the store lacks it or --pull says so.
func (b *builder) baseImage(ref string) (image.Image, error) {
	img, err := b.s.Resolve(ref)
	if err == nil && !b.o.Pull {
		return img, nil
	}
	if err != nil && !errors.Is(err, image.ErrNotFound) {
		return img, err
	}
	if _, perr := image.ParseRef(ref); perr != nil {
		return img, fmt.Errorf("FROM %s: %w", ref, perr)
	}
	fmt.Fprintf(b.out, "Pulling %s\n", ref)
	if _, err := registry.Pull(b.ctx, b.s, ref, b.o.PullOptions); err != nil {
		return img, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return b.s.Resolve(ref)
}

// rawConfig reads an image's config with Docker's fields.
func (b *builder) rawConfig(img image.Image) (dockerspec.DockerOCIImage, error) {
	var c dockerspec.DockerOCIImage
	raw, err := b.s.RawConfig(img)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("decoding the config of %s: %w", img.ShortID(), err)
	}
	return c, nil
}

// trigger runs one ONBUILD instruction of the base image.
func (b *builder) trigger(st *stage, text string) error {
	res, err := parser.Parse(strings.NewReader(text))
	if err != nil {
		return err
	}
	for _, n := range res.AST.Children {
		cmd, err := instructions.ParseCommand(n)
		if err != nil {
			return err
		}
		fmt.Fprintf(b.out, "ONBUILD %s\n", text)
		if err := b.dispatch(st, cmd, "ONBUILD"); err != nil {
			return err
		}
	}
	return nil
}

// env is what an instruction's words expand against: the stage's ARGs,
// with its ENV over them.
func (st *stage) env() map[string]string {
	env := maps.Clone(st.args)
	for _, kv := range st.cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

func (b *builder) expand(word string, env map[string]string) (string, error) {
	lex := shell.NewLex(b.df.escape)
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	out, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(list))
	return out, err
}

// visibleArgs is the ARGs part of a step's cache key.
func (st *stage) visibleArgs() string {
	keys := slices.Sorted(maps.Keys(st.args))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, st.args[k])
	}
	return b.String()
}

// dispatch does what one instruction does to the stage.
func (b *builder) dispatch(st *stage, cmd instructions.Command, label string) error {
	env := st.env()
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(func(w string) (string, error) { return b.expand(w, env) }); err != nil {
			return fmt.Errorf("%s: %s: %w", label, cmd.Name(), err)
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := ex.ExpandRaw(func(w string) (string, error) { return b.expand(w, env) }); err != nil {
			return fmt.Errorf("%s: %s: %w", label, cmd.Name(), err)
		}
	}
	src := b.df.source(cmd)
	switch c := cmd.(type) {
	case *instructions.RunCommand:
		return b.run(st, c, src, label)
	case *instructions.CopyCommand:
		return b.copyStep(st, copySpec{src: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			link: c.Link, excludes: c.ExcludePatterns, parents: c.Parents}, src, label)
	case *instructions.AddCommand:
		return b.copyStep(st, copySpec{src: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, link: c.Link,
			excludes: c.ExcludePatterns, add: true, checksum: c.Checksum}, src, label)
	case *instructions.WorkdirCommand:
		if err := applyConfig(&st.cfg.Config, cmd, st); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		return b.workdir(st, src, label)
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			if v, given := b.o.BuildArgs[kv.Key]; given {
				st.args[kv.Key] = v
				b.used[kv.Key] = true
			} else if kv.Value != nil {
				st.args[kv.Key] = *kv.Value
			} else if v, ok := b.meta[kv.Key]; ok {
				st.args[kv.Key] = v
			} else {
				st.args[kv.Key] = ""
			}
		}
	default:
		if err := applyConfig(&st.cfg.Config, cmd, st); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
	}
	st.key = chainKey(st.key, src, st.visibleArgs())
	created := b.created
	st.cfg.History = append(st.cfg.History, ocispec.History{
		Created: &created, CreatedBy: src, Comment: historyComment, EmptyLayer: true,
	})
	return nil
}

const historyComment = "nook build"

// applyConfig applies an instruction that changes the config alone; st
// is nil for `import --change` and `commit --change`.
func applyConfig(cfg *dockerspec.DockerOCIImageConfig, cmd instructions.Command, st *stage) error {
	switch c := cmd.(type) {
	case *instructions.CmdCommand:
		cfg.Cmd = withShell(cfg, c.ShellDependantCmdLine)
		if st != nil {
			st.cmdSet = true
		}
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = withShell(cfg, c.ShellDependantCmdLine)
		if st != nil && !st.cmdSet {
			cfg.Cmd = nil // Docker drops a CMD the base image gave
		}
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.WorkdirCommand:
		cfg.WorkingDir = path.Join("/", cfg.WorkingDir, c.Path)
		if path.IsAbs(c.Path) {
			cfg.WorkingDir = path.Clean(c.Path)
		}
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.HealthCheckCommand:
		if st == nil {
			return errNotAllowed(cmd)
		}
		cfg.Healthcheck = c.Health
	case *instructions.ShellCommand:
		if st == nil {
			return errNotAllowed(cmd)
		}
		cfg.Shell = slices.Clone(c.Shell)
	case *instructions.OnbuildCommand:
		if st == nil {
			return errNotAllowed(cmd)
		}
		cfg.OnBuild = append(slices.Clone(cfg.OnBuild), c.Expression)
	case *instructions.MaintainerCommand:
		if st == nil {
			return errNotAllowed(cmd)
		}
		// Stored as the author by dispatch's caller? Docker puts it in
		// the config's author; a label is what BuildKit suggests.
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels["maintainer"] = c.Maintainer
	default:
		return errNotAllowed(cmd)
	}
	return nil
}

func errNotAllowed(cmd instructions.Command) error {
	return fmt.Errorf("%s is not allowed here (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR are)", strings.ToUpper(cmd.Name()))
}

// shellOf is the stage's SHELL, by default /bin/sh -c.
func shellOf(cfg *dockerspec.DockerOCIImageConfig) []string {
	if len(cfg.Shell) > 0 {
		return cfg.Shell
	}
	return []string{"/bin/sh", "-c"}
}

// withShell turns CMD ls -l into ["/bin/sh", "-c", "ls -l"], as Docker does.
func withShell(cfg *dockerspec.DockerOCIImageConfig, c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(slices.Clone(shellOf(cfg)), strings.Join(c.CmdLine, " "))
	}
	return slices.Clone(c.CmdLine)
}

func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env = slices.Clone(env)
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}
