package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// ErrSource marks a COPY or ADD source that is missing or outside the context.
var ErrSource = errors.New("bad COPY source")

// copySpec is what COPY and ADD share.
type copySpec struct {
	src           instructions.SourcesAndDest
	from          string
	chown, chmod  string
	link, parents bool
	add           bool
	excludes      []string
	checksum      string
}

// entry is one tar entry of a COPY layer; regular files' data is read
// from t at p when written, or is data.
type entry struct {
	hdr  *tar.Header
	t    tree
	p    string
	data []byte
}

// copyPlan is a COPY's layer before it is written.
type copyPlan struct {
	entries  map[string]*entry
	archives []archiveSource // ADD's local tars, unpacked under dest
	uid, gid int
	chown    bool
	mode     int64 // --chmod, -1 for none
}

type archiveSource struct {
	t    tree
	p    string
	dest string
}

// copyStep makes a COPY or ADD layer, or takes it from the cache.
func (b *builder) copyStep(st *stage, cs copySpec, src, label string) error {
	what := "COPY"
	if cs.add {
		what = "ADD"
	}
	fail := func(err error) error { return fmt.Errorf("%s: %s: %w", label, what, err) }
	t, ig, err := b.copySource(cs.from, st)
	if err != nil {
		return fail(err)
	}
	excl, err := newIgnorer(cs.excludes)
	if err != nil {
		return fail(err)
	}
	stageFS := b.stageTree(st)
	plan := &copyPlan{entries: map[string]*entry{}, mode: -1}
	if cs.chown != "" {
		if plan.uid, plan.gid, err = resolveOwner(stageFS, cs.chown); err != nil {
			return fail(err)
		}
		plan.chown = true
	}
	if cs.chmod != "" {
		m, err := strconv.ParseUint(cs.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return fail(fmt.Errorf("--chmod=%s: want an octal mode", cs.chmod))
		}
		plan.mode = int64(m)
	}
	dest := cs.src.DestPath
	if !path.IsAbs(dest) {
		dest = path.Join("/", st.cfg.Config.WorkingDir, dest)
	}
	destRel := cleanRel(dest)
	intoDir := strings.HasSuffix(cs.src.DestPath, "/") || len(cs.src.SourcePaths)+len(cs.src.SourceContents) > 1
	if fi, err := stageFS.lstat(destRel); err == nil && fi.IsDir() {
		intoDir = true
	}
	for _, pattern := range cs.src.SourcePaths {
		if cs.add && isURL(pattern) {
			if err := b.addURL(plan, pattern, cs.checksum, destRel, intoDir); err != nil {
				return fail(err)
			}
			continue
		}
		rel := cleanRel(pattern)
		if strings.HasPrefix(rel, "../") || rel == ".." {
			return fail(fmt.Errorf("%w: %s is outside the build context", ErrSource, pattern))
		}
		matches, err := glob(t, rel)
		if err != nil {
			return fail(err)
		}
		matches = slices.DeleteFunc(matches, func(m string) bool { return ig.ignored(m) })
		if len(matches) == 0 {
			return fail(fmt.Errorf("%w: %s: no such file or directory in %s", ErrSource, pattern, b.sourceName(cs.from)))
		}
		for _, m := range matches {
			if err := plan.addSource(t, ig, excl, m, destRel, intoDir || len(matches) > 1, cs, b); err != nil {
				return fail(err)
			}
		}
	}
	for _, sc := range cs.src.SourceContents {
		name := destRel
		if intoDir {
			name = path.Join(destRel, sc.Path)
		}
		plan.put(name, &entry{hdr: &tar.Header{Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(sc.Data)), ModTime: b.created}, data: []byte(sc.Data)})
	}
	if len(plan.archives) > 0 && destRel != "" {
		plan.putDir(destRel, stageFS, b)
	}
	plan.addParents(stageFS, b)
	hash, err := plan.hash()
	if err != nil {
		return fail(err)
	}
	key := chainKey(st.key, src, st.visibleArgs(), hash, b.clampKey())
	if b.useCache(st, key) {
		return nil
	}
	cfg := st.cfg
	created := b.created
	cfg.Created = &created
	hist := ocispec.History{Created: &created, CreatedBy: src, Comment: historyComment}
	img, err := b.s.CommitBuildStep(image.BuildStep{Config: cfg, Layers: st.layers, History: hist, CacheKey: key,
		WriteLayer: func(w io.Writer) error { return plan.write(w, b) }})
	if err != nil {
		return fail(err)
	}
	b.took(st, img, cfg, hist, key)
	return nil
}

