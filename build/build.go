package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/container"
	"nook/image"
	"nook/registry"
)

// Options describe one build.
type Options struct {
	Context        string // the context directory
	Dockerfile     []byte // the Dockerfile's text
	DockerfileName string // as the user named it, for errors
	Tags           []string
	BuildArgs      map[string]string
	Target         string // "" builds the last stage
	NoCache        bool
	Pull           bool // pull FROM images even when the store has them
	PullOptions    registry.PullOptions
	Labels         map[string]string
	Network        string            // RUN's network: host (default) or none
	Secrets        map[string]string // id → host file, for RUN --mount=type=secret
	Timestamp      *int64            // SOURCE_DATE_EPOCH: clamp times, fix config times
	Out            io.Writer         // steps and RUN output; nil discards
	LogLevel       slog.Level
	Logger         *slog.Logger // nil discards
}

// StepError is a RUN whose command failed.
type StepError struct {
	Step    string // "STEP 3/5"
	Command string
	Code    int
}

func (e *StepError) Error() string {
	return fmt.Sprintf("%s: RUN %s: exit status %d", e.Step, e.Command, e.Code)
}

// builder holds one build's state.
type builder struct {
	ctx     context.Context
	o       Options
	s       *image.Store
	m       *container.Manager
	df      *dockerfile
	log     *slog.Logger
	out     io.Writer
	context tree
	ignore  *ignorer
	meta    map[string]string // ARGs before the first FROM, with their values
	used    map[string]bool   // build args some ARG consumed
	stages  []*stage          // by index; nil when not (yet) built
	created time.Time         // fixed with a timestamp, else the build's start
	scratch string            // downloads (ADD URL), removed at the end
	cleanup []func()          // run when the build ends
	step    int               // steps of this stage printed so far
	total   int               // steps of this stage
	stage   int               // the stage being built, counting the needed ones from 1
	nstages int               // stages built
}

// Build runs the Dockerfile's steps and returns the image, tagged with
// o.Tags. Call it inside the user namespace: layers keep their owners.
func Build(ctx context.Context, s *image.Store, m *container.Manager, o Options) (image.Image, error) {
	df, err := parse(o.DockerfileName, o.Dockerfile)
	if err != nil {
		return image.Image{}, err
	}
	b := &builder{ctx: ctx, o: o, s: s, m: m, df: df, log: o.Logger, out: o.Out,
		context: dirTree{root: o.Context}, used: map[string]bool{}, created: time.Now().UTC()}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.out == nil {
		b.out = io.Discard
	}
	if o.Timestamp != nil {
		b.created = time.Unix(*o.Timestamp, 0).UTC()
	}
	if b.ignore, err = readIgnore(o.Context); err != nil {
		return image.Image{}, err
	}
	if err := b.metaArgs(); err != nil {
		return image.Image{}, err
	}
	target, err := b.target()
	if err != nil {
		return image.Image{}, err
	}
	needed, err := b.needed(target)
	if err != nil {
		return image.Image{}, err
	}
	defer func() {
		if b.scratch != "" {
			os.RemoveAll(b.scratch)
		}
		for _, f := range b.cleanup {
			f()
		}
	}()
	b.stages = make([]*stage, len(df.stages))
	b.nstages = len(needed)
	for i := range df.stages {
		if !needed[i] {
			continue
		}
		b.stage, b.step, b.total = b.stage+1, 0, 1+len(df.stages[i].Commands)
		st, err := b.buildStage(i)
		if err != nil {
			return image.Image{}, err
		}
		b.stages[i] = st
	}
	b.warnUnused()
	return b.commit(b.stages[target])
}

// metaArgs evaluates the ARGs before the first FROM.
func (b *builder) metaArgs() error {
	b.meta = map[string]string{}
	for _, a := range b.df.metaArgs {
		for _, kv := range a.Args {
			v, given := b.o.BuildArgs[kv.Key]
			if given {
				b.used[kv.Key] = true
			} else if kv.Value != nil {
				var err error
				if v, err = b.expand(*kv.Value, b.meta); err != nil {
					return fmt.Errorf("ARG %s: %w", kv.Key, err)
				}
			} else {
				continue
			}
			b.meta[kv.Key] = v
		}
	}
	return nil
}

