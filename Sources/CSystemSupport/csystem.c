#define _GNU_SOURCE
#include "csystem.h"
#include <signal.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <fcntl.h>

static void kick_handler(int sig) { (void)sig; }

int csystem_install_kick_handler(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = kick_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must come back with EINTR
    return sigaction(sig, &sa, NULL);
}

int csystem_thread_kill(unsigned long thread, int sig) { return pthread_kill((pthread_t)thread, sig); }
int csystem_gettid(void) { return (int)syscall(SYS_gettid); }

int csystem_thread_setname(unsigned long thread, const char *name) {
    char buf[16];
    strncpy(buf, name, 15);
    buf[15] = 0;
    return pthread_setname_np((pthread_t)thread, buf);
}

int csystem_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int csystem_punch_hole(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}
