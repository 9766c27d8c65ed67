package container

// Docker's run options that widen or narrow what the payload may do:
// capabilities (--cap-add, --cap-drop, --privileged), supplementary
// groups (--group-add) and host devices (--device).

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"nook/internal/seccomp"
	"nook/rootless"
)

// ErrDevice is a --device nook cannot give the container.
var ErrDevice = errors.New("unusable device")

// Privileges are these options, in a container's Config as in
// CreateOptions (through HostOptions).
type Privileges struct {
	CapAdd  []string `json:"capAdd,omitempty"`
	CapDrop []string `json:"capDrop,omitempty"`
	// Privileged keeps every capability of the user namespace and lifts
	// the seccomp filter; it reaches nothing of the host's the user
	// cannot reach already.
	Privileged bool            `json:"privileged,omitempty"`
	GroupAdd   []string        `json:"groupAdd,omitempty"` // names in the container's /etc/group, or numbers
	Devices    []DeviceMapping `json:"devices,omitempty"`
}

// DeviceMapping is one --device, Docker's shape.
type DeviceMapping struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"`
}

// check refuses capability names nook does not know, at create.
func (p Privileges) check() error {
	_, err := rootless.Capabilities(p.CapAdd, p.CapDrop, p.Privileged)
	return err
}

// caps are the capabilities the container's processes keep; privileged
// (exec --privileged) keeps them all.
func (p Privileges) caps(privileged bool) []string {
	caps, err := rootless.Capabilities(p.CapAdd, p.CapDrop, p.Privileged || privileged)
	if err != nil { // checked at create
		return nil
	}
	return caps
}

// seccompSpec is the payload's seccomp setting: none when privileged, as
// Docker has it.
func (c *Config) seccompSpec() string {
	if c.Privileged {
		return seccomp.Unconfined
	}
	return c.Seccomp
}

// ParseDevice reads --device HOST[:CONTAINER[:PERMS]]. HOST must be a
// device node this user can open: a user namespace cannot create one,
// only bind it. PERMS must allow reading and writing: a read-only mount
// does not stop writes to a device, and only a device cgroup (beyond an
// unprivileged user) could.
func ParseDevice(s string) (DeviceMapping, error) {
	parts := strings.Split(s, ":")
	d := DeviceMapping{PathOnHost: parts[0], CgroupPermissions: "rwm"}
	switch {
	case len(parts) == 3:
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
	case len(parts) == 2 && isDevicePerms(parts[1]):
		d.CgroupPermissions = parts[1]
	case len(parts) == 2:
		d.PathInContainer = parts[1]
	case len(parts) > 3:
		return d, fmt.Errorf("--device %q: want HOST[:CONTAINER[:PERMS]]", s)
	}
	d.PathInContainer = cmp.Or(d.PathInContainer, d.PathOnHost)
	if !isDevicePerms(d.CgroupPermissions) || !path.IsAbs(d.PathOnHost) || !path.IsAbs(d.PathInContainer) {
		return d, fmt.Errorf("--device %q: want absolute paths HOST[:CONTAINER[:PERMS]], PERMS of r, w and m", s)
	}
	fi, err := os.Stat(d.PathOnHost)
	if err != nil {
		return d, fmt.Errorf("--device %s: %w", d.PathOnHost, err)
	}
	if fi.Mode()&os.ModeDevice == 0 {
		return d, fmt.Errorf("%w: --device %s is not a device node", ErrDevice, d.PathOnHost)
	}
	if !strings.Contains(d.CgroupPermissions, "r") || !strings.Contains(d.CgroupPermissions, "w") {
		return d, fmt.Errorf("%w: --device %q: nook cannot restrict a device to %q without a device cgroup; give rw or rwm", ErrDevice, s, d.CgroupPermissions)
	}
	if err := unix.Access(d.PathOnHost, unix.R_OK|unix.W_OK); err != nil {
		return d, fmt.Errorf("%w: --device %s: this user cannot open it (%v); nook binds devices, it cannot grant them", ErrDevice, d.PathOnHost, err)
	}
	return d, nil
}

// isDevicePerms reports whether s is Docker's device permissions: some of
// r, w, m.
func isDevicePerms(s string) bool {
	return s != "" && strings.Trim(s, "rwm") == ""
}

// deviceMount binds d into the container.
func deviceMount(d DeviceMapping) rootless.Mount {
	return rootless.Mount{Type: "bind", Source: d.PathOnHost, Target: d.PathInContainer}
}