// target is the index of the stage to build.
func (b *builder) target() (int, error) {
	if b.o.Target == "" {
		return len(b.df.stages) - 1, nil
	}
	if i, ok := b.stageIndex(b.o.Target); ok {
		return i, nil
	}
	return 0, fmt.Errorf("target stage %q could not be found in %s", b.o.Target, b.df.name)
}

// stageIndex finds a stage by name (case-insensitive, as BuildKit) or index.
func (b *builder) stageIndex(name string) (int, bool) {
	for i, st := range b.df.stages {
		if st.Name != "" && strings.EqualFold(st.Name, name) {
			return i, true
		}
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < len(b.df.stages) {
		return n, true
	}
	return 0, false
}

// needed marks the stages the target depends on: its base and the
// sources of COPY --from and RUN --mount from=, transitively.
func (b *builder) needed(target int) (map[int]bool, error) {
	need := map[int]bool{}
	var visit func(i int)
	visit = func(i int) {
		if need[i] {
			return
		}
		need[i] = true
		st := b.df.stages[i]
		refs := []string{st.BaseName}
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				refs = append(refs, c.From)
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					refs = append(refs, m.From)
				}
			}
		}
		for _, r := range refs {
			if r == "" {
				continue
			}
			if r, err := b.expand(r, b.meta); err == nil {
				if j, ok := b.stageIndex(r); ok && j < i {
					visit(j)
				}
			}
		}
	}
	visit(target)
	return need, nil
}

// warnUnused says which --build-arg no ARG consumed, as Docker does.
func (b *builder) warnUnused() {
	var unused []string
	for k := range b.o.BuildArgs {
		if !b.used[k] && !proxyArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		fmt.Fprintf(b.out, "[Warning] one or more build-args %v were not consumed\n", unused)
	}
}

// proxyArgs are the build args every Dockerfile may be given without
// declaring them; they reach RUN but not the image nor the cache key.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// printStep prints Podman's "STEP n/m: INSTRUCTION" line, after
// "[s/S] " when more than one stage is built.
func (b *builder) printStep(text string) string {
	b.step++
	label := fmt.Sprintf("STEP %d/%d", b.step, b.total)
	if b.nstages > 1 {
		label = fmt.Sprintf("[%d/%d] %s", b.stage, b.nstages, label)
	}
	fmt.Fprintf(b.out, "%s: %s\n", label, strings.SplitN(text, "\n", 2)[0])
	return label
}

// commit stores the final image under the tags, reusing the cached one
// when nothing changed, so a rebuild gives the same id.
func (b *builder) commit(st *stage) (image.Image, error) {
	cfg := st.cfg
	if len(b.o.Labels) > 0 {
		labels := maps.Clone(cfg.Config.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, b.o.Labels)
		cfg.Config.Labels = labels
	}
	lb, _ := json.Marshal(b.o.Labels)
	key := chainKey(st.key, "final", string(lb))
	var names []string
	for _, t := range b.o.Tags {
		n, err := image.ParseName(t)
		if err != nil {
			return image.Image{}, err
		}
		names = append(names, n.String())
	}
	if len(names) > 0 {
		fmt.Fprintf(b.out, "COMMIT %s\n", image.FamiliarName(names[0]))
	} else {
		fmt.Fprintln(b.out, "COMMIT")
	}
	hit := false
	if !b.o.NoCache {
		cached, ok, err := b.cached(key)
		if err != nil {
			return image.Image{}, err
		}
		if ok {
			cfg, st.layers, hit = cached.cfg, cached.layers, true
		}
	}
	if !hit {
		created := b.created
		cfg.Created = &created
	}
	img, err := b.s.CommitBuildStep(image.BuildStep{Config: cfg, Layers: st.layers, CacheKey: key, Names: names, Listed: true})
	if err != nil {
		return img, err
	}
	fmt.Fprintf(b.out, "--> %s\n", img.ShortID())
	for _, n := range names {
		fmt.Fprintf(b.out, "Successfully tagged %s\n", n)
	}
	return img, nil
}

// chainKey hashes a step's parts after its parent's key.
func chainKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// scratchConfig is the config of FROM scratch.
func scratchConfig() dockerspec.DockerOCIImage {
	var c dockerspec.DockerOCIImage
	c.Platform = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	c.RootFS.Type = "layers"
	return c
}
