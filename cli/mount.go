package cli

import (
	"errors"
	"fmt"
	"strings"

	"nook/fusefs"
	"nook/mountd"
)

// MountCmd is `nook mount`: the union filesystem alone, with the command
// line of fuse-overlayfs so either can be a container engine's
// mount_program.
type MountCmd struct {
	Options    []string `short:"o" sep:"none" placeholder:"OPT[,OPT...]" help:"Mount options: lowerdir=A:B (top layer first), upperdir=U, workdir=W, fsname=N, squash_to_root, xattrs=auto|on|off, allow_other, volatile (or fsync=0: copy-ups are not synced to disk); other fuse-overlayfs options are accepted and ignored."`
	Foreground bool     `short:"f" help:"Stay in the foreground; unmount on SIGTERM or SIGINT."`
	Debug      bool     `short:"d" help:"Log every FUSE request (implies -f)."`
	Mountpoint string   `arg:"" type:"existingdir" help:"Where to mount."`
}

// mountSpec is the parsed -o options.
type mountSpec struct {
	cfg     mountd.Config
	ignored []string
}

// splitOptions splits a -o value at commas not escaped with a backslash,
// as fuse-overlayfs does.
func splitOptions(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

func parseMountOptions(values []string) (mountSpec, error) {
	sp := mountSpec{cfg: mountd.Config{AllowOther: true}}
	for _, v := range values {
		for _, o := range splitOptions(v) {
			key, val, _ := strings.Cut(o, "=")
			switch key {
			case "":
			case "lowerdir":
				for _, l := range strings.Split(val, ":") {
					if l != "" {
						sp.cfg.Lowers = append(sp.cfg.Lowers, l)
					}
				}
			case "upperdir":
				sp.cfg.Upper = val
			case "workdir":
				sp.cfg.Work = val
			case "fsname":
				sp.cfg.FsName = val
			case "squash_to_root":
				sp.cfg.SquashToRoot = true
			case "allow_other":
				sp.cfg.AllowOther = true
			case "xattrs":
				m, ok := map[string]fusefs.XattrMode{"auto": fusefs.XattrsAuto, "on": fusefs.XattrsOn, "off": fusefs.XattrsOff}[val]
				if !ok {
					return sp, fmt.Errorf("mount option xattrs=%q: want auto, on or off", val)
				}
				sp.cfg.Xattrs = m
			case "noxattrs":
				if val != "0" {
					sp.cfg.Xattrs = fusefs.XattrsOff
				}
			case "volatile":
				sp.cfg.Volatile = true
			case "fsync":
				// fuse-overlayfs's fsync=0 skips syncs it would otherwise
				// make; nook's only sync of its own is a copy-up's.
				sp.cfg.Volatile = val == "0"
			case "uidmapping", "gidmapping", "squash_to_uid", "squash_to_gid":
				return sp, fmt.Errorf("mount option %s is not supported: run nook mount inside the user namespace instead", key)
			default:
				// fuse-overlayfs tuning and kernel options nook does not need:
				// noacl, threaded, fast_ino, writeback,
				// default_permissions, suid, dev, rw, context=...
				sp.ignored = append(sp.ignored, o)
			}
		}
	}
	if len(sp.cfg.Lowers) == 0 {
		return sp, errors.New("mount options need lowerdir=DIR[:DIR...]")
	}
	if (sp.cfg.Upper == "") != (sp.cfg.Work == "") {
		return sp, errors.New("mount options upperdir and workdir go together")
	}
	return sp, nil
}

// Run mounts the union. Without -f it daemonizes as fuse-overlayfs does:
// the server runs on in its own session (mountd.Start) and this process
// exits 0 only once the mount is ready.
func (c *MountCmd) Run(g *Globals) error {
	sp, err := parseMountOptions(c.Options)
	if err != nil {
		return err
	}
	if len(sp.ignored) > 0 {
		g.Log.Debug("ignoring mount options", "options", sp.ignored)
	}
	sp.cfg.Mountpoint = c.Mountpoint
	sp.cfg.Debug = c.Debug
	if c.Foreground || c.Debug {
		return mountd.Serve(sp.cfg, g.Log)
	}
	_, err = mountd.Start(sp.cfg, g.Stderr)
	return err
}
