#include "go_asm.h"
#include "textflag.h"

// _rt0_nook_unshare is the entry point of a program linked with
// -ldflags=-E=_rt0_nook_unshare (nook-stages): the self-unshare of
// unshare.go and the join of join.go, both done while the process has one
// thread yet, which unshare(2) of a user namespace and setns(2) of a user
// or mount namespace require. The kernel starts it with argc at 0(SP),
// then argv, a NULL, envp and a NULL.
//
// If one variable is _NOOK_SETNS=<decimal n | joinFork | namespaces>, it
// makes the process non-dumpable; with namespaces (CLONE_NEW* bits,
// joinNamespaceMask) it calls setns once on fd ExtraFilesFD, a pidfd,
// with them; else it calls setns on its fds ExtraFilesFD … +n-1 in that
// order (the user namespace first); it closes them, renames the variable
// .NOOK_SETNS; with joinFork it then clones a child with CLONE_PARENT (a
// sibling: the caller's child, in the joined pid namespace), writes
// joinOK and the child's pid (4 bytes, little-endian) to the sync socket
// (syncFD) and exits 0 — the child goes on; without joinFork it writes
// joinOK and its own pid and goes on itself. On failure it writes
// joinFailed and the errno and exits ExitSetupFailed. With joinRun too,
// the child runs an exec program (program.go) instead of Go, if the
// caller sends one.
//
// Else, if one variable is _NOOK_UNSHARE=<decimal flags>, it calls
// unshare(flags), renames the variable .NOOK_UNSHARE for Dispatch to see
// that it ran, and writes unshareOK to the sync socket; or it writes
// unshareFailed and the errno and exits ExitSetupFailed.
//
// Then, or with neither variable, it jumps to Go's own entry with the
// stack as it found it. The constants it shares with Go come from
// go_asm.h; the prefixes must spell setnsEnv and unshareEnv and "=".
TEXT _rt0_nook_unshare(SB),NOSPLIT|NOFRAME,$0
	LEAQ	setnsPrefix<>(SB), R9
	MOVQ	$const_setnsPrefixLen, R10
	CALL	findenv<>(SB)
	TESTQ	R8, R8
	JNZ	setns
	LEAQ	unsharePrefix<>(SB), R9
	MOVQ	$const_unsharePrefixLen, R10
	CALL	findenv<>(SB)
	TESTQ	R8, R8
	JZ	start			// neither: a plain start

	MOVQ	R8, R12			// past the name, for the renaming
	MOVQ	$272, AX		// SYS_unshare(DI)
	SYSCALL
	LEAQ	reply<>(SB), SI
	TESTQ	AX, AX
	JNZ	unshareFailed
	MOVB	$'.', -const_unsharePrefixLen(R12)	// _NOOK_UNSHARE → .NOOK_UNSHARE
	MOVB	$const_unshareOK, 0(SI)
	MOVQ	$1, DX
	CALL	report<>(SB)
	JMP	start

unshareFailed:
	MOVB	$const_unshareFailed, 0(SI)
	JMP	failed

setns:
	MOVB	$'.', -const_setnsPrefixLen(R8)	// _NOOK_SETNS → .NOOK_SETNS
	MOVQ	DI, R12			// n | joinFork
	MOVQ	$157, AX		// SYS_prctl(PR_SET_DUMPABLE, 0)
	MOVQ	$4, DI
	XORQ	SI, SI
	SYSCALL
	MOVQ	$const_ExtraFilesFD, R13	// the next fd
	MOVQ	R12, SI
	ANDQ	$const_joinNamespaceMask, SI
	JZ	perNamespace
	MOVQ	R13, DI
	MOVQ	$308, AX		// SYS_setns(pidfd, namespaces): all at once
	SYSCALL
	TESTQ	AX, AX
	JNZ	setnsFailed
	MOVQ	R13, DI
	MOVQ	$3, AX			// SYS_close(pidfd)
	SYSCALL
	JMP	joined

