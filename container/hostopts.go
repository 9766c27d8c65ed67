package container

// Docker's run options that shape the container's host side: extra
// /etc/hosts lines, the size of /dev/shm, resource limits of the
// payload's process (rlimits).

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"nook/rootless"
)

// HostOptions are these options, in a container's Config as in
// CreateOptions.
type HostOptions struct {
	ExtraHosts []string `json:"extraHosts,omitempty"` // NAME:IP, added to /etc/hosts
	ShmSize    int64    `json:"shmSize,omitempty"`    // bytes of /dev/shm; 0 is 64 MiB
	Ulimits    []Ulimit `json:"ulimits,omitempty"`
	// NoNewPrivileges keeps every process of the container from gaining
	// privileges through exec (setuid, file capabilities).
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	Privileges
	RestartPolicy RestartPolicy `json:"restartPolicy,omitzero"` // restart.go
	Limits        Limits        `json:"limits,omitzero"`        // limits.go
}

// ApplySecurityOpt reads one --security-opt other than seccomp's
// (securitySpec reads those) into h: no-new-privileges ([:=]true|false).
// Asking to lift a confinement nook does not impose (apparmor=unconfined,
// label=disable) is accepted as it is; anything else is refused, saying so.
func (h *HostOptions) ApplySecurityOpt(s string) error {
	key, val, hasVal := strings.Cut(s, "=")
	if !hasVal {
		key, val, hasVal = strings.Cut(s, ":")
	}
	switch {
	case key == "no-new-privileges" && (!hasVal || val == "true"):
		h.NoNewPrivileges = true
	case key == "no-new-privileges" && val == "false":
		h.NoNewPrivileges = false
	case s == "apparmor=unconfined", s == "label=disable", s == "label:disable":
		// nook applies no AppArmor profile or SELinux label.
	default:
		return fmt.Errorf("--security-opt %q: %w: nook knows seccomp=PROFILE.json, seccomp=unconfined and no-new-privileges; it applies no AppArmor or SELinux confinement to change", s, ErrSecurityOpt)
	}
	return nil
}

// hostGateway is --add-host's stand-in for the host's address.
const hostGateway = "host-gateway"

// ParseAddHost reads --add-host's NAME:IP (or NAME=IP, Docker ≥ 25; an
// IPv6 address may be bracketed); IP may be host-gateway.
func ParseAddHost(s string) (string, error) {
	name, ip, ok := strings.Cut(s, "=")
	if !ok {
		name, ip, ok = strings.Cut(s, ":")
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if !ok || name == "" || ip == "" || strings.ContainsAny(name, " \t\n#") {
		return "", fmt.Errorf("--add-host %q: want NAME:IP", s)
	}
	if ip != hostGateway {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return "", fmt.Errorf("--add-host %q: %q is no IP address", s, ip)
		}
		ip = a.String()
	}
	return name + ":" + ip, nil
}

// resolveExtraHosts gives host-gateway its meaning: the host, which on
// the host's network is the loopback address.
func resolveExtraHosts(hosts []string, network string) ([]string, error) {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		name, ip, _ := strings.Cut(h, ":")
		if ip == hostGateway {
			if network != "host" {
				return nil, fmt.Errorf("--add-host %s: host-gateway needs --network host, where it is 127.0.0.1", h)
			}
			ip = "127.0.0.1"
		}
		out = append(out, name+":"+ip)
	}
	return out, nil
}

// hostsLines are /etc/hosts's lines for the extra hosts.
func hostsLines(hosts []string) string {
	var b strings.Builder
	for _, h := range hosts {
		name, ip, _ := strings.Cut(h, ":")
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	return b.String()
}

// defaultShmSize is /dev/shm's size without --shm-size, as Docker's.
const defaultShmSize = 64 << 20

// shmMount is /dev/shm of size bytes, over init's default one.
func shmMount(size int64) rootless.Mount {
	return rootless.Mount{Type: "tmpfs", Source: "shm", Target: "/dev/shm",
		Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=" + strconv.FormatInt(size, 10)}}
}

// ParseShmSize reads --shm-size: a size in bytes with an optional unit
// (b, k, m, g; 1024-based, as Docker reads it).
func ParseShmSize(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--shm-size %q: want a positive size such as 64m", s)
	}
	return n, nil
}

// Ulimit is one --ulimit: an rlimit of the payload, Docker's shape.
type Ulimit struct {
	Name string `json:"Name"`
	Soft int64  `json:"Soft"`
	Hard int64  `json:"Hard"`
}

// rlimits are the resources --ulimit names, as Docker names them.
var rlimits = map[string]int{
	"as": unix.RLIMIT_AS, "core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
}

// ParseUlimit reads --ulimit NAME=SOFT[:HARD]; -1 is unlimited.
func ParseUlimit(s string) (Ulimit, error) {
	name, val, ok := strings.Cut(s, "=")
	if _, known := rlimits[name]; !ok || !known {
		return Ulimit{}, fmt.Errorf("--ulimit %q: want NAME=SOFT[:HARD] with NAME one of nofile, nproc, core, stack, …", s)
	}
	softS, hardS, two := strings.Cut(val, ":")
	soft, err1 := strconv.ParseInt(softS, 10, 64)
	hard, err2 := soft, error(nil)
	if two {
		hard, err2 = strconv.ParseInt(hardS, 10, 64)
	}
	if err := errors.Join(err1, err2); err != nil || soft < -1 || hard < -1 {
		return Ulimit{}, fmt.Errorf("--ulimit %q: limits are numbers, -1 for unlimited", s)
	}
	if hard != -1 && (soft == -1 || soft > hard) {
		return Ulimit{}, fmt.Errorf("--ulimit %q: the soft limit exceeds the hard one", s)
	}
	return Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}

// rlimit is u as setrlimit takes it.
func (u Ulimit) rlimit() (int, unix.Rlimit) {
	v := func(n int64) uint64 {
		if n < 0 {
			return unix.RLIM_INFINITY
		}
		return uint64(n)
	}
	return rlimits[u.Name], unix.Rlimit{Cur: v(u.Soft), Max: v(u.Hard)}
}
