// Package fusefs is nook's union filesystem: N read-only lower directories
// under one writable upper directory, served over FUSE with the semantics of
// Linux overlayfs mounted with -o userxattr. The layer directories use the
// overlay on-disk format of internal/overlay (whiteouts are character devices
// 0/0, opaque directories carry user.overlay.opaque=y), so kernel overlayfs
// and this server can read the same directories, and every change a
// container makes lands in the upper directory alone.
//
// The server reads the layer directories directly: whiteouts and opaque
// markers are honoured whatever the mount's own xattr setting is.
//
// Speed comes from round trips not made: entries and attributes are cached
// by the kernel for an hour, files are opened and directories listed
// without OPEN or OPENDIR requests (io.go, dirs.go), and memory per file
// is kept to go-fuse's inode plus 16 bytes (node.go).
package fusefs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// XattrMode says whether the mount serves extended attributes.
type XattrMode int

const (
	// XattrsAuto serves xattrs only when some layer directory carries an
	// xattr other than the overlay markers. Without xattrs the kernel stops
	// asking after the first ENOSYS, which saves `ls -l` two round trips per
	// file (security.selinux and system.posix_acl_access are never cached)
	// and saves every write a security.capability lookup. The price: the
	// container cannot set xattrs of its own on such a mount.
	//
	// Deciding costs a walk of every layer (about 0.1 s for 20,000 files,
	// stopping at the first xattr found) unless Options.LayerXattrs answers
	// for the layer: a caller that knows, such as a store that recorded it
	// when unpacking, should answer, or pass XattrsOn or XattrsOff.
	XattrsAuto XattrMode = iota
	// XattrsOn always serves xattrs (user.* and security.capability pass
	// through; the overlay markers stay hidden).
	XattrsOn
	// XattrsOff never serves xattrs.
	XattrsOff
)

// Options configures a union mount.
type Options struct {
	// Logger receives warnings and unexpected host errors; nil discards.
	Logger *slog.Logger
	// Debug logs every FUSE request to Logger at debug level.
	Debug bool
	// FsName is the source column of /proc/mounts (default "nook").
	FsName string
	// Xattrs selects whether xattrs are served; see XattrMode.
	Xattrs XattrMode
	// LayerXattrs, if set, tells XattrsAuto whether the layer directory
	// dir (upper included) carries xattrs other than the overlay markers
	// (user.overlay.*); known false leaves the layer to be scanned.
	LayerXattrs func(dir string) (has, known bool)
	// AllowOther lets users other than the mounter use the mount. When a
	// mount through fusermount3 is refused for it (no user_allow_other in
	// /etc/fuse.conf), Mount retries without it and logs a warning.
	AllowOther bool
	// Timeout is how long the kernel may cache entries and attributes
	// (default one hour). Long timeouts are safe because the layers change
	// only through the mount.
	Timeout time.Duration
	// SquashToRoot reports every file as owned by root (uid and gid 0).
	SquashToRoot bool
	// Volatile skips the fsync that makes each copy-up durable before it
	// is renamed into the upper directory, as overlayfs's "volatile"
	// option does (fuse-overlayfs never syncs there). Appending a byte to
	// a 200 MiB lower file then costs a copy instead of a copy and a disk
	// write, but a host crash may leave an empty or partial copy hiding
	// the lower file: right for containers removed on exit, not for
	// uppers that outlive a crash.
	Volatile bool
}

// Sentinel errors callers may branch on.
var (
	// ErrNoFuse means /dev/fuse cannot be opened: FUSE is unavailable.
	ErrNoFuse = errors.New("/dev/fuse is not usable")
	// ErrBadLayout means the layer, upper or work directories are unusable.
	ErrBadLayout = errors.New("unusable layer directories")
)

// defaultTimeout is the kernel cache lifetime for entries and attributes.
const defaultTimeout = time.Hour

