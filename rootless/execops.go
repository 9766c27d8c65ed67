package rootless

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"nook/internal/seccomp"
)

// An exec's program made from outside the container (program.go says
// what it is): its process resolved as the exec stage resolves it inside,
// then execPayload's steps as system calls.

// ErrNoProgram is an exec that the program cannot do: the Go stage does
// it.
var ErrNoProgram = errors.New("the exec needs the Go stage")

// ExecPrograms builds the exec programs of one container's processes,
// compiling each seccomp filter once: the exec processes of a container
// mostly share its profile and capabilities, and compiling Docker's
// profile takes longer than the rest.
type ExecPrograms struct {
	mu      sync.Mutex
	filters map[string][]byte
	facts   map[int]execFacts // by pid 1's pid
}

// Build is BuildExecProgram with the filters compiled before, and the
// container's facts read once.
func (e *ExecPrograms) Build(pid int, p InitProcess) (*ExecProgram, error) {
	e.mu.Lock()
	f, ok := e.facts[pid]
	e.mu.Unlock()
	if !ok {
		var err error
		if f, err = factsOf(pid); err != nil {
			return nil, err
		}
		e.mu.Lock()
		if e.facts == nil {
			e.facts = map[int]execFacts{}
		}
		e.facts[pid] = f
		e.mu.Unlock()
	}
	key := p.Seccomp + "\x00" + strings.Join(p.keptCaps(), ",")
	return buildExecProgram(pid, p, f, func() ([]byte, error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		if f, ok := e.filters[key]; ok {
			return f, nil
		}
		f, err := filterBytes(p)
		if err != nil {
			return nil, err
		}
		if e.filters == nil {
			e.filters = map[string][]byte{}
		}
		e.filters[key] = f
		return f, nil
	})
}

// BuildExecProgram resolves p in the container whose pid 1 is pid, as the
// exec stage would inside (preparePayload), and returns its exec as a
// program. The caller is in the container's user namespace with its
// capabilities (the shim), so that it sees the files as the stage would.
// Any lookup that fails, and a process that needs the Go stage, gives an
// error: the caller then starts the Go stage, which reports it exactly.
func BuildExecProgram(pid int, p InitProcess) (*ExecProgram, error) {
	f, err := factsOf(pid)
	if err != nil {
		return nil, err
	}
	return buildExecProgram(pid, p, f, func() ([]byte, error) { return filterBytes(p) })
}

// execFacts are what an exec program depends on in a container that stay
// while its pid 1 runs: read once per container by ExecPrograms.
type execFacts struct {
	single      bool // its user namespace maps one id (SingleIDNamespace)
	noSetgroups bool // setgroups is denied in it
	lastCap     int  // the kernel's
}

// factsOf reads the facts of the container whose pid 1 is pid.
func factsOf(pid int) (execFacts, error) {
	proc := fmt.Sprintf("/proc/%d", pid)
	single, err := singleIDIn(proc)
	if err != nil {
		return execFacts{}, err
	}
	return execFacts{single: single, noSetgroups: setgroupsDeniedIn(proc), lastCap: lastCap()}, nil
}

// filterBytes is p's filter (compileFilter) as the kernel reads it, nil
// for none.
func filterBytes(p InitProcess) ([]byte, error) {
	filter, err := compileFilter(p, false, false)
	if err != nil || filter == nil {
		return nil, err
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&filter[0])), len(filter)*int(unsafe.Sizeof(filter[0]))), nil
}

func buildExecProgram(pid int, p InitProcess, f execFacts, compile func() ([]byte, error)) (*ExecProgram, error) {
	proc := fmt.Sprintf("/proc/%d", pid)
	if p.Terminal {
		return nil, fmt.Errorf("%w: a terminal", ErrNoProgram)
	}
	if p.FakeIDs != FakeIDsNone && f.single {
		return nil, fmt.Errorf("%w: faked ids", ErrNoProgram)
	}
	// Nothing is faked in a namespace of many ids: said here, so that
	// preparePayload does not read the uid map again to find it out.
	p.FakeIDs = FakeIDsNone
	root, err := openRootAt(proc + "/root")
	if err != nil {
		return nil, err
	}
	defer root.Close()
	pr, _, err := preparePayload(p, root)
	if err == nil {
		err = root.err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoProgram, err)
	}
	filter, err := compile()
	if err != nil {
		return nil, err
	}
	return execOps(p, pr, filter, f), nil
}

