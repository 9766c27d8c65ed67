package rootless

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPrepareMountpoints checks what the shim creates ahead of init: the
// union's share of the mount points and the working directory, links
// resolved inside the root; nothing on init's /proc, /sys or /dev, nothing
// below another mount, nothing for a bind whose source is missing, and an
// existing file left as it is.
func TestPrepareMountpoints(t *testing.T) {
	root, host := t.TempDir(), t.TempDir()
	for _, d := range []string{"etc", "dev", "run", "var"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../run", filepath.Join(root, "var/run")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/resolv.conf"), []byte("image's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file, dir := filepath.Join(host, "file"), filepath.Join(host, "dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bind := func(src, target string) Mount { return Mount{Type: "bind", Source: src, Target: target} }
	cfg := InitConfig{Rootfs: root, Process: InitProcess{Cwd: "/work/dir"}, Mounts: []Mount{
		bind(file, "/etc/hosts"),
		bind(file, "/etc/resolv.conf"),
		bind(dir, "/data"),
		bind(dir, "/data/sub"),
		{Type: "tmpfs", Source: "tmpfs", Target: "/dev/shm"},
		{Type: "tmpfs", Source: "tmpfs", Target: "/proc/x"},
		bind(dir, "/var/run/vol"),
		bind(filepath.Join(host, "missing"), "/gone"),
	}}
	PrepareMountpoints(cfg)
	for p, want := range map[string]string{
		"etc/hosts": "file",
		"data":      "dir",
		"run/vol":   "dir", // through the image's link
		"work/dir":  "dir",
		"data/sub":  "", // below /data: init makes it in the volume
		"dev/shm":   "", // on init's /dev
		"proc":      "",
		"gone":      "",
	} {
		fi, err := os.Lstat(filepath.Join(root, p))
		got := ""
		if err == nil {
			got = "file"
			if fi.IsDir() {
				got = "dir"
			}
		}
		if got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/resolv.conf")); err != nil || string(b) != "image's\n" {
		t.Errorf("the image's resolv.conf became %q (%v)", b, err)
	}
	// Init's working directory below a volume is the volume's.
	cfg.Process.Cwd = "/data/in"
	PrepareMountpoints(cfg)
	if _, err := os.Lstat(filepath.Join(root, "data/in")); err == nil {
		t.Error("created the working directory below a volume in the union")
	}
}