// union is the state shared by every node of one mount.
type union struct {
	// layers holds the layer directories, top first; layers[0] is the
	// upper directory when writable is set.
	layers   []string
	fds      []int // each layer directory open with O_PATH (at.go)
	writable bool
	ldev     []uint64 // st_dev of each layer directory
	work     string   // private directory on the upper's filesystem
	log      *slog.Logger
	squash   bool
	volatile bool          // no fsync of copied-up data
	timeout  time.Duration // kernel cache lifetime of entries and attributes
	umask    uint32        // this process's umask, undone after creating files

	// mu orders changes to the layers: lookups and listings take it
	// shared, anything that creates, removes or copies up takes it alone,
	// so a lookup never sees a copy-up or whiteout half done.
	mu sync.RWMutex

	inoMu sync.Mutex
	devs  map[uint64]uint64 // st_dev -> index mixed into inode numbers
	// origin maps the inode number of an upper copy made by this mount to
	// the number the file had before copy-up, so numbers stay stable.
	origin map[uint64]uint64
	tmpSeq uint64

	// srv is the mount's server, set before it serves.
	srv *fuse.Server
	// reads keeps the descriptors of the files read last; writes, of the
	// upper files written last (in no-open mode no request carries a
	// handle: without it each WRITE would open the file again).
	reads, writes readCache
	// opens counts the OPEN and OPENDIR requests the kernel sent: with
	// no-open support, one of each per mount.
	opens atomic.Uint64
}

func (u *union) upperPath(rel string) lpath { return u.layerPath(0, rel) }

func (u *union) layerPath(layer int, rel string) lpath {
	return lpath{dir: u.fds[layer], base: u.layers[layer], rel: rel}
}

// closeLayers closes the layer directories' descriptors.
func (u *union) closeLayers() {
	for _, fd := range u.fds {
		syscall.Close(fd)
	}
	u.fds = nil
}

// vino turns a layer file's device and inode into the mount's inode number.
func (u *union) vino(st *syscall.Stat_t) uint64 {
	u.inoMu.Lock()
	defer u.inoMu.Unlock()
	ino := u.layerIno(st)
	if o, ok := u.origin[ino]; ok {
		return o
	}
	if ino == 1 || ino == 0 {
		// 1 is the mount's root inode; 0 lets go-fuse pick numbers.
		ino |= 1 << 62
	}
	return ino
}

// recordOrigin makes the upper copy described by st keep inode number ino.
func (u *union) recordOrigin(st *syscall.Stat_t, ino uint64) {
	u.inoMu.Lock()
	defer u.inoMu.Unlock()
	u.origin[u.layerIno(st)] = ino
}

// forgetOrigin drops the mapping of an upper file that is gone, so a new
// file reusing its inode number gets a number of its own.
func (u *union) forgetOrigin(st *syscall.Stat_t) {
	u.inoMu.Lock()
	defer u.inoMu.Unlock()
	delete(u.origin, u.layerIno(st))
}

// layerIno is a layer file's inode number with its device's index mixed
// in: the devices are numbered as first seen. inoMu must be held.
func (u *union) layerIno(st *syscall.Stat_t) uint64 {
	idx, ok := u.devs[st.Dev]
	if !ok {
		idx = uint64(len(u.devs))
		u.devs[st.Dev] = idx
	}
	return st.Ino ^ idx<<56
}

// tmpName returns a fresh name in the work directory.
func (u *union) tmpName() lpath {
	u.inoMu.Lock()
	u.tmpSeq++
	n := u.tmpSeq
	u.inoMu.Unlock()
	return abs(fmt.Sprintf("%s/#nook.%d.%d", u.work, os.Getpid(), n))
}

// Server is a mounted union.
type Server struct {
	srv        *fuse.Server
	u          *union
	root       *rootNode
	mountpoint string
}

// Wait blocks until the mount is unmounted.
func (s *Server) Wait() {
	s.srv.Wait()
	s.u.reads.closeAll()
	s.u.writes.closeAll()
	s.u.closeLayers()
}

// Unmount unmounts the union; Wait returns afterwards.
func (s *Server) Unmount() error {
	if err := s.srv.Unmount(); err != nil {
		return fmt.Errorf("unmounting %s: %w", s.mountpoint, err)
	}
	return nil
}

