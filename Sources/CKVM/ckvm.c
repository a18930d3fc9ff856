#define _GNU_SOURCE
#include "ckvm.h"
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <cpuid.h>

int ckvm_ioctl_ptr(int fd, unsigned long request, void *arg) { return ioctl(fd, request, arg); }
int ckvm_ioctl_val(int fd, unsigned long request, unsigned long arg) { return ioctl(fd, request, arg); }

void ckvm_host_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]) {
    __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
}

struct ckvm_io_exit ckvm_run_io(const struct kvm_run *run) {
    struct ckvm_io_exit e = { run->io.direction, run->io.size, run->io.port, run->io.count, run->io.data_offset };
    return e;
}

struct ckvm_mmio_exit ckvm_run_mmio(struct kvm_run *run) {
    struct ckvm_mmio_exit e = { run->mmio.phys_addr, run->mmio.data, run->mmio.len, run->mmio.is_write };
    return e;
}

uint64_t ckvm_run_hw_failure_reason(const struct kvm_run *run) { return run->hw.hardware_exit_reason; }
uint32_t ckvm_run_internal_suberror(const struct kvm_run *run) { return run->internal.suberror; }
uint32_t ckvm_run_internal_ndata(const struct kvm_run *run) { return run->internal.ndata; }
uint64_t ckvm_run_internal_data(const struct kvm_run *run, uint32_t i) {
    return i < 16 && i < run->internal.ndata ? run->internal.data[i] : 0;
}
uint32_t ckvm_run_system_event_type(const struct kvm_run *run) { return run->system_event.type; }
uint32_t ckvm_run_fail_entry_reason(const struct kvm_run *run) {
    return (uint32_t)run->fail_entry.hardware_entry_failure_reason;
}

struct kvm_msrs *ckvm_msrs_alloc(uint32_t n) {
    struct kvm_msrs *m = calloc(1, sizeof(struct kvm_msrs) + n * sizeof(struct kvm_msr_entry));
    if (m) m->nmsrs = n;
    return m;
}
struct kvm_msr_entry *ckvm_msrs_entries(struct kvm_msrs *msrs) { return msrs->entries; }

struct kvm_msr_list *ckvm_msr_list_alloc(uint32_t n) {
    struct kvm_msr_list *l = calloc(1, sizeof(struct kvm_msr_list) + n * sizeof(uint32_t));
    if (l) l->nmsrs = n;
    return l;
}
uint32_t *ckvm_msr_list_indices(struct kvm_msr_list *list) { return list->indices; }

struct kvm_cpuid2 *ckvm_cpuid2_alloc(uint32_t n) {
    struct kvm_cpuid2 *c = calloc(1, sizeof(struct kvm_cpuid2) + n * sizeof(struct kvm_cpuid_entry2));
    if (c) c->nent = n;
    return c;
}
struct kvm_cpuid_entry2 *ckvm_cpuid2_entries(struct kvm_cpuid2 *cpuid) { return cpuid->entries; }


int ckvm_userfaultfd_open(void) {
    int device = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (device >= 0) {
        int fd = ioctl(device, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        int saved = errno;
        close(device);
        if (fd >= 0) return fd;
        errno = saved;
    }
    return (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
}

int ckvm_userfaultfd_read_fault(int fd, uint64_t *address) {
    struct uffd_msg msg;
    for (;;) {
        ssize_t n = read(fd, &msg, sizeof msg);
        if (n == (ssize_t)sizeof msg) break;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 0;
        if (n >= 0) errno = EIO;
        return -1;
    }
    if (msg.event != UFFD_EVENT_PAGEFAULT) return 0;
    *address = msg.arg.pagefault.address;
    return 1;
}

