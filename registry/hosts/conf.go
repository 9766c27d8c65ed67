package hosts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// registries.conf, version 2, as containers/image reads it (Podman,
// skopeo, buildah): one [[registry]] table is chosen per image by the
// longest prefix match; it may move the image elsewhere (location), try
// mirrors first (pulls only), allow plain HTTP and unverified TLS
// (insecure) or forbid the registry (blocked). Version 1's
// [registries.insecure] and [registries.block] lists are read as tables
// of their own. unqualified-search-registries, aliases and the like are
// ignored: nook names images as Docker does.

// ErrConf: a registries.conf file nook cannot use.
var ErrConf = errors.New("invalid registries.conf")

// confFile is one file as TOML decodes it. The decoder is go-toml, not
// BurntSushi/toml, whose package init reads the local time zone
// (/etc/localtime) in every nook process: ~0.07 ms of each start.
type confFile struct {
	Registries []confRegistry `toml:"registry"`
	V1         struct {
		Insecure struct{ Registries []string } `toml:"insecure"`
		Block    struct{ Registries []string } `toml:"block"`
	} `toml:"registries"`
}

type confRegistry struct {
	Prefix             string       `toml:"prefix"`
	Location           string       `toml:"location"`
	Insecure           bool         `toml:"insecure"`
	Blocked            bool         `toml:"blocked"`
	MirrorByDigestOnly bool         `toml:"mirror-by-digest-only"`
	Mirrors            []confMirror `toml:"mirror"`
}

type confMirror struct {
	Location       string `toml:"location"`
	Insecure       bool   `toml:"insecure"`
	PullFromMirror string `toml:"pull-from-mirror"` // all (""), digest-only, tag-only
}

// conf is the merged configuration: one table per prefix.
type conf struct {
	registries []confRegistry
}

// confPaths says where registries.conf and its drop-ins live.
type confPaths struct {
	files []string // the main file first, then drop-ins in order
}

// defaultConfPaths follows containers/image: $CONTAINERS_REGISTRIES_CONF
// names the main file when set; else the user's file replaces the
// system's when it exists (and then only the user's drop-ins count); else
// the system's file, its drop-ins, then the user's drop-ins. Drop-ins in
// one directory are read in name order.
func defaultConfPaths() confPaths {
	return confPathsIn(os.Getenv("CONTAINERS_REGISTRIES_CONF"), filepath.Join(configHome(), "containers"), "/etc/containers")
}

func confPathsIn(envFile, userDir, systemDir string) confPaths {
	userFile := filepath.Join(userDir, "registries.conf")
	userDropIns := filepath.Join(userDir, "registries.conf.d")
	systemFile := filepath.Join(systemDir, "registries.conf")
	systemDropIns := filepath.Join(systemDir, "registries.conf.d")
	if envFile != "" {
		return confPaths{files: append([]string{envFile}, dropIns(systemDropIns, userDropIns)...)}
	}
	if _, err := os.Stat(userFile); err == nil {
		return confPaths{files: append([]string{userFile}, dropIns(userDropIns)...)}
	}
	return confPaths{files: append([]string{systemFile}, dropIns(systemDropIns, userDropIns)...)}
}

// dropIns lists the *.conf files of dirs, each directory in name order.
func dropIns(dirs ...string) []string {
	var files []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir) // sorted by name
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".conf") {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	return files
}

// configHome is $XDG_CONFIG_HOME, by default ~/.config.
func configHome() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config")
}

// loadConf reads and merges the files in order; a missing file is empty.
// A later file's table replaces an earlier one with the same prefix.
func loadConf(paths confPaths) (*conf, error) {
	byPrefix := map[string]confRegistry{}
	for _, path := range paths.files {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		regs, err := parseConf(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, r := range regs {
			byPrefix[r.Prefix] = r
		}
	}
	c := &conf{}
	for _, r := range byPrefix {
		c.registries = append(c.registries, r)
	}
	sort.Slice(c.registries, func(i, j int) bool { return c.registries[i].Prefix < c.registries[j].Prefix })
	return c, nil
}

// parseConf decodes one file and checks its tables: the prefix defaults to
// the location; no URL schemes; a wildcard prefix (*.example.com) moves
// nothing; each prefix once.
func parseConf(data []byte) ([]confRegistry, error) {
	var f confFile
	if err := toml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConf, err)
	}
	regs := f.Registries
	if len(f.V1.Insecure.Registries)+len(f.V1.Block.Registries) > 0 {
		if len(regs) > 0 {
			return nil, fmt.Errorf("%w: mixes version 1 [registries.*] and version 2 [[registry]] tables", ErrConf)
		}
		regs = v1Tables(f.V1.Insecure.Registries, f.V1.Block.Registries)
	}
	seen := map[string]bool{}
	for i := range regs {
		r := &regs[i]
		if r.Prefix == "" {
			r.Prefix = r.Location
		}
		if err := checkTable(r); err != nil {
			return nil, err
		}
		if seen[r.Prefix] {
			return nil, fmt.Errorf("%w: prefix %q given twice", ErrConf, r.Prefix)
		}
		seen[r.Prefix] = true
	}
	return regs, nil
}