// Mount serves the union of lowers (top layer first) under upper at
// mountpoint. work must be an empty or nook-owned directory on the same
// filesystem as upper. With upper == "" the mount is read-only.
func Mount(lowers []string, upper, work, mountpoint string, opts Options) (_ *Server, err error) {
	u, err := newUnion(lowers, upper, work, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			u.closeLayers()
		}
	}()
	xattrs, err := u.wantXattrs(opts.Xattrs, opts.LayerXattrs)
	if err != nil {
		return nil, err
	}
	if err := checkDevice("/dev/fuse"); err != nil {
		return nil, err
	}
	fo := u.fuseOptions(opts, xattrs)
	root := &rootNode{u: u}
	if err := root.init(); err != nil {
		return nil, err
	}
	srv, err := fuse.NewServer(&dirFS{gofs.NewNodeFS(root, fo), u}, mountpoint, &fo.MountOptions)
	if err != nil && fo.AllowOther {
		u.log.Warn("mounting with allow_other was refused; mounting for the current user only (add user_allow_other to /etc/fuse.conf to share the mount)",
			"mountpoint", mountpoint, "err", err)
		fo.AllowOther = false
		srv, err = fuse.NewServer(&dirFS{gofs.NewNodeFS(root, fo), u}, mountpoint, &fo.MountOptions)
	}
	if err != nil {
		return nil, fmt.Errorf("mounting union at %s: %w", mountpoint, err)
	}
	u.srv = srv
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		_ = srv.Unmount()
		return nil, fmt.Errorf("waiting for the union at %s: %w", mountpoint, err)
	}
	return &Server{srv: srv, u: u, root: root, mountpoint: mountpoint}, nil
}

func newUnion(lowers []string, upper, work string, opts Options) (_ *union, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &union{
		log:      log,
		squash:   opts.SquashToRoot,
		timeout:  opts.Timeout,
		volatile: opts.Volatile,
		devs:     map[uint64]uint64{},
		origin:   map[uint64]uint64{},
		umask:    readUmask(),
	}
	defer func() {
		if err != nil {
			u.closeLayers()
		}
	}()
	if len(lowers) == 0 && upper == "" {
		return nil, fmt.Errorf("no layers: %w", ErrBadLayout)
	}
	if upper != "" {
		if work == "" {
			return nil, fmt.Errorf("upper directory %s without a work directory: %w", upper, ErrBadLayout)
		}
		u.writable = true
		lowers = append([]string{upper}, lowers...)
	}
	for _, d := range lowers {
		dir, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("resolving layer %s: %w", d, err)
		}
		if fi, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("layer %s: %w: %w", d, ErrBadLayout, err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("layer %s is not a directory: %w", d, ErrBadLayout)
		}
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("opening layer %s: %w: %w", d, ErrBadLayout, err)
		}
		u.layers, u.fds = append(u.layers, dir), append(u.fds, fd)
	}
	if u.timeout <= 0 {
		u.timeout = defaultTimeout
	}
	if u.writable {
		if err := u.initWork(work); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// initWork prepares work/work as overlayfs does, so kernel overlayfs can
// later use the same work directory: it empties it on mount, as we do.
func (u *union) initWork(work string) error {
	abs, err := filepath.Abs(work)
	if err != nil {
		return fmt.Errorf("resolving work directory %s: %w", work, err)
	}
	var ust, wst syscall.Stat_t
	if err := syscall.Stat(u.layers[0], &ust); err != nil {
		return fmt.Errorf("upper directory %s: %w", u.layers[0], err)
	}
	if err := syscall.Stat(abs, &wst); err != nil {
		return fmt.Errorf("work directory %s: %w: %w", work, ErrBadLayout, err)
	}
	if ust.Dev != wst.Dev {
		return fmt.Errorf("work directory %s is not on the upper directory's filesystem: %w", work, ErrBadLayout)
	}
	u.work = abs + "/work"
	// Leftovers of an interrupted copy-up are never visible; drop them.
	if err := os.RemoveAll(u.work); err != nil {
		return fmt.Errorf("cleaning work directory %s: %w", u.work, err)
	}
	if err := os.Mkdir(u.work, 0o700); err != nil {
		return fmt.Errorf("creating work directory %s: %w", u.work, err)
	}
	return nil
}

// readUmask reads the process umask without changing it (Umask() would
// race with other goroutines creating files).
func readUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0o777 // unknown: always fix modes up after creation
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			var m uint32
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%o", &m); err == nil {
				return m
			}
		}
	}
	return 0o777
}

