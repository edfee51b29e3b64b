/*
 * The non-variadic ioctl shim and the compiler-computed layout tables of ciommufd.h.
 */
#include "ciommufd.h"

#include <errno.h>
#include <sys/ioctl.h>

int ciommufd_ioctl(int fd, unsigned long request, void *argument)
{
	return ioctl(fd, request, argument);
}

int ciommufd_ioctl_value(int fd, unsigned long request, unsigned long value)
{
	return ioctl(fd, request, value);
}

int ciommufd_errno(void)
{
	return errno;
}

#define CIOMMUFD_SIZEOF_FIELD(type, field) sizeof(((type *)0)->field)
#define CIOMMUFD_OFFSETOFEND(type, field) (offsetof(type, field) + CIOMMUFD_SIZEOF_FIELD(type, field))
/* (typeof(field))-1 < 0 is true exactly for signed integer fields. */
#define CIOMMUFD_IS_SIGNED(type, field) ((__typeof__(((type *)0)->field))-1 < 0)

#define STRUCT_ROW(tag) { #tag, sizeof(struct tag), _Alignof(struct tag) }
#define FIELD_ROW(tag, field)                                                                        \
	{ #tag, #field, offsetof(struct tag, field), CIOMMUFD_SIZEOF_FIELD(struct tag, field),          \
	  CIOMMUFD_IS_SIGNED(struct tag, field) }

static const struct ciommufd_struct_info structs[] = {
	STRUCT_ROW(iommu_destroy),
	STRUCT_ROW(iommu_ioas_alloc),
	STRUCT_ROW(iommu_hwpt_alloc),
	STRUCT_ROW(iommu_viommu_alloc),
	STRUCT_ROW(iommu_vdevice_alloc),
	STRUCT_ROW(iommu_vdevice_tsm_op),
	STRUCT_ROW(iommu_vdevice_tsm_req_v5),
	STRUCT_ROW(iommu_vdevice_tsm_req_v5_tsm_code),
	STRUCT_ROW(iommu_vdevice_tsm_req_revised),
	STRUCT_ROW(iommu_ioas_noiommu_get_pa),
	STRUCT_ROW(vfio_device_bind_iommufd),
};

