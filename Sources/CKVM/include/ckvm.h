// C shim for <linux/kvm.h>: Swift cannot import the function-like ioctl macros
// (KVM_RUN and friends) nor call the variadic ioctl(2), so this header exports the
// request numbers as constants and offers fixed-signature wrappers.
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <sys/eventfd.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stddef.h>

// System ioctls (on /dev/kvm)
static const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
static const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
static const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
static const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
static const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;
static const unsigned long CKVM_GET_MSR_INDEX_LIST = KVM_GET_MSR_INDEX_LIST;

// VM ioctls
static const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
static const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
static const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
static const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
static const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
static const unsigned long CKVM_CREATE_PIT2 = KVM_CREATE_PIT2;
static const unsigned long CKVM_IRQ_LINE = KVM_IRQ_LINE;
static const unsigned long CKVM_GET_IRQCHIP = KVM_GET_IRQCHIP;
static const unsigned long CKVM_SET_IRQCHIP = KVM_SET_IRQCHIP;
static const unsigned long CKVM_GET_PIT2 = KVM_GET_PIT2;
static const unsigned long CKVM_SET_PIT2 = KVM_SET_PIT2;
static const unsigned long CKVM_GET_CLOCK = KVM_GET_CLOCK;
static const unsigned long CKVM_SET_CLOCK = KVM_SET_CLOCK;
static const unsigned long CKVM_GET_DIRTY_LOG = KVM_GET_DIRTY_LOG;
static const unsigned long CKVM_CLEAR_DIRTY_LOG = KVM_CLEAR_DIRTY_LOG;
static const unsigned long CKVM_IOEVENTFD = KVM_IOEVENTFD;
static const unsigned long CKVM_IRQFD = KVM_IRQFD;
// The ioeventfd flags are shifts of an enum, which Swift does not import as constants.
static const uint32_t CKVM_IOEVENTFD_FLAG_DATAMATCH = KVM_IOEVENTFD_FLAG_DATAMATCH;
static const uint32_t CKVM_IOEVENTFD_FLAG_PIO = KVM_IOEVENTFD_FLAG_PIO;
static const uint32_t CKVM_IOEVENTFD_FLAG_DEASSIGN = KVM_IOEVENTFD_FLAG_DEASSIGN;
static const unsigned long CKVM_ENABLE_CAP = KVM_ENABLE_CAP;

// vCPU ioctls
static const unsigned long CKVM_RUN = KVM_RUN;
static const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
static const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
static const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
static const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
static const unsigned long CKVM_GET_FPU = KVM_GET_FPU;
static const unsigned long CKVM_SET_FPU = KVM_SET_FPU;
static const unsigned long CKVM_GET_XSAVE = KVM_GET_XSAVE;
static const unsigned long CKVM_GET_XSAVE2 = KVM_GET_XSAVE2;
static const unsigned long CKVM_SET_XSAVE = KVM_SET_XSAVE;
static const unsigned long CKVM_GET_XCRS = KVM_GET_XCRS;
static const unsigned long CKVM_SET_XCRS = KVM_SET_XCRS;
static const unsigned long CKVM_GET_DEBUGREGS = KVM_GET_DEBUGREGS;
static const unsigned long CKVM_SET_DEBUGREGS = KVM_SET_DEBUGREGS;
static const unsigned long CKVM_GET_LAPIC = KVM_GET_LAPIC;
static const unsigned long CKVM_SET_LAPIC = KVM_SET_LAPIC;
static const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
static const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;
static const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
static const unsigned long CKVM_GET_CPUID2 = KVM_GET_CPUID2;
static const unsigned long CKVM_GET_VCPU_EVENTS = KVM_GET_VCPU_EVENTS;
static const unsigned long CKVM_SET_VCPU_EVENTS = KVM_SET_VCPU_EVENTS;
static const unsigned long CKVM_GET_MP_STATE = KVM_GET_MP_STATE;
static const unsigned long CKVM_SET_MP_STATE = KVM_SET_MP_STATE;
static const unsigned long CKVM_GET_TSC_KHZ = KVM_GET_TSC_KHZ;
static const unsigned long CKVM_SET_TSC_KHZ = KVM_SET_TSC_KHZ;
static const unsigned long CKVM_KVMCLOCK_CTRL = KVM_KVMCLOCK_CTRL;
static const unsigned long CKVM_TRANSLATE = KVM_TRANSLATE;