// Request concurrency. go-fuse reads /dev/fuse with blocking read(2)
// calls, from up to GOMAXPROCS reader goroutines. Once every P sits in
// such a read, the Go scheduler takes the Ps back from the blocked threads
// (sysmon retakes a P held in a syscall when no P is idle), wakes threads
// to spin on them, and polls every 20 µs while it does: untarring 20,000
// files made 13 futex and nanosleep calls and 9 context switches per file
// more than fuse-overlayfs' single thread, twice its CPU per request. So
// the requests in flight (readers included) are capped below GOMAXPROCS,
// and a process that serves unions raises GOMAXPROCS to Procs, so that a
// P is always idle: a reader that wakes with a request then keeps its own
// P and the scheduler sleeps. Mount leaves that to its caller: GOMAXPROCS
// is the whole process's.
//
// Two in flight is the least bad of what go-fuse allows. Its two readers
// waiting in read(2) contend for the connection's lock (9 % of the
// server's CPU while untarring 20,000 files here). A cap of one does not
// give fuse-overlayfs' single loop: go-fuse starts a reader whenever none
// is left waiting, which finds no budget and exits, once per request
// (server CPU 3.7 → 5.8 s; fuse-overlayfs 2.7 s). Three in flight with a
// fourth P untarred 5 % slower.

// requestConcurrency is how many requests the server reads or serves at
// once: one per CPU, at least two (so a slow request such as a copy-up
// does not stall the others), at most eight.
func requestConcurrency() int { return min(max(runtime.NumCPU(), 2), 8) }

// requestSlack bounds what go-fuse counts per request beyond MaxWrite: the
// largest request header, a block of alignment and its request struct.
const requestSlack = 64 << 10

// Procs is the GOMAXPROCS a process serving unions wants: one P more than
// the requests a server handles at once, so that a P stays idle while
// every request slot is busy. A caller should raise GOMAXPROCS to it, not
// lower it. One spare P measured as fast as two; each P costs memory (its
// span caches: 100 bytes per file of a walk).
func Procs() int { return requestConcurrency() + 1 }

// overlayPrefix names the xattrs overlayfs keeps for itself.
const overlayPrefix = "user.overlay."

func (u *union) fuseOptions(opts Options, xattrs bool) *gofs.Options {
	t := u.timeout
	name := opts.FsName
	if name == "" {
		name = "nook"
	}
	fo := &gofs.Options{
		EntryTimeout:    &t,
		AttrTimeout:     &t,
		NegativeTimeout: &t,
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: 1},
	}
	mo := &fo.MountOptions
	mo.FsName = name
	mo.Name = "nook"
	mo.AllowOther = opts.AllowOther
	mo.DisableXAttrs = !xattrs
	// Every request buffer go-fuse keeps is MaxWrite big, and it keeps
	// four or five: at 1 MiB they were a third of the server's memory for
	// 20,000 files. Writes at 512 KiB are 10 % slower than at 1 MiB and
	// 8 % faster than at 256 KiB.
	mo.MaxWrite = 512 << 10
	mo.MaxInflightRequestBytes = requestConcurrency() * (mo.MaxWrite + requestSlack)
	// Listings without OPENDIR (see dirFS); symlink targets cached by the
	// kernel, as they only change through the mount.
	mo.ExtraCapabilities = fuse.CAP_NO_OPENDIR_SUPPORT
	mo.EnableSymlinkCaching = true
	mo.DirectMount = true
	// The kernel checks permissions from the modes we report; the server
	// itself acts as (namespace) root and would otherwise let anyone in.
	mo.Options = []string{"default_permissions"}
	if os.Geteuid() == 0 {
		// Setuid binaries in images must work; device nodes never exist.
		mo.Options = append(mo.Options, "suid", "nodev")
		mo.DirectMountFlags = syscall.MS_NODEV
	}
	if opts.Debug {
		mo.Debug = true
		mo.Logger = slog.NewLogLogger(u.log.Handler(), slog.LevelDebug)
	}
	if !u.writable {
		mo.Options = append(mo.Options, "ro")
	}
	return fo
}
