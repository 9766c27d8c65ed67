#include "go_asm.h"
#include "textflag.h"

// _rt0_nook_unshare is the entry point of a program linked with
// -ldflags=-E=_rt0_nook_unshare (nook-stages): the self-unshare of
// unshare.go. The kernel starts it with argc at 0(SP), then argv, a NULL,
// envp and a NULL. If one variable is _NOOK_UNSHARE=<decimal flags>, it
// calls unshare(flags) — the process has one thread yet —, renames the
// variable .NOOK_UNSHARE for Dispatch to see that it ran, and writes
// unshareOK to the sync socket (syncFD); or it writes unshareFailed and the
// errno and exits ExitSetupFailed. Then, or with no such variable, it jumps to Go's
// own entry with the stack as it found it. The constants it shares with
// Go come from go_asm.h; unsharePrefix must spell unshareEnv and "=".
TEXT _rt0_nook_unshare(SB),NOSPLIT|NOFRAME,$0
	MOVQ	0(SP), CX
	LEAQ	16(SP)(CX*8), BX	// &envp[0]

next:
	MOVQ	0(BX), SI
	TESTQ	SI, SI
	JZ	start			// no _NOOK_UNSHARE: a plain start
	ADDQ	$8, BX
	LEAQ	unsharePrefix<>(SB), DI
	MOVQ	$const_unsharePrefixLen, CX

cmp:
	MOVB	0(SI), AX
	CMPB	AX, 0(DI)
	JNE	next			// differs, or the string ended
	INCQ	SI
	INCQ	DI
	DECQ	CX
	JNZ	cmp

	MOVQ	SI, R8			// past the name, for the renaming
	XORQ	DI, DI			// the flags, from decimal digits

digit:
	MOVBQZX	0(SI), AX
	SUBQ	$'0', AX
	CMPQ	AX, $9
	JA	unshare			// not a digit (unsigned): the end
	IMULQ	$10, DI
	ADDQ	AX, DI
	INCQ	SI
	JMP	digit

unshare:
	MOVQ	$272, AX		// SYS_unshare(DI)
	SYSCALL
	LEAQ	unshareReply<>(SB), SI
	TESTQ	AX, AX
	JNZ	failed
	MOVB	$'.', -const_unsharePrefixLen(R8)	// _NOOK_UNSHARE → .NOOK_UNSHARE
	MOVB	$const_unshareOK, 0(SI)
	MOVQ	$1, DX
	MOVQ	$const_syncFD, DI
	MOVQ	$1, AX			// SYS_write(DI, SI, DX)
	SYSCALL
	JMP	start

failed:
	NEGQ	AX
	MOVB	$const_unshareFailed, 0(SI)
	MOVB	AX, 1(SI)		// the errno
	MOVQ	$2, DX
	MOVQ	$const_syncFD, DI
	MOVQ	$1, AX
	SYSCALL
	MOVQ	$const_ExitSetupFailed, DI
	MOVQ	$231, AX		// SYS_exit_group(DI)
	SYSCALL

start:
	JMP	_rt0_amd64_linux(SB)

DATA unsharePrefix<>+0(SB)/8, $"_NOOK_UN"
DATA unsharePrefix<>+8(SB)/8, $"SHARE=\x00\x00"
GLOBL unsharePrefix<>(SB), RODATA, $16

GLOBL unshareReply<>(SB), NOPTR, $8