static const struct ciommufd_field_info fields[] = {
	FIELD_ROW(iommu_destroy, size),
	FIELD_ROW(iommu_destroy, id),

	FIELD_ROW(iommu_ioas_alloc, size),
	FIELD_ROW(iommu_ioas_alloc, flags),
	FIELD_ROW(iommu_ioas_alloc, out_ioas_id),

	FIELD_ROW(iommu_hwpt_alloc, size),
	FIELD_ROW(iommu_hwpt_alloc, flags),
	FIELD_ROW(iommu_hwpt_alloc, dev_id),
	FIELD_ROW(iommu_hwpt_alloc, pt_id),
	FIELD_ROW(iommu_hwpt_alloc, out_hwpt_id),
	FIELD_ROW(iommu_hwpt_alloc, __reserved),
	FIELD_ROW(iommu_hwpt_alloc, data_type),
	FIELD_ROW(iommu_hwpt_alloc, data_len),
	FIELD_ROW(iommu_hwpt_alloc, data_uptr),
	FIELD_ROW(iommu_hwpt_alloc, fault_id),
	FIELD_ROW(iommu_hwpt_alloc, __reserved2),

	FIELD_ROW(iommu_viommu_alloc, size),
	FIELD_ROW(iommu_viommu_alloc, flags),
	FIELD_ROW(iommu_viommu_alloc, type),
	FIELD_ROW(iommu_viommu_alloc, dev_id),
	FIELD_ROW(iommu_viommu_alloc, hwpt_id),
	FIELD_ROW(iommu_viommu_alloc, out_viommu_id),
	FIELD_ROW(iommu_viommu_alloc, data_len),
	FIELD_ROW(iommu_viommu_alloc, __reserved),
	FIELD_ROW(iommu_viommu_alloc, data_uptr),

	FIELD_ROW(iommu_vdevice_alloc, size),
	FIELD_ROW(iommu_vdevice_alloc, viommu_id),
	FIELD_ROW(iommu_vdevice_alloc, dev_id),
	FIELD_ROW(iommu_vdevice_alloc, out_vdevice_id),
	FIELD_ROW(iommu_vdevice_alloc, virt_id),

	FIELD_ROW(iommu_vdevice_tsm_op, size),
	FIELD_ROW(iommu_vdevice_tsm_op, type),
	FIELD_ROW(iommu_vdevice_tsm_op, flags),
	FIELD_ROW(iommu_vdevice_tsm_op, vdevice_id),

	FIELD_ROW(iommu_vdevice_tsm_req_v5, size),
	FIELD_ROW(iommu_vdevice_tsm_req_v5, vdevice_id),
	FIELD_ROW(iommu_vdevice_tsm_req_v5, scope),
	FIELD_ROW(iommu_vdevice_tsm_req_v5, req_len),
	FIELD_ROW(iommu_vdevice_tsm_req_v5, resp_len),
	FIELD_ROW(iommu_vdevice_tsm_req_v5, __reserved),
	FIELD_ROW(iommu_vdevice_tsm_req_v5, req_uptr),
	FIELD_ROW(iommu_vdevice_tsm_req_v5, resp_uptr),

	FIELD_ROW(iommu_vdevice_tsm_req_v5_tsm_code, size),
	FIELD_ROW(iommu_vdevice_tsm_req_v5_tsm_code, vdevice_id),
	FIELD_ROW(iommu_vdevice_tsm_req_v5_tsm_code, scope),
	FIELD_ROW(iommu_vdevice_tsm_req_v5_tsm_code, req_len),
	FIELD_ROW(iommu_vdevice_tsm_req_v5_tsm_code, resp_len),
	FIELD_ROW(iommu_vdevice_tsm_req_v5_tsm_code, __reserved),
	FIELD_ROW(iommu_vdevice_tsm_req_v5_tsm_code, req_uptr),
	FIELD_ROW(iommu_vdevice_tsm_req_v5_tsm_code, resp_uptr),
	FIELD_ROW(iommu_vdevice_tsm_req_v5_tsm_code, tsm_code),

	FIELD_ROW(iommu_vdevice_tsm_req_revised, size),
	FIELD_ROW(iommu_vdevice_tsm_req_revised, vdevice_id),
	FIELD_ROW(iommu_vdevice_tsm_req_revised, op),
	FIELD_ROW(iommu_vdevice_tsm_req_revised, tvm_arch),
	FIELD_ROW(iommu_vdevice_tsm_req_revised, req_len),
	FIELD_ROW(iommu_vdevice_tsm_req_revised, resp_len),
	FIELD_ROW(iommu_vdevice_tsm_req_revised, req_uptr),
	FIELD_ROW(iommu_vdevice_tsm_req_revised, resp_uptr),
	FIELD_ROW(iommu_vdevice_tsm_req_revised, tsm_code),

	FIELD_ROW(iommu_ioas_noiommu_get_pa, size),
	FIELD_ROW(iommu_ioas_noiommu_get_pa, flags),
	FIELD_ROW(iommu_ioas_noiommu_get_pa, ioas_id),
	FIELD_ROW(iommu_ioas_noiommu_get_pa, __reserved),
	FIELD_ROW(iommu_ioas_noiommu_get_pa, iova),
	FIELD_ROW(iommu_ioas_noiommu_get_pa, length),
	FIELD_ROW(iommu_ioas_noiommu_get_pa, out_phys),

	FIELD_ROW(vfio_device_bind_iommufd, argsz),
	FIELD_ROW(vfio_device_bind_iommufd, flags),
	FIELD_ROW(vfio_device_bind_iommufd, iommufd),
	FIELD_ROW(vfio_device_bind_iommufd, out_devid),
	FIELD_ROW(vfio_device_bind_iommufd, token_uuid_ptr),
};

#if defined(__linux__) && defined(_IO)
#define REQUEST(code) (code)
#else
#define REQUEST(code) 0UL
#endif

