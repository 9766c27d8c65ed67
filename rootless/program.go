package rootless

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
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
