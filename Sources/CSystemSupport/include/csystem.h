#ifndef CSYSTEM_H
#define CSYSTEM_H

#include <stdint.h>

// The thread calls Swift's Glibc module does not import (they need _GNU_SOURCE or are macros).

/// Installs a handler for `sig` that does nothing and does not set SA_RESTART,
/// so a blocked system call (KVM_RUN) returns EINTR when the signal arrives.
int csystem_install_kick_handler(int sig);
/// Sends `sig` to one thread of this process.
int csystem_thread_kill(unsigned long thread, int sig);
/// Names a thread (shown by ps/top); names longer than 15 bytes are cut.
int csystem_thread_setname(unsigned long thread, const char *name);
/// The calling thread's kernel id (as QEMU shows in `info cpus`).
int csystem_gettid(void);

// File calls behind _GNU_SOURCE.

/// A close-on-exec memfd (memfd_create(2)); -1 with errno on failure.
int csystem_memfd_create(const char *name);
/// Makes `length` bytes at `offset` of a file read as zero and frees their blocks
/// (fallocate PUNCH_HOLE | KEEP_SIZE); -1 with errno where the file system cannot.
int csystem_punch_hole(int fd, int64_t offset, int64_t length);

#endif