#define COMMAND_ROW(name, numbering, nr, tag, last_field)                                            \
	{ #name, numbering, nr, REQUEST(name), #tag, CIOMMUFD_OFFSETOFEND(struct tag, last_field) }

/* Minimum sizes: the field each kernel tree names in its dispatch table (spec 2.1, 4.1). */
static const struct ciommufd_command_info commands[] = {
	COMMAND_ROW(IOMMU_DESTROY, "common", IOMMUFD_CMD_DESTROY, iommu_destroy, id),
	COMMAND_ROW(IOMMU_IOAS_ALLOC, "common", IOMMUFD_CMD_IOAS_ALLOC, iommu_ioas_alloc, out_ioas_id),
	COMMAND_ROW(IOMMU_HWPT_ALLOC, "common", IOMMUFD_CMD_HWPT_ALLOC, iommu_hwpt_alloc, __reserved),
	COMMAND_ROW(IOMMU_VIOMMU_ALLOC, "common", IOMMUFD_CMD_VIOMMU_ALLOC, iommu_viommu_alloc, out_viommu_id),
	COMMAND_ROW(IOMMU_VDEVICE_ALLOC, "common", IOMMUFD_CMD_VDEVICE_ALLOC, iommu_vdevice_alloc, virt_id),
	COMMAND_ROW(IOMMU_VDEVICE_TSM_OP, "v5+revised", IOMMUFD_CMD_VDEVICE_TSM_OP, iommu_vdevice_tsm_op, vdevice_id),
	/* v5 as posted: minimum is the end of resp_uptr. */
	COMMAND_ROW(IOMMU_VDEVICE_TSM_REQ, "v5", IOMMUFD_CMD_VDEVICE_TSM_REQ, iommu_vdevice_tsm_req_v5, resp_uptr),
	/* revised (reply): minimum is the end of tsm_code. */
	COMMAND_ROW(IOMMU_VDEVICE_TSM_REQ, "revised", IOMMUFD_CMD_VDEVICE_TSM_REQ, iommu_vdevice_tsm_req_revised, tsm_code),
	COMMAND_ROW(IOMMU_IOAS_NOIOMMU_GET_PA, "rev-k", IOMMUFD_CMD_IOAS_NOIOMMU_GET_PA, iommu_ioas_noiommu_get_pa, out_phys),
	COMMAND_ROW(IOMMU_REVK_VDEVICE_TSM_OP, "rev-k", IOMMUFD_CMD_REVK_VDEVICE_TSM_OP, iommu_vdevice_tsm_op, vdevice_id),
	COMMAND_ROW(IOMMU_REVK_VDEVICE_TSM_REQ, "rev-k", IOMMUFD_CMD_REVK_VDEVICE_TSM_REQ, iommu_vdevice_tsm_req_revised, tsm_code),
	COMMAND_ROW(VFIO_DEVICE_BIND_IOMMUFD, "vfio", VFIO_CMD_DEVICE_BIND_IOMMUFD, vfio_device_bind_iommufd, out_devid),
};

size_t ciommufd_struct_count(void) { return sizeof(structs) / sizeof(structs[0]); }

const struct ciommufd_struct_info *ciommufd_struct_at(size_t index)
{
	return index < ciommufd_struct_count() ? &structs[index] : NULL;
}

size_t ciommufd_field_count(void) { return sizeof(fields) / sizeof(fields[0]); }

const struct ciommufd_field_info *ciommufd_field_at(size_t index)
{
	return index < ciommufd_field_count() ? &fields[index] : NULL;
}

size_t ciommufd_command_count(void) { return sizeof(commands) / sizeof(commands[0]); }

const struct ciommufd_command_info *ciommufd_command_at(size_t index)
{
	return index < ciommufd_command_count() ? &commands[index] : NULL;
}

/* KVM request codes (kvm.h), computed here by the system's macros from the mirrored structs. */
#if defined(__linux__) && defined(_IO)
#define CIOMMUFD_KVM_ROW_IO(name, nr) { #name, _IO(CIOMMUFD_KVMIO, nr), 0 }
#define CIOMMUFD_KVM_ROW_IOW(name, nr, type) { #name, _IOW(CIOMMUFD_KVMIO, nr, type), sizeof(type) }
#define CIOMMUFD_KVM_ROW_IOWR(name, nr, type) { #name, _IOWR(CIOMMUFD_KVMIO, nr, type), sizeof(type) }
#else
#define CIOMMUFD_KVM_ROW_IO(name, nr) { #name, 0, 0 }
#define CIOMMUFD_KVM_ROW_IOW(name, nr, type) { #name, 0, sizeof(type) }
#define CIOMMUFD_KVM_ROW_IOWR(name, nr, type) { #name, 0, sizeof(type) }
#endif

static const struct ciommufd_kvm_command_info kvm_commands[] = {
	CIOMMUFD_KVM_ROW_IO(KVM_GET_API_VERSION, 0x00),
	CIOMMUFD_KVM_ROW_IO(KVM_CREATE_VM, 0x01),
	CIOMMUFD_KVM_ROW_IOWR(KVM_CREATE_DEVICE, 0xe0, struct ciommufd_kvm_create_device),
	CIOMMUFD_KVM_ROW_IOW(KVM_SET_DEVICE_ATTR, 0xe1, struct ciommufd_kvm_device_attr),
	CIOMMUFD_KVM_ROW_IOW(KVM_HAS_DEVICE_ATTR, 0xe3, struct ciommufd_kvm_device_attr),
};

size_t ciommufd_kvm_command_count(void)
{
	return sizeof(kvm_commands) / sizeof(kvm_commands[0]);
}

const struct ciommufd_kvm_command_info *ciommufd_kvm_command_at(size_t index)
{
	return index < ciommufd_kvm_command_count() ? &kvm_commands[index] : 0;
}