// execOps is execPayload's work after preparePayload, for a process
// without a terminal or a listener, as system calls; filter is the
// seccomp filter's instructions (sock_filter), nil for none.
func execOps(p InitProcess, pr payload, filter []byte, f execFacts) *ExecProgram {
	var b program
	u := pr.user
	// Dispatch's: the socket reports until the exec, not after.
	b.call(ProgramOp{What: "closing the sync socket on exec"}, 0, unix.SYS_FCNTL,
		val(syncFD), val(unix.F_SETFD), val(unix.FD_CLOEXEC))
	b.call(ProgramOp{What: "setsid"}, opIgnore, unix.SYS_SETSID)
	// No signal blocked, as runc leaves it (the stage's Go runtime
	// unblocks its own; the rest stay as nook found them).
	b.call(ProgramOp{What: "unblocking signals"}, 0, unix.SYS_RT_SIGPROCMASK,
		val(unix.SIG_SETMASK), ptr(b.bytes(make([]byte, 8))), null(), val(8))
	// dropCapabilities
	last := f.lastCap
	for _, c := range capDropsUpTo(p.keptCaps(), last) {
		b.call(ProgramOp{What: stepDropCap(c)}, 0, unix.SYS_PRCTL,
			val(unix.PR_CAPBSET_DROP), intArg(c))
	}
	b.call(ProgramOp{What: stepAmbient}, 0, unix.SYS_PRCTL,
		val(unix.PR_CAP_AMBIENT), val(unix.PR_CAP_AMBIENT_CLEAR_ALL), val(0), val(0), val(0))
	// setns gave the joined process every capability of the namespace,
	// permitted and effective, none inheritable: the set stays, the
	// inheritable cleared as dropCapabilities does it.
	full := uint64(1)<<(last+1) - 1
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(full), Permitted: uint32(full)},
		{Effective: uint32(full >> 32), Permitted: uint32(full >> 32)},
	}
	b.call(ProgramOp{What: stepInheritable}, 0, unix.SYS_CAPSET,
		ptr(b.bytes(structBytes(&hdr))), ptr(b.bytes(structBytes(&data))))
	if p.NoNewPrivileges {
		b.call(ProgramOp{What: stepNoNewPrivs}, 0, unix.SYS_PRCTL,
			val(unix.PR_SET_NO_NEW_PRIVS), val(1), val(0), val(0), val(0))
	}
	// confine: while the namespace's CAP_SYS_ADMIN is still held.
	if filter != nil {
		insns := b.bytes(filter)
		var fprog [16]byte // struct sock_fprog: u16 len, padding, the filter
		binary.LittleEndian.PutUint16(fprog[:], uint16(len(filter)/int(unsafe.Sizeof(unix.SockFilter{}))))
		at := b.bytes(fprog[:])
		b.pointer(at+8, insns)
		b.call(ProgramOp{What: seccomp.Installing}, 0, unix.SYS_SECCOMP,
			val(unix.SECCOMP_SET_MODE_FILTER), val(0), ptr(at))
	}
	// becomeUser
	if !f.noSetgroups {
		groups := make([]byte, 0, 4*len(u.Sgids))
		for _, g := range u.Sgids {
			groups = binary.LittleEndian.AppendUint32(groups, uint32(g))
		}
		list := null()
		if len(groups) > 0 {
			list = ptr(b.bytes(groups))
		}
		b.call(ProgramOp{What: stepGroups(u.Uid)}, 0, unix.SYS_SETGROUPS,
			intArg(len(u.Sgids)), list)
	}
	b.call(ProgramOp{What: stepGID(u.Gid)}, 0, unix.SYS_SETRESGID,
		intArg(u.Gid), intArg(u.Gid), intArg(u.Gid))
	b.call(ProgramOp{What: stepUID(u.Uid)}, 0, unix.SYS_SETRESUID,
		intArg(u.Uid), intArg(u.Uid), intArg(u.Uid))
	if p.Cwd != "" {
		b.call(ProgramOp{What: stepCwd(p.Cwd), Code: ExitCannotExec}, 0, unix.SYS_CHDIR,
			ptr(b.cstring(p.Cwd)))
	}
	b.call(ProgramOp{What: stepStart(p.Args[0]), Exec: true}, 0, unix.SYS_EXECVE,
		ptr(b.cstring(pr.path)), ptr(b.strv(p.Args)), ptr(b.strv(pr.env)))
	return b.encode()
}

// The steps of a payload's start as their failures name them: the exec
// stage's calls (execPayload) and the exec program's ops say the same.
const (
	stepAmbient     = "clearing ambient capabilities"
	stepInheritable = "clearing inheritable capabilities"
	stepNoNewPrivs  = "setting no_new_privs"
)

func stepDropCap(c int) string        { return fmt.Sprintf("dropping capability %d", c) }
func stepGroups(uid int) string       { return fmt.Sprintf("setting the groups of uid %d", uid) }
func stepGID(gid int) string          { return fmt.Sprintf("setting gid %d", gid) }
func stepUID(uid int) string          { return fmt.Sprintf("setting uid %d", uid) }
func stepCwd(cwd string) string       { return "working directory " + cwd }
func stepStart(command string) string { return "starting " + command }

// structBytes is the memory of *v, a struct of fixed-size fields.
func structBytes[T any](v *T) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))...)
}

// singleIDIn reports whether the user namespace of the process whose /proc
// directory is proc maps one uid only (SingleIDNamespace).
func singleIDIn(proc string) (bool, error) {
	b, err := os.ReadFile(proc + "/uid_map")
	if err != nil {
		return false, err
	}
	return mapsOneID(string(b)), nil
}

// rootAt is a container's root seen from outside: names resolve in it as
// in a chroot (RESOLVE_IN_ROOT), absolute symbolic links included. A
// lookup that fails other than for a missing file is kept in err: the
// stage inside might have seen the file.
type rootAt struct {
	fd  int
	err error
}

func openRootAt(path string) (*rootAt, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the container's root %s: %w", path, err)
	}
	return &rootAt{fd: fd}, nil
}

func (r *rootAt) Close() { unix.Close(r.fd) }

func (r *rootAt) open(name string, flags uint64) (*os.File, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	rel := strings.TrimLeft(name, "/")
	if rel == "" {
		rel = "."
	}
	fd, err := unix.Openat2(r.fd, rel, &how)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) && r.err == nil {
			r.err = fmt.Errorf("looking up %s in the container: %w", name, err)
		}
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// Open opens name to read. Non-blocking: a FIFO in its place must not
// hold the caller (the shim) for ever; a regular file reads as usual.
func (r *rootAt) Open(name string) (*os.File, error) {
	return r.open(name, unix.O_RDONLY|unix.O_NONBLOCK)
}

func (r *rootAt) Stat(name string) (os.FileInfo, error) {
	f, err := r.open(name, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}
