package seccomp

import "golang.org/x/sys/unix"

const (
	auditArch = unix.AUDIT_ARCH_X86_64
	// foreignBit marks x32 calls, which share the native arch value.
	foreignBit = 0x40000000
)