/// ioctl(2) with a pointer argument; returns -1 and sets errno on failure.
int ckvm_ioctl_ptr(int fd, unsigned long request, void *arg);
/// ioctl(2) with an integer argument.
int ckvm_ioctl_val(int fd, unsigned long request, unsigned long arg);
/// The host CPU's own CPUID leaf (the instruction, not KVM): EAX, EBX, ECX, EDX into `regs`.
void ckvm_host_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]);

// kvm_run's exit payload is an anonymous union, which Swift imports awkwardly;
// these accessors name the fields the run loop needs.
struct ckvm_io_exit {
    uint8_t direction;  // KVM_EXIT_IO_IN or KVM_EXIT_IO_OUT
    uint8_t size;       // 1, 2 or 4
    uint16_t port;
    uint32_t count;
    uint64_t data_offset;  // from the start of kvm_run
};
struct ckvm_io_exit ckvm_run_io(const struct kvm_run *run);

struct ckvm_mmio_exit {
    uint64_t phys_addr;
    uint8_t *data;
    uint32_t len;
    uint8_t is_write;
};
struct ckvm_mmio_exit ckvm_run_mmio(struct kvm_run *run);

uint64_t ckvm_run_hw_failure_reason(const struct kvm_run *run);
uint32_t ckvm_run_internal_suberror(const struct kvm_run *run);
uint32_t ckvm_run_internal_ndata(const struct kvm_run *run);
uint64_t ckvm_run_internal_data(const struct kvm_run *run, uint32_t i);
uint32_t ckvm_run_system_event_type(const struct kvm_run *run);
uint32_t ckvm_run_fail_entry_reason(const struct kvm_run *run);

// Flexible-array structures: allocate with room for n entries.
struct kvm_msrs *ckvm_msrs_alloc(uint32_t n);
struct kvm_msr_entry *ckvm_msrs_entries(struct kvm_msrs *msrs);
struct kvm_msr_list *ckvm_msr_list_alloc(uint32_t n);
uint32_t *ckvm_msr_list_indices(struct kvm_msr_list *list);
struct kvm_cpuid2 *ckvm_cpuid2_alloc(uint32_t n);
struct kvm_cpuid_entry2 *ckvm_cpuid2_entries(struct kvm_cpuid2 *cpuid);

// userfaultfd(2): postcopy migration's missing-page faults (Sources/KVM/UserFault.swift).
static const unsigned long CKVM_USERFAULTFD_IOC_NEW = USERFAULTFD_IOC_NEW;
static const unsigned long CKVM_UFFDIO_API = UFFDIO_API;
static const unsigned long CKVM_UFFDIO_REGISTER = UFFDIO_REGISTER;
static const unsigned long CKVM_UFFDIO_UNREGISTER = UFFDIO_UNREGISTER;
static const unsigned long CKVM_UFFDIO_COPY = UFFDIO_COPY;
static const unsigned long CKVM_UFFDIO_WAKE = UFFDIO_WAKE;
static const uint64_t CKVM_UFFD_API = UFFD_API;
static const uint64_t CKVM_UFFDIO_REGISTER_MODE_MISSING = UFFDIO_REGISTER_MODE_MISSING;
static const uint8_t CKVM_UFFD_EVENT_PAGEFAULT = UFFD_EVENT_PAGEFAULT;

/// A new non-blocking, close-on-exec userfaultfd: through /dev/userfaultfd when it exists,
/// else the userfaultfd(2) system call. -1 with errno on failure.
int ckvm_userfaultfd_open(void);
/// Reads one message from a userfaultfd: 1 and the faulting address for a page fault, 0 when
/// nothing is pending or the message is another event, -1 with errno on failure.
int ckvm_userfaultfd_read_fault(int fd, uint64_t *address);


#endif