perNamespace:
	MOVQ	R12, R14
	ANDQ	$const_joinCountMask, R14	// how many are left

join:
	TESTQ	R14, R14
	JZ	joined
	MOVQ	R13, DI
	XORQ	SI, SI
	MOVQ	$308, AX		// SYS_setns(fd, 0)
	SYSCALL
	TESTQ	AX, AX
	JNZ	setnsFailed
	MOVQ	R13, DI
	MOVQ	$3, AX			// SYS_close(fd)
	SYSCALL
	INCQ	R13
	DECQ	R14
	JMP	join

joined:
	TESTQ	$const_joinFork, R12
	JZ	self
	MOVQ	$0x8011, DI		// CLONE_PARENT|SIGCHLD
	XORQ	SI, SI
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	MOVQ	$56, AX			// SYS_clone: a fork, as a sibling
	SYSCALL
	TESTQ	AX, AX
	JZ	child
	JS	setnsFailed
	MOVQ	AX, R12			// the child's pid, as we see it
	CALL	joinReport<>(SB)
	XORQ	DI, DI
	MOVQ	$231, AX		// SYS_exit_group(0)
	SYSCALL

child:
	TESTQ	$const_joinRun, R12
	JZ	start			// Go starts here
	JMP	program<>(SB)

self:
	MOVQ	$39, AX			// SYS_getpid
	SYSCALL
	MOVQ	AX, R12
	CALL	joinReport<>(SB)
	JMP	start

setnsFailed:
	LEAQ	reply<>(SB), SI
	MOVB	$const_joinFailed, 0(SI)

failed:					// SI = reply, its first byte set; AX = -errno
	NEGQ	AX
	MOVB	AX, 1(SI)		// the errno
	MOVQ	$2, DX
	CALL	report<>(SB)
	MOVQ	$const_ExitSetupFailed, DI
	MOVQ	$231, AX		// SYS_exit_group(DI)
	SYSCALL

start:
	JMP	_rt0_amd64_linux(SB)

// program runs an exec program (program.go) in the joined child: it
// reads a u64 length from the sync socket (0: no program, Go starts),
// maps that many bytes and reads the blob into them, adds the blob's
// address to each slot the relocations name, then makes each op's system
// call. An op that fails writes joinProgramFailed, the op's index and the
// errno, and exits ExitSetupFailed; the last op, execve, does not return.
// Registers: R12 the length, R13 the blob, R14 the ops left, R15 the
// op's index, BX the op (SYSCALL keeps all of them).
TEXT program<>(SB),NOSPLIT|NOFRAME,$0
	LEAQ	reply<>(SB), SI
	MOVQ	$8, DX
	CALL	readfull<>(SB)
	MOVQ	reply<>(SB), R12
	TESTQ	R12, R12
	JZ	gostart
	XORQ	DI, DI
	MOVQ	R12, SI
	MOVQ	$3, DX			// PROT_READ|PROT_WRITE
	MOVQ	$0x22, R10		// MAP_PRIVATE|MAP_ANONYMOUS
	MOVQ	$-1, R8
	XORQ	R9, R9
	MOVQ	$9, AX			// SYS_mmap
	SYSCALL
	CMPQ	AX, $-4095
	JCC	exit			// an errno (unsigned ≥ -4095)
	MOVQ	AX, R13
	MOVQ	R13, SI
	MOVQ	R12, DX
	CALL	readfull<>(SB)

	MOVQ	0(R13), CX		// relocations
	LEAQ	16(R13), BX
reloc:
	TESTQ	CX, CX
	JZ	ops
	MOVQ	0(BX), AX
	ADDQ	R13, (R13)(AX*1)
	ADDQ	$8, BX
	DECQ	CX
	JMP	reloc

ops:					// BX = &ops[0]
	MOVQ	8(R13), R14
	XORQ	R15, R15
