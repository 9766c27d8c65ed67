package rootless

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"nook/internal/seccomp"
)

// The exec program: an exec's last steps as a list of system calls that
// the entry point (unshare_amd64.s) runs in the joined child, so that no
// Go runtime starts between the join and the exec (2–3 ms of the exec
// stage). Everything the Go stage decides inside the container (the user,
// the command's path, the environment, the filter) is decided before,
// from outside, by BuildExecProgram, in a process of the container's user
// namespace that can see its root (the container's shim). The calls are
// execPayload's, in its order; the Go stage stays for what needs Go or a
// descriptor made inside (a terminal, single-id mode's listener) and for
// every lookup that failed, where it gives the exact error.
//
// Layout of the blob, all little-endian u64 (the entry point reads it
// after a u64 length on the sync socket; a length of 0 means no program,
// the Go stage starts):
//
//	0        nrelocs
//	8        nops
//	16       relocs[nrelocs]: offsets of u64 slots in the blob that hold
//	         offsets in the blob: the entry point adds the blob's address
//	…        ops[nops]: {nr, flags, a0, a1, a2, a3, a4, a5}, 64 bytes
//	…        data: strings, arrays, structs the arguments point at
//
// An op whose return is an errno (-4095..-1) fails unless flags has
// opIgnore: the entry point writes joinProgramFailed, a pad byte, the
// op's index (u16) and the errno (u32) to the sync socket and exits
// ExitSetupFailed. The last op is execve: the socket is close-on-exec,
// so the caller reads EOF when it succeeds.

const (
	opIgnore          = 1   // the op's failure is not one (setsid)
	opSize            = 64  // bytes of one op
	joinProgramFailed = 'P' // followed by a pad, the op (u16), the errno (u32)
	programFailedLen  = 8
)

// ExecProgram is an exec's system calls and, for each, what its failure
// means: the message it starts with and the exit status.
type ExecProgram struct {
	Blob []byte
	Ops  []ProgramOp
	ops  []byte // Ops' JSON, not decoded yet (UnmarshalBinary)
}

// ProgramOp says what an op of an ExecProgram does.
type ProgramOp struct {
	What string `json:"what"`
	// Code is the exit status of its failure: ExitSetupFailed when 0, as
	// execFailureCode says with Exec.
	Code int  `json:"code,omitempty"`
	Exec bool `json:"exec,omitempty"`
}

// MarshalBinary encodes p to be sent: the length of the ops' JSON (u32),
// the ops' JSON, the blob.
func (p *ExecProgram) MarshalBinary() ([]byte, error) {
	ops, err := json.Marshal(p.Ops)
	if err != nil {
		return nil, err
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(ops)+len(p.Blob)), uint32(len(ops)))
	return append(append(b, ops...), p.Blob...), nil
}

// UnmarshalBinary decodes what MarshalBinary encoded. The ops are decoded
// only when one fails.
func (p *ExecProgram) UnmarshalBinary(b []byte) error {
	if len(b) < 4 || uint64(binary.BigEndian.Uint32(b)) > uint64(len(b)-4) {
		return fmt.Errorf("exec program of %d bytes: %w", len(b), io.ErrUnexpectedEOF)
	}
	n := 4 + int(binary.BigEndian.Uint32(b))
	p.Ops, p.ops, p.Blob = nil, b[4:n], b[n:]
	return nil
}

// failure is the error of op i failing with errno.
func (p *ExecProgram) failure(i int, errno unix.Errno) error {
	if p.Ops == nil && p.ops != nil {
		if err := json.Unmarshal(p.ops, &p.Ops); err != nil {
			return fmt.Errorf("exec program: op %d failed: %w (its ops: %w)", i, errno, err)
		}
	}
	if i >= len(p.Ops) {
		return fmt.Errorf("exec program: op %d of %d failed: %w", i, len(p.Ops), errno)
	}
	op := p.Ops[i]
	code := op.Code
	switch {
	case op.Exec:
		code = execFailureCode(errno)
	case code == 0:
		code = ExitSetupFailed
	}
	return &InitError{Code: code, Msg: fmt.Sprintf("%s: %v", op.What, errno)}
}

// arg is an op's argument: a value, or an offset in the program's data
// (ptr), which the entry point turns into an address.
type arg struct {
	v   uint64
	ptr bool
}

func val(v uint64) arg   { return arg{v: v} }
func ptr(off uint64) arg { return arg{v: off, ptr: true} }
func null() arg          { return arg{} }
func intArg(v int) arg   { return arg{v: uint64(int64(v))} }

type progOp struct {
	nr    uintptr
	flags uint64
	args  [6]arg
	info  ProgramOp
}

