/*
 * ciommufd.h: the subset of the iommufd vDevice TSM uAPI (and the VFIO cdev bind) that TSMKit
 * needs, written from docs/spec/kernel-uapi.md sections 2.1, 2.3 and 4.1 (which cite Linux
 * include/uapi/linux/iommufd.h in intel-lab-lkp/linux @8953284a and kamalca/linux @58252340,
 * and the 2026-06-02 "op + tvm_arch" reply) and from Linux include/uapi/linux/vfio.h
 * (VFIO_DEVICE_BIND_IOMMUFD with the token field added in 2025-07, commit "vfio: Provide a
 * get_user/copy_struct for VFIO_DEVICE_BIND_IOMMUFD token").
 *
 * This header is the one source of truth for byte layout: the Swift `UAPI` module computes its
 * layout descriptors itself and the tests compare them with the C compiler's sizeof/offsetof
 * through the tables at the end of this file.
 *
 * Layout rules: little-endian, natural alignment; `ciommufd_aligned_u64` is an 8-aligned u64
 * (the kernel's `__aligned_u64`), so every struct holding one is 8-aligned on every ABI.
 *
 * The three historical layouts of `struct iommu_vdevice_tsm_req` (spec 4.1) get three distinct
 * C names here; the kernel spells each of them `struct iommu_vdevice_tsm_req`.
 */
#ifndef TSMKIT_CIOMMUFD_H
#define TSMKIT_CIOMMUFD_H

#include <stddef.h>
#include <stdint.h>

#if defined(__linux__)
#include <sys/ioctl.h> /* _IO from asm-generic/ioctl.h: the kernel's own request encoding */
#endif

typedef uint64_t ciommufd_aligned_u64 __attribute__((aligned(8)));

/* ---------------------------------------------------------------------------------------------
 * Type and command numbers (spec 2.1). Every iommufd command is _IO(IOMMUFD_TYPE, nr).
 * ------------------------------------------------------------------------------------------ */

#define IOMMUFD_TYPE (';') /* 0x3B */

enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE, /* 0x80 */
	IOMMUFD_CMD_IOAS_ALLOC = 0x81,
	IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82,
	IOMMUFD_CMD_IOAS_COPY = 0x83,
	IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
	IOMMUFD_CMD_IOAS_MAP = 0x85,
	IOMMUFD_CMD_IOAS_UNMAP = 0x86,
	IOMMUFD_CMD_OPTION = 0x87,
	IOMMUFD_CMD_VFIO_IOAS = 0x88,
	IOMMUFD_CMD_HWPT_ALLOC = 0x89,
	IOMMUFD_CMD_GET_HW_INFO = 0x8A,
	IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8B,
	IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8C,
	IOMMUFD_CMD_HWPT_INVALIDATE = 0x8D,
	IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8E,
	IOMMUFD_CMD_IOAS_MAP_FILE = 0x8F,
	IOMMUFD_CMD_VIOMMU_ALLOC = 0x90,
	IOMMUFD_CMD_VDEVICE_ALLOC = 0x91,
	IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92,
	IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93,
	IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94,
	/* v5 series and the 2026-06-02 reply (profiles `v5`, `revised`). */
	IOMMUFD_CMD_VDEVICE_TSM_OP = 0x95,
	IOMMUFD_CMD_VDEVICE_TSM_REQ = 0x96,
};

/* rev-K tree (kamalca/linux @58252340) and mainline Linux 7.3: 0x95 is IOAS_NOIOMMU_GET_PA and the
 * TSM commands move up by one (profile `rev-k`). Distinct names so both numberings coexist here. */
enum {
	IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA = 0x95,
	IOMMUFD_CMD_REVK_VDEVICE_TSM_OP = 0x96,
	IOMMUFD_CMD_REVK_VDEVICE_TSM_REQ = 0x97,
};

/* VFIO shares the ioctl type byte ';' (include/uapi/linux/vfio.h). */
#define VFIO_TYPE (';')
#define VFIO_BASE 100
#define VFIO_CMD_DEVICE_BIND_IOMMUFD (VFIO_BASE + 18) /* 118 = 0x76 */