op:
	CMPQ	R15, R14
	JCC	exit			// past the last (execve returned nothing)
	MOVQ	16(BX), DI
	MOVQ	24(BX), SI
	MOVQ	32(BX), DX
	MOVQ	40(BX), R10
	MOVQ	48(BX), R8
	MOVQ	56(BX), R9
	MOVQ	0(BX), AX
	SYSCALL
	CMPQ	AX, $-4095
	JCS	next			// not an errno
	TESTQ	$const_opIgnore, 8(BX)
	JZ	opFailed
next:
	ADDQ	$const_opSize, BX
	INCQ	R15
	JMP	op

opFailed:
	NEGQ	AX
	LEAQ	reply<>(SB), SI
	MOVB	$const_joinProgramFailed, 0(SI)
	MOVW	R15, 2(SI)
	MOVL	AX, 4(SI)
	MOVQ	$const_programFailedLen, DX
	CALL	report<>(SB)
exit:
	MOVQ	$const_ExitSetupFailed, DI
	MOVQ	$231, AX		// SYS_exit_group(DI)
	SYSCALL

gostart:
	JMP	_rt0_amd64_linux(SB)

// readfull reads DX bytes from the sync socket into SI, or exits
// ExitSetupFailed at its end or an error.
TEXT readfull<>(SB),NOSPLIT|NOFRAME,$0
more:
	TESTQ	DX, DX
	JZ	done
	MOVQ	$const_syncFD, DI
	XORQ	AX, AX			// SYS_read(DI, SI, DX)
	SYSCALL
	TESTQ	AX, AX
	JLE	fail
	ADDQ	AX, SI
	SUBQ	AX, DX
	JMP	more
done:
	RET
fail:
	MOVQ	$const_ExitSetupFailed, DI
	MOVQ	$231, AX		// SYS_exit_group(DI)
	SYSCALL

// findenv looks for the variable whose name and "=" are the R10 bytes at
// R9; it returns R8 = the address past the "=" (0: none) and DI = the
// decimal number there. The caller's return address is at 0(SP), so argc
// is at 8(SP).
TEXT findenv<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	8(SP), CX
	LEAQ	24(SP)(CX*8), BX	// &envp[0]

next:
	MOVQ	0(BX), SI
	TESTQ	SI, SI
	JZ	none
	ADDQ	$8, BX
	MOVQ	R9, DI
	MOVQ	R10, CX

cmp:
	MOVB	0(SI), AX
	CMPB	AX, 0(DI)
	JNE	next			// differs, or the string ended
	INCQ	SI
	INCQ	DI
	DECQ	CX
	JNZ	cmp

	MOVQ	SI, R8
	XORQ	DI, DI

digit:
	MOVBQZX	0(SI), AX
	SUBQ	$'0', AX
	CMPQ	AX, $9
	JA	found			// not a digit (unsigned): the end
	IMULQ	$10, DI
	ADDQ	AX, DI
	INCQ	SI
	JMP	digit

found:
	RET

none:
	XORQ	R8, R8
	RET

// joinReport writes joinOK and the pid in R12 to the sync socket.
TEXT joinReport<>(SB),NOSPLIT|NOFRAME,$0
	LEAQ	reply<>(SB), SI
	MOVB	$const_joinOK, 0(SI)
	MOVL	R12, 1(SI)
	MOVQ	$5, DX
	JMP	report<>(SB)

// report writes the DX bytes at SI to the sync socket.
TEXT report<>(SB),NOSPLIT|NOFRAME,$0
	MOVQ	$const_syncFD, DI
	MOVQ	$1, AX			// SYS_write(DI, SI, DX)
	SYSCALL
	RET

DATA unsharePrefix<>+0(SB)/8, $"_NOOK_UN"
DATA unsharePrefix<>+8(SB)/8, $"SHARE=\x00\x00"
GLOBL unsharePrefix<>(SB), RODATA, $16

DATA setnsPrefix<>+0(SB)/8, $"_NOOK_SE"
DATA setnsPrefix<>+8(SB)/8, $"TNS=\x00\x00\x00\x00"
GLOBL setnsPrefix<>(SB), RODATA, $16

GLOBL reply<>(SB), NOPTR, $8
