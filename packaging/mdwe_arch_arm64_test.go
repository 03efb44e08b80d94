package packaging

import "golang.org/x/sys/unix"

// auditArch is the seccomp architecture of this build (AUDIT_ARCH_AARCH64).
const auditArch = unix.AUDIT_ARCH_AARCH64