// copySource is where a COPY reads: the context (with .dockerignore), an
// earlier stage or an image.
func (b *builder) copySource(from string, st *stage) (tree, *ignorer, error) {
	if from == "" {
		return b.context, b.ignore, nil
	}
	if j, ok := b.stageIndex(from); ok {
		if b.stages[j] == nil {
			return nil, nil, fmt.Errorf("--from=%s: the stage is not built before this one", from)
		}
		return b.stageTree(b.stages[j]), nil, nil
	}
	img, err := b.baseImage(from)
	if err != nil {
		return nil, nil, err
	}
	return b.layersTree(img.Config.RootFS.DiffIDs), nil, nil
}

func (b *builder) sourceName(from string) string {
	if from == "" {
		return "the build context"
	}
	return from
}

// stageTree reads the stage's files from its layers.
func (b *builder) stageTree(st *stage) layerTree { return b.layersTree(st.cfg.RootFS.DiffIDs) }

func (b *builder) layersTree(diffIDs []digest.Digest) layerTree {
	var t layerTree
	for i := len(diffIDs) - 1; i >= 0; i-- {
		t.dirs = append(t.dirs, b.s.LayerDir(diffIDs[i]))
	}
	return t
}

// addSource plans one matched source: a directory's contents, an archive
// to unpack (ADD), or a file.
func (p *copyPlan) addSource(t tree, ig, excl *ignorer, m, destRel string, intoDir bool, cs copySpec, b *builder) error {
	real, err := t.resolve(m)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSource, m, err)
	}
	fi, err := t.lstat(real)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSource, m, err)
	}
	target := destRel
	if cs.parents {
		target = path.Join(destRel, m)
	}
	if fi.IsDir() {
		if cs.parents {
			p.putFrom(target, t, real, fi, b)
		}
		return p.walk(t, ig, excl, real, "", target, b)
	}
	if intoDir && !cs.parents {
		target = path.Join(destRel, path.Base(m))
	}
	if cs.add && fi.Mode().IsRegular() && isArchive(t, real) {
		p.archives = append(p.archives, archiveSource{t: t, p: real, dest: destRel})
		return nil
	}
	p.putFrom(target, t, real, fi, b)
	return nil
}

// walk plans a directory's contents, depth first, leaving out what
// .dockerignore or --exclude name.
func (p *copyPlan) walk(t tree, ig, excl *ignorer, dir, rel, target string, b *builder) error {
	names, err := t.readDir(path.Join(dir, rel))
	if err != nil {
		return fmt.Errorf("reading %s: %w", path.Join(dir, rel), err)
	}
	for _, n := range names {
		r := path.Join(rel, n)
		full := path.Join(dir, r)
		if ig.ignored(full) || excl.ignored(r) {
			continue
		}
		fi, err := t.lstat(full)
		if err != nil {
			return err
		}
		p.putFrom(path.Join(target, r), t, full, fi, b)
		if fi.IsDir() {
			if err := p.walk(t, ig, excl, dir, r, target, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// putFrom plans the file fi of t at src as name in the layer.
func (p *copyPlan) putFrom(name string, t tree, src string, fi fs.FileInfo, b *builder) {
	if name == "" {
		return // the root itself: nothing to write
	}
	hdr := &tar.Header{Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime().Truncate(1e9)}
	if fi.Mode()&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if fi.Mode()&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if fi.Mode()&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && t.keepOwners() {
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
	}
	e := &entry{hdr: hdr}
	switch {
	case fi.IsDir():
		hdr.Typeflag = tar.TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname, _ = t.readlink(src)
	case fi.Mode().IsRegular():
		hdr.Typeflag, hdr.Size, e.t, e.p = tar.TypeReg, fi.Size(), t, src
	default:
		b.log.Warn("COPY leaves out a special file", "path", src)
		return
	}
	p.put(name, e)
}

// put plans name with the COPY's owner and mode over its own.
func (p *copyPlan) put(name string, e *entry) {
	e.hdr.Name = name
	e.hdr.Format = tar.FormatPAX
	if p.chown {
		e.hdr.Uid, e.hdr.Gid = p.uid, p.gid
	}
	if p.mode >= 0 && e.hdr.Typeflag != tar.TypeSymlink {
		e.hdr.Mode = p.mode
	}
	if e.hdr.Typeflag == tar.TypeDir {
		e.hdr.Name += "/"
	}
	p.entries[name] = e
}

// putDir plans a directory the COPY writes into: as the stage has it, or
// new (0755, the COPY's owner).
func (p *copyPlan) putDir(name string, stageFS layerTree, b *builder) {
	if _, ok := p.entries[name]; ok {
		return
	}
	if fi, err := stageFS.lstat(name); err == nil && fi.IsDir() {
		e := &entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime().Truncate(1e9), Format: tar.FormatPAX}}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			e.hdr.Uid, e.hdr.Gid = int(st.Uid), int(st.Gid)
			e.hdr.Mode = int64(st.Mode & 0o7777)
		}
		p.entries[name] = e
		return
	}
	e := &entry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: b.created, Format: tar.FormatPAX}}
	if p.chown {
		e.hdr.Uid, e.hdr.Gid = p.uid, p.gid
	}
	p.entries[name] = e
}