// program builds an ExecProgram.
type program struct {
	ops  []progOp
	data []byte
	ptrs []uint64 // offsets in data of slots that hold data offsets
}

// call appends the system call nr with args.
func (b *program) call(info ProgramOp, flags uint64, nr uintptr, args ...arg) {
	op := progOp{nr: nr, flags: flags, info: info}
	copy(op.args[:], args)
	b.ops = append(b.ops, op)
}

// bytes appends p to the data, 8-byte aligned, and returns its offset.
func (b *program) bytes(p []byte) uint64 {
	for len(b.data)%8 != 0 {
		b.data = append(b.data, 0)
	}
	off := uint64(len(b.data))
	b.data = append(b.data, p...)
	return off
}

// cstring appends s with its NUL.
func (b *program) cstring(s string) uint64 { return b.bytes(append([]byte(s), 0)) }

// pointers appends an array of pointers to the data at offs, with a NULL
// after them when null.
func (b *program) pointers(offs []uint64, null bool) uint64 {
	n := len(offs)
	if null {
		n++
	}
	at := b.bytes(make([]byte, 8*n))
	for i, o := range offs {
		b.pointer(at+uint64(8*i), o)
	}
	return at
}

// pointer makes the data's u64 at slot point at the data at off.
func (b *program) pointer(slot, off uint64) {
	binary.LittleEndian.PutUint64(b.data[slot:], off)
	b.ptrs = append(b.ptrs, slot)
}

// strv appends a NULL-terminated array of C strings (argv, envp).
func (b *program) strv(ss []string) uint64 {
	offs := make([]uint64, len(ss))
	for i, s := range ss {
		offs[i] = b.cstring(s)
	}
	return b.pointers(offs, true)
}

// encode lays the program out (see the top of this file).
func (b *program) encode() *ExecProgram {
	nrel := len(b.ptrs)
	for _, op := range b.ops {
		for _, a := range op.args {
			if a.ptr {
				nrel++
			}
		}
	}
	opsAt := 16 + 8*nrel
	dataAt := opsAt + opSize*len(b.ops)
	blob := make([]byte, dataAt+len(b.data))
	le := binary.LittleEndian
	le.PutUint64(blob, uint64(nrel))
	le.PutUint64(blob[8:], uint64(len(b.ops)))
	rel := 16
	reloc := func(slot int) {
		le.PutUint64(blob[rel:], uint64(slot))
		rel += 8
	}
	prog := &ExecProgram{Blob: blob}
	for i, op := range b.ops {
		at := opsAt + opSize*i
		le.PutUint64(blob[at:], uint64(op.nr))
		le.PutUint64(blob[at+8:], op.flags)
		for j, a := range op.args {
			slot := at + 16 + 8*j
			v := a.v
			if a.ptr {
				v += uint64(dataAt)
				reloc(slot)
			}
			le.PutUint64(blob[slot:], v)
		}
		prog.Ops = append(prog.Ops, op.info)
	}
	copy(blob[dataAt:], b.data)
	for _, p := range b.ptrs {
		slot := dataAt + int(p)
		le.PutUint64(blob[slot:], le.Uint64(blob[slot:])+uint64(dataAt))
		reloc(slot)
	}
	return prog
}

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
}

// Build is BuildExecProgram with the filters compiled before.
func (e *ExecPrograms) Build(pid int, p InitProcess) (*ExecProgram, error) {
	key := p.Seccomp + "\x00" + strings.Join(p.keptCaps(), ",")
	return buildExecProgram(pid, p, func() ([]byte, error) {
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
	return buildExecProgram(pid, p, func() ([]byte, error) { return filterBytes(p) })
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

func buildExecProgram(pid int, p InitProcess, compile func() ([]byte, error)) (*ExecProgram, error) {
	proc := fmt.Sprintf("/proc/%d", pid)
	if p.Terminal {
		return nil, fmt.Errorf("%w: a terminal", ErrNoProgram)
	}
	single, err := singleIDIn(proc)
	if err != nil {
		return nil, err
	}
	if p.FakeIDs != FakeIDsNone && single {
		return nil, fmt.Errorf("%w: faked ids", ErrNoProgram)
	}
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
	return execOps(p, pr, filter, setgroupsDeniedIn(proc)), nil
}

// execOps is execPayload's work after preparePayload, for a process
// without a terminal or a listener, as system calls; filter is the
// seccomp filter's instructions (sock_filter), nil for none.
func execOps(p InitProcess, pr payload, filter []byte, noSetgroups bool) *ExecProgram {
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
	last := lastCap()
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
	if !noSetgroups {
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
