#ifndef CSYSTEM_H
#define CSYSTEM_H

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

#endif