// addParents plans every parent directory of the planned entries: a
// layer's directory hides the one below in the union, so it must carry
// the stage's owner and mode.
func (p *copyPlan) addParents(stageFS layerTree, b *builder) {
	for _, name := range slices.Collect(maps.Keys(p.entries)) {
		for d := path.Dir(name); d != "." && d != "/" && d != ""; d = path.Dir(d) {
			p.putDir(d, stageFS, b)
		}
	}
	for _, a := range p.archives {
		for d := a.dest; d != "." && d != "/" && d != ""; d = path.Dir(d) {
			p.putDir(d, stageFS, b)
		}
	}
}

// sorted is the planned names, parents before children.
func (p *copyPlan) sorted() []string {
	names := slices.Collect(maps.Keys(p.entries))
	slices.SortFunc(names, func(a, b string) int {
		return strings.Compare(strings.ReplaceAll(a, "/", "\x00"), strings.ReplaceAll(b, "/", "\x00"))
	})
	return names
}

// hash is the COPY's sources as the cache sees them: names, types, modes,
// owners, link targets and contents, not times.
func (p *copyPlan) hash() (string, error) {
	h := sha256.New()
	for _, n := range p.sorted() {
		e := p.entries[n]
		fmt.Fprintf(h, "%s\x00%c\x00%o\x00%d:%d\x00%s\x00%d\x00", n, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid, e.hdr.Linkname, e.hdr.Size)
		if err := e.content(h); err != nil {
			return "", err
		}
	}
	for _, a := range p.archives {
		fmt.Fprintf(h, "archive\x00%s\x00", a.dest)
		f, err := a.t.open(a.p)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// content copies a regular entry's data to w.
func (e *entry) content(w io.Writer) error {
	if e.hdr.Typeflag != tar.TypeReg {
		return nil
	}
	if e.t == nil {
		_, err := w.Write(e.data)
		return err
	}
	f, err := e.t.open(e.p)
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.p, err)
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.p, err)
	}
	if n != e.hdr.Size {
		return fmt.Errorf("reading %s: it changed during the build", e.p)
	}
	return nil
}

// write writes the layer: the planned entries in order, then each
// archive's entries under its destination.
func (p *copyPlan) write(w io.Writer, b *builder) error {
	tw := tar.NewWriter(w)
	clamp := b.clamp()
	for _, n := range p.sorted() {
		e := p.entries[n]
		if !clamp.IsZero() && e.hdr.ModTime.After(clamp) {
			e.hdr.ModTime = clamp
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			return err
		}
		if err := e.content(tw); err != nil {
			return err
		}
	}
	for _, a := range p.archives {
		if err := p.unpackInto(tw, a, clamp); err != nil {
			return err
		}
	}
	return tw.Close()
}

// workdir makes WORKDIR's directory when the stage lacks it, as BuildKit
// does: a layer of the directory and its missing parents (root's, 0755);
// a directory that exists adds only the history entry.
func (b *builder) workdir(st *stage, src, label string) error {
	dir := cleanRel(st.cfg.Config.WorkingDir)
	stageFS := b.stageTree(st)
	created := b.created
	hist := ocispec.History{Created: &created, CreatedBy: src, Comment: historyComment}
	if fi, err := stageFS.lstat(dir); dir == "" || (err == nil && fi.IsDir()) {
		hist.EmptyLayer = true
		st.cfg.History = append(st.cfg.History, hist)
		st.key = chainKey(st.key, src, st.visibleArgs())
		return nil
	}
	plan := &copyPlan{entries: map[string]*entry{}, mode: -1}
	plan.putDir(dir, stageFS, b)
	plan.addParents(stageFS, b)
	key := chainKey(st.key, src, st.visibleArgs(), b.clampKey())
	if b.useCache(st, key) {
		return nil
	}
	cfg := st.cfg
	cfg.Created = &created
	img, err := b.s.CommitBuildStep(image.BuildStep{Config: cfg, Layers: st.layers, History: hist, CacheKey: key,
		WriteLayer: func(w io.Writer) error { return plan.write(w, b) }})
	if err != nil {
		return fmt.Errorf("%s: WORKDIR: %w", label, err)
	}
	b.took(st, img, cfg, hist, key)
	return nil
}