#if defined(__linux__) && defined(_IO)
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)
#define IOMMU_VIOMMU_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC)
#define IOMMU_VDEVICE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC)
#define IOMMU_VDEVICE_TSM_OP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_TSM_OP)
#define IOMMU_VDEVICE_TSM_REQ _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_TSM_REQ)
#define IOMMU_IOAS_NOIOMMU_GET_PA _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA)
#define IOMMU_REVK_VDEVICE_TSM_OP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_REVK_VDEVICE_TSM_OP)
#define IOMMU_REVK_VDEVICE_TSM_REQ _IO(IOMMUFD_TYPE, IOMMUFD_CMD_REVK_VDEVICE_TSM_REQ)
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_CMD_DEVICE_BIND_IOMMUFD)
#endif

/* ---------------------------------------------------------------------------------------------
 * Structs (spec 2.3, 4.1).
 * ------------------------------------------------------------------------------------------ */

/* IOMMU_DESTROY, 8 bytes: 0 size, 4 id. */
struct iommu_destroy {
	uint32_t size;
	uint32_t id;
};

/* IOMMU_IOAS_ALLOC, 12 bytes: 0 size, 4 flags (must be 0), 8 out_ioas_id. */
struct iommu_ioas_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t out_ioas_id;
};

/* enum iommufd_hwpt_alloc_flags (bits of iommu_hwpt_alloc.flags). */
enum iommufd_hwpt_alloc_flags {
	IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
	IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,
	IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,
	IOMMU_HWPT_ALLOC_PASID = 1 << 3,
};

/* enum iommu_hwpt_data_type (iommu_hwpt_alloc.data_type). */
enum iommu_hwpt_data_type {
	IOMMU_HWPT_DATA_NONE = 0,
	IOMMU_HWPT_DATA_VTD_S1 = 1,
	IOMMU_HWPT_DATA_ARM_SMMUV3 = 2,
};

/* IOMMU_HWPT_ALLOC, 48 bytes. */
struct iommu_hwpt_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t dev_id;
	uint32_t pt_id;
	uint32_t out_hwpt_id;
	uint32_t __reserved;
	uint32_t data_type;
	uint32_t data_len;
	ciommufd_aligned_u64 data_uptr;
	uint32_t fault_id;
	uint32_t __reserved2;
};

/* enum iommu_viommu_type (iommu_viommu_alloc.type); 0 = DEFAULT is rejected (EOPNOTSUPP). */
enum iommu_viommu_type {
	IOMMU_VIOMMU_TYPE_DEFAULT = 0,
	IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1,
	IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2,
};

/* IOMMU_VIOMMU_ALLOC, 40 bytes. */
struct iommu_viommu_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t type;
	uint32_t dev_id;
	uint32_t hwpt_id;
	uint32_t out_viommu_id;
	uint32_t data_len;
	uint32_t __reserved;
	ciommufd_aligned_u64 data_uptr;
};

/* IOMMU_VDEVICE_ALLOC, 24 bytes. */
struct iommu_vdevice_alloc {
	uint32_t size;
	uint32_t viommu_id;
	uint32_t dev_id;
	uint32_t out_vdevice_id;
	ciommufd_aligned_u64 virt_id;
};

/* enum iommu_vdevice_tsm_op_type (iommu_vdevice_tsm_op.type). */
enum iommu_vdevice_tsm_op_type {
	IOMMU_VDEVICE_TSM_BIND = 1,
	IOMMU_VDEVICE_TSM_UNBIND = 2,
};

/* IOMMU_VDEVICE_TSM_OP, 16 bytes, 4-aligned. */
struct iommu_vdevice_tsm_op {
	uint32_t size;
	uint32_t type;
	uint32_t flags;
	uint32_t vdevice_id;
};

/* enum iommu_vdevice_tsm_req_scope (v5 `scope`). */
enum iommu_vdevice_tsm_req_scope {
	IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_BASE = 0,
	IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_INFO = IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_BASE,
	IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_STATE_CHANGE = 1,
	IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_DEBUG_READ = 2,
	IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_DEBUG_WRITE = 3,
	IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_LAST = IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_DEBUG_WRITE,
};

/* enum iommu_vdevice_tsm_guest_tvm_arch (revised `tvm_arch`). */
enum iommu_vdevice_tsm_guest_tvm_arch {
	IOMMU_VDEVICE_TSM_GUEST_TVM_ARCH_CCA = 1,
	IOMMU_VDEVICE_TSM_GUEST_TVM_ARCH_SEV = 2,
	IOMMU_VDEVICE_TSM_GUEST_TVM_ARCH_TDX = 3,
};