func v1Tables(insecure, block []string) []confRegistry {
	byHost := map[string]*confRegistry{}
	var order []string
	get := func(h string) *confRegistry {
		if byHost[h] == nil {
			byHost[h] = &confRegistry{Prefix: h, Location: h}
			order = append(order, h)
		}
		return byHost[h]
	}
	for _, h := range insecure {
		get(h).Insecure = true
	}
	for _, h := range block {
		get(h).Blocked = true
	}
	regs := make([]confRegistry, 0, len(order))
	for _, h := range order {
		regs = append(regs, *byHost[h])
	}
	return regs
}

func checkTable(r *confRegistry) error {
	if r.Prefix == "" {
		return fmt.Errorf("%w: a [[registry]] has neither prefix nor location", ErrConf)
	}
	for _, s := range []string{r.Prefix, r.Location} {
		if strings.Contains(s, "://") {
			return fmt.Errorf("%w: %q: give a registry name, not a URL", ErrConf, s)
		}
	}
	if strings.HasPrefix(r.Prefix, "*.") {
		if r.Location != "" && r.Location != r.Prefix {
			return fmt.Errorf("%w: wildcard prefix %q cannot have a location", ErrConf, r.Prefix)
		}
		r.Location = ""
	} else if strings.Contains(r.Prefix, "*") {
		return fmt.Errorf("%w: prefix %q: a wildcard only starts a prefix, as *.example.com", ErrConf, r.Prefix)
	}
	for _, m := range r.Mirrors {
		if m.Location == "" {
			return fmt.Errorf("%w: a mirror of %q has no location", ErrConf, r.Prefix)
		}
		if strings.Contains(m.Location, "://") {
			return fmt.Errorf("%w: mirror %q: give a registry name, not a URL", ErrConf, m.Location)
		}
		switch m.PullFromMirror {
		case "", "all", "digest-only", "tag-only":
		default:
			return fmt.Errorf("%w: mirror %q: pull-from-mirror is all, digest-only or tag-only, not %q", ErrConf, m.Location, m.PullFromMirror)
		}
	}
	return nil
}

// matchLen is how much of ref prefix matches, or -1: ref must equal
// prefix or go on with a separator ('/', or ':' and '@' once past the
// host, so that example.com does not take example.com:5000); *.example.com
// matches any host below example.com, with or without a port.
func matchLen(ref, prefix string) int {
	host, _, _ := strings.Cut(ref, "/")
	if suffix, ok := strings.CutPrefix(prefix, "*"); ok {
		name := host
		if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.HasSuffix(host, "]") {
			name = host[:i]
		}
		if len(name) > len(suffix) && strings.HasSuffix(name, suffix) {
			return len(name)
		}
		return -1
	}
	if !strings.HasPrefix(ref, prefix) {
		return -1
	}
	if len(ref) == len(prefix) {
		return len(prefix)
	}
	switch ref[len(prefix)] {
	case '/':
		return len(prefix)
	case ':', '@':
		if len(prefix) > len(host) {
			return len(prefix)
		}
	}
	return -1
}

// find returns the table with the longest match for ref and the length
// matched, or nil.
func (c *conf) find(ref string) (*confRegistry, int) {
	var best *confRegistry
	bestLen := -1
	for i := range c.registries {
		if n := matchLen(ref, c.registries[i].Prefix); n > bestLen {
			best, bestLen = &c.registries[i], n
		}
	}
	return best, bestLen
}

// route is one place to reach an image: its reference there and whether
// that place is insecure (plain HTTP and unverified TLS allowed).
type route struct {
	ref      string
	insecure bool
	mirror   bool
}

// routes lists where to reach ref (a name, with or without tag or
// digest): for a pull the mirrors in order, then the location; for a
// push the reference itself (registries.conf moves only pulls). A
// blocked table makes ErrBlocked.
func (c *conf) routes(ref string, forPush bool) ([]route, error) {
	r, n := c.find(ref)
	if r == nil {
		return []route{{ref: ref}}, nil
	}
	if r.Blocked {
		return nil, fmt.Errorf("%s: %w (prefix %q)", ref, ErrBlocked, r.Prefix)
	}
	if forPush {
		return []route{{ref: ref, insecure: r.Insecure}}, nil
	}
	rest := ref[n:]
	byDigest := strings.Contains(rest, "@")
	var out []route
	for _, m := range r.Mirrors {
		switch {
		case r.MirrorByDigestOnly && !byDigest,
			m.PullFromMirror == "digest-only" && !byDigest,
			m.PullFromMirror == "tag-only" && byDigest:
			continue
		}
		out = append(out, route{ref: m.Location + rest, insecure: m.Insecure, mirror: true})
	}
	loc := ref
	if r.Location != "" {
		loc = r.Location + rest
	}
	return append(out, route{ref: loc, insecure: r.Insecure}), nil
}

// insecureHost reports whether registries.conf marks host insecure: the
// table host itself matches, or a table or mirror located on host.
func (c *conf) insecureHost(host string) bool {
	if r, _ := c.find(host); r != nil && r.Insecure {
		return true
	}
	for _, r := range c.registries {
		if r.Insecure && r.Location != "" && hostOf(r.Location) == host {
			return true
		}
		for _, m := range r.Mirrors {
			if m.Insecure && hostOf(m.Location) == host {
				return true
			}
		}
	}
	return false
}

func hostOf(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	return host
}
