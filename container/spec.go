package container

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// MountSpec is a volume or tmpfs of a container.
type MountSpec struct {
	Type     string   `json:"type"`             // bind, volume or tmpfs
	Source   string   `json:"source,omitempty"` // absolute host path for bind, name for volume
	Target   string   `json:"target"`           // absolute path in the container
	ReadOnly bool     `json:"readOnly,omitempty"`
	Options  []string `json:"options,omitempty"` // tmpfs: size=, mode=, noexec...
	// NoCopy keeps an empty volume empty: it is not filled from the image.
	NoCopy bool `json:"noCopy,omitempty"`
	// Anonymous: a volume made for this container under a random name
	// (-v /path, an image's VOLUME), which rm -v and --rm remove with it.
	Anonymous bool `json:"anonymous,omitempty"`
	// populate is set on a volume turned into its bind (volumeBind).
	populate bool
}

// ParseVolume parses -v HOST:CONTAINER[:OPTIONS] (options ro, rw, z, Z,
// and propagation modes, the last ones accepted and ignored; nocopy). The
// source is a host path, absolute or relative to the working directory
// when it starts with "." as Docker ≥ 23 reads it, or else a volume name.
// A container path alone is an anonymous volume.
func ParseVolume(s string) (MountSpec, error) {
	parts := strings.Split(s, ":")
	if len(parts) == 1 && path.IsAbs(s) {
		m := MountSpec{Type: "volume", Target: s, Anonymous: true}
		return m, checkTarget(s, m)
	}
	if len(parts) < 2 || len(parts) > 3 {
		return MountSpec{}, fmt.Errorf("volume %q: want HOST-PATH:CONTAINER-PATH[:ro]", s)
	}
	m := MountSpec{Type: "bind", Source: parts[0], Target: parts[1]}
	if !filepath.IsAbs(m.Source) {
		// Docker (≥ 23) reads a source starting with "." as a host path
		// relative to the working directory, any other as a volume name.
		if !strings.HasPrefix(m.Source, ".") {
			m.Type = "volume"
			if err := CheckVolumeName(m.Source); err != nil {
				return m, fmt.Errorf("volume %q: %w", s, err)
			}
		} else {
			abs, err := filepath.Abs(m.Source)
			if err != nil {
				return m, fmt.Errorf("volume %q: %w", s, err)
			}
			m.Source = abs
		}
	}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro", "readonly":
				m.ReadOnly = true
			case "nocopy":
				m.NoCopy = true
			case "rw", "z", "Z", "private", "rprivate", "shared", "rshared", "slave", "rslave", "":
			default:
				return m, fmt.Errorf("volume %q: unknown option %q", s, o)
			}
		}
	}
	return m, checkTarget(s, m)
}

// ParseTmpfs parses --tmpfs PATH[:OPTIONS].
func ParseTmpfs(s string) (MountSpec, error) {
	target, opts, _ := strings.Cut(s, ":")
	m := MountSpec{Type: "tmpfs", Target: target, Options: []string{"nosuid", "nodev"}}
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			if o == "ro" {
				m.ReadOnly = true
				continue
			}
			m.Options = append(m.Options, o)
		}
	}
	return m, checkTarget(s, m)
}

// ParseMount parses --mount type=bind|volume|tmpfs,source=…,target=…[,readonly]
// [,tmpfs-size=…][,tmpfs-mode=…], a CSV line as Docker reads it.
func ParseMount(s string) (MountSpec, error) {
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return MountSpec{}, fmt.Errorf("mount %q: %w", s, err)
	}
	m := MountSpec{Type: "volume"}
	for _, f := range fields {
		k, v, hasValue := strings.Cut(f, "=")
		switch strings.ToLower(k) {
		case "type":
			m.Type = v
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			m.ReadOnly = !hasValue || v == "1" || v == "true"
		case "tmpfs-size":
			m.Options = append(m.Options, "size="+v)
		case "tmpfs-mode":
			if _, err := strconv.ParseUint(v, 8, 32); err != nil {
				return m, fmt.Errorf("mount %q: tmpfs-mode %q is not octal", s, v)
			}
			m.Options = append(m.Options, "mode="+v)
		case "volume-nocopy":
			m.NoCopy = !hasValue || v == "1" || v == "true"
		case "bind-propagation", "consistency", "z", "Z":
		default:
			return m, fmt.Errorf("mount %q: unknown key %q", s, k)
		}
	}
	switch m.Type {
	case "bind":
		if m.Source == "" {
			return m, fmt.Errorf("mount %q: bind needs a source, a host path", s)
		}
		// As Docker ≥ 23: a relative source is relative to the working directory.
		abs, err := filepath.Abs(m.Source)
		if err != nil {
			return m, fmt.Errorf("mount %q: %w", s, err)
		}
		m.Source = abs
	case "volume":
		if m.Source == "" {
			m.Anonymous = true
		} else if err := CheckVolumeName(m.Source); err != nil {
			return m, fmt.Errorf("mount %q: %w", s, err)
		}
	case "tmpfs":
		if m.Source != "" {
			return m, fmt.Errorf("mount %q: tmpfs takes no source", s)
		}
		m.Options = append([]string{"nosuid", "nodev"}, m.Options...)
	default:
		return m, fmt.Errorf("mount %q: type %q is not supported (bind, volume, tmpfs)", s, m.Type)
	}
	return m, checkTarget(s, m)
}

func checkTarget(s string, m MountSpec) error {
	if !path.IsAbs(m.Target) {
		return fmt.Errorf("mount %q: container path %q is not absolute", s, m.Target)
	}
	if path.Clean(m.Target) == "/" {
		return fmt.Errorf("mount %q: cannot mount over /", s)
	}
	if err := rootless.CheckProcMount(m.Target); err != nil {
		return fmt.Errorf("mount %q: %w", s, err)
	}
	return nil
}

// ParseEnvFile reads Docker's --env-file format: one KEY=VALUE or KEY per
// line, taken literally (no quotes, no expansion); blank lines and lines
// starting with # are skipped; leading spaces of the key are dropped.
func ParseEnvFile(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeftFunc(sc.Text(), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		k, _, _ := strings.Cut(line, "=")
		if k == "" || strings.ContainsFunc(k, unicode.IsSpace) {
			return nil, fmt.Errorf("line %d: variable %q contains whitespace or is empty", n, k)
		}
		if !strings.Contains(line, "=") {
			line = strings.TrimRightFunc(line, unicode.IsSpace)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading env file: %w", err)
	}
	return out, nil
}

// ParseSignal parses a signal name (KILL, SIGKILL, sigkill) or number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal %q", s)
}