/* enum iommu_vdevice_tsm_guest_req_op as in the 2026-06-02 reply (profile `revised`). */
enum iommu_vdevice_tsm_guest_req_op {
	TSM_REQ_READ_OBJECT = 1,
	TSM_REQ_REGEN_OBJECT = 2,
	TSM_REQ_OBJECT_INFO = 3,
	TSM_REQ_VALIDATE_MMIO = 4,
	TSM_REQ_SET_TDI_STATE = 5,
	TSM_REQ_SEV_ENABLE_DMA = 6,  /* tvm_arch SEV only */
	TSM_REQ_SEV_DISABLE_DMA = 7, /* tvm_arch SEV only */
};

/* The same enum as rev-K numbers it (kamalca/linux @58252340, profile `rev-k`); prefixed here
 * because the kernel reuses the reply's enumerator names with other values. */
enum iommu_vdevice_tsm_guest_req_op_revk {
	TSM_REQ_REVK_VALIDATE_MMIO = 1,
	TSM_REQ_REVK_SET_TDI_STATE = 2,
	TSM_REQ_REVK_SEV_ENABLE_DMA = 3,  /* tvm_arch SEV only */
	TSM_REQ_REVK_SEV_DISABLE_DMA = 4, /* tvm_arch SEV only */
};

/* IOMMU_VDEVICE_TSM_REQ, layout (a): v5 as posted, 40 bytes, 8-aligned. */
struct iommu_vdevice_tsm_req_v5 {
	uint32_t size;
	uint32_t vdevice_id;
	uint32_t scope;
	uint32_t req_len;
	uint32_t resp_len;
	uint32_t __reserved;
	ciommufd_aligned_u64 req_uptr;
	ciommufd_aligned_u64 resp_uptr;
};

/* IOMMU_VDEVICE_TSM_REQ, layout (b): the reply's base, v5 plus tsm_code, 48 bytes. */
struct iommu_vdevice_tsm_req_v5_tsm_code {
	uint32_t size;
	uint32_t vdevice_id;
	uint32_t scope;
	uint32_t req_len;
	uint32_t resp_len;
	uint32_t __reserved;
	ciommufd_aligned_u64 req_uptr;
	ciommufd_aligned_u64 resp_uptr;
	ciommufd_aligned_u64 tsm_code;
};

/* IOMMU_VDEVICE_TSM_REQ, layout (c): revised (reply / rev-K), op + tvm_arch, 48 bytes. */
struct iommu_vdevice_tsm_req_revised {
	uint32_t size;
	uint32_t vdevice_id;
	uint32_t op;
	uint32_t tvm_arch;
	uint32_t req_len;
	uint32_t resp_len;
	ciommufd_aligned_u64 req_uptr;
	ciommufd_aligned_u64 resp_uptr;
	ciommufd_aligned_u64 tsm_code;
};

/* IOMMU_IOAS_NOIOMMU_GET_PA (Linux 7.3, rev-K), 40 bytes. */
struct iommu_ioas_noiommu_get_pa {
	uint32_t size;
	uint32_t flags;
	uint32_t ioas_id;
	uint32_t __reserved;
	ciommufd_aligned_u64 iova;
	ciommufd_aligned_u64 length;
	ciommufd_aligned_u64 out_phys;
};

/* VFIO_DEVICE_BIND_IOMMUFD (on a VFIO cdev fd), 24 bytes; minimum argsz 16 (end of out_devid). */
#define VFIO_DEVICE_BIND_FLAG_TOKEN (1 << 0)
struct vfio_device_bind_iommufd {
	uint32_t argsz;
	uint32_t flags;
	int32_t iommufd;
	uint32_t out_devid;
	ciommufd_aligned_u64 token_uuid_ptr;
};

/* ---------------------------------------------------------------------------------------------
 * The ioctl shim: a non-variadic entry point (Swift cannot call variadic C functions).
 * Returns ioctl's result (-1 with errno set on failure, else the non-negative value).
 * ------------------------------------------------------------------------------------------ */
int ciommufd_ioctl(int fd, unsigned long request, void *argument);

/* ioctl(fd, request, value) with an integer third argument, for commands that take a value, not
 * a pointer (KVM_CREATE_VM's machine type, KVM_GET_API_VERSION's 0). */
int ciommufd_ioctl_value(int fd, unsigned long request, unsigned long value);

/* Reads the calling thread's errno (for callers that cannot reach it directly). */
int ciommufd_errno(void);

/* ---------------------------------------------------------------------------------------------
 * Layout tables computed by the C compiler (sizeof, _Alignof, offsetof, signedness), used by the
 * tests to check every Swift layout descriptor. Struct names are the C names above.
 * ------------------------------------------------------------------------------------------ */
struct ciommufd_struct_info {
	const char *name;
	size_t size;
	size_t alignment;
};

struct ciommufd_field_info {
	const char *struct_name;
	const char *field_name;
	size_t offset;
	size_t size;
	int is_signed;
};

/* One row per command: request code from the system's _IO (0 where unavailable), minimum size as
 * offsetofend of the field the kernel names. */
struct ciommufd_command_info {
	const char *name;        /* kernel spelling, e.g. "IOMMU_VDEVICE_TSM_REQ" */
	const char *numbering;   /* "common", "v5", "revised", "v5+revised", "rev-k" or "vfio" */
	unsigned int nr;
	unsigned long request;
	const char *struct_name; /* C name */
	size_t minimum_size;
};

size_t ciommufd_struct_count(void);
const struct ciommufd_struct_info *ciommufd_struct_at(size_t index);
size_t ciommufd_field_count(void);
const struct ciommufd_field_info *ciommufd_field_at(size_t index);
size_t ciommufd_command_count(void);
const struct ciommufd_command_info *ciommufd_command_at(size_t index);

/* ---------------------------------------------------------------------------------------------
 * The KVM side of device assignment (Appendix B step 2), from Linux include/uapi/linux/kvm.h and
 * Documentation/virt/kvm/devices/vfio.rst: KVM_CREATE_VM on /dev/kvm, KVM_CREATE_DEVICE with
 * KVM_DEV_TYPE_VFIO on the VM, and KVM_SET_DEVICE_ATTR (group KVM_DEV_VFIO_FILE, attribute
 * KVM_DEV_VFIO_FILE_ADD, addr -> an int32 file descriptor) on the device. The structs mirror the
 * kernel's `struct kvm_create_device` and `struct kvm_device_attr` under ciommufd_ names (a
 * system <linux/kvm.h> may be older or absent); the request codes below are computed by the
 * system's own _IO/_IOW/_IOWR from their sizes, as the kernel's header does.
 * ------------------------------------------------------------------------------------------ */

#define CIOMMUFD_KVMIO 0xAE                 /* KVMIO */
#define CIOMMUFD_KVM_API_VERSION 12         /* KVM_API_VERSION */
#define CIOMMUFD_KVM_DEV_TYPE_VFIO 4        /* enum kvm_device_type: FSL_MPIC_20 = 1, FSL_MPIC_42, XICS, VFIO */
#define CIOMMUFD_KVM_DEV_VFIO_FILE 1        /* alias KVM_DEV_VFIO_GROUP */
#define CIOMMUFD_KVM_DEV_VFIO_FILE_ADD 1
#define CIOMMUFD_KVM_DEV_VFIO_FILE_DEL 2

/* struct kvm_create_device (12 bytes). */
struct ciommufd_kvm_create_device {
	uint32_t type;  /* in: KVM_DEV_TYPE_xxx */
	uint32_t fd;    /* out: device handle */
	uint32_t flags; /* in: KVM_CREATE_DEVICE_xxx */
};

/* struct kvm_device_attr (24 bytes). */
struct ciommufd_kvm_device_attr {
	uint32_t flags;  /* no flags currently defined */
	uint32_t group;  /* device-defined */
	uint64_t attr;   /* group-defined */
	uint64_t addr;   /* userspace address of attr data */
};

/* One KVM request code as the system's _IO/_IOW/_IOWR computes it (0 where <sys/ioctl.h> has no
 * _IO), with the size of its argument struct (0 for _IO). */
struct ciommufd_kvm_command_info {
	const char *name;      /* kernel spelling, e.g. "KVM_CREATE_DEVICE" */
	unsigned long request;
	size_t argument_size;
};

size_t ciommufd_kvm_command_count(void);
const struct ciommufd_kvm_command_info *ciommufd_kvm_command_at(size_t index);

#endif /* TSMKIT_CIOMMUFD_H */
