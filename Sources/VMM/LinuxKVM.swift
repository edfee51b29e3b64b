// The Linux backend's KVM side and the host administrator's DSM connect: Appendix B steps 2 and 7
// of docs/spec/kernel-uapi.md, through real system calls. docs/vmm.md "Linux backend".
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CIOMMUFD
import Kernel
import SystemPackage
import UAPI
import Wire

/// The KVM uAPI subset a VMM needs to associate a VFIO device cdev with a VM, from Linux
/// include/uapi/linux/kvm.h and Documentation/virt/kvm/devices/vfio.rst.
///
/// | request | encoding | code | argument |
/// |---|---|---|---|
/// | `KVM_GET_API_VERSION` | `_IO(KVMIO, 0x00)` | 0xAE00 | none; returns 12 |
/// | `KVM_CREATE_VM` | `_IO(KVMIO, 0x01)` | 0xAE01 | the machine type (0); returns the VM fd |
/// | `KVM_CREATE_DEVICE` | `_IOWR(KVMIO, 0xe0, struct kvm_create_device)` | 0xC00CAEE0 | ``createDevice(type:)`` |
/// | `KVM_SET_DEVICE_ATTR` | `_IOW(KVMIO, 0xe1, struct kvm_device_attr)` | 0x4018AEE1 | ``deviceAttribute(group:attribute:address:)`` |
/// | `KVM_HAS_DEVICE_ATTR` | `_IOW(KVMIO, 0xe3, struct kvm_device_attr)` | 0x4018AEE3 | as above |
///
/// `KVMIO` is 0xAE. The codes are computed with ``UAPI/IoctlCode`` (asm-generic encoding) and
/// checked in the tests against the C compiler's `_IO`/`_IOW`/`_IOWR` over the mirrored structs
/// of `CIOMMUFD` and against the numbers above.
public enum KVMUAPI {
    /// `KVMIO`, the KVM ioctl type.
    public static let type: UInt8 = 0xAE
    /// `KVM_API_VERSION`: what `KVM_GET_API_VERSION` answers on every kernel since 2.6.22.
    public static let apiVersion: Int32 = 12
    /// `KVM_GET_API_VERSION` = `_IO(KVMIO, 0x00)`.
    public static let getAPIVersion = IoctlCode.io(type: type, nr: 0x00)
    /// `KVM_CREATE_VM` = `_IO(KVMIO, 0x01)`.
    public static let createVM = IoctlCode.io(type: type, nr: 0x01)
    /// `KVM_CREATE_DEVICE` = `_IOWR(KVMIO, 0xe0, struct kvm_create_device)`.
    public static let createDeviceRequest = IoctlCode.ioc(.readWrite, type: type, nr: 0xE0, size: UInt32(createDeviceSize))
    /// `KVM_SET_DEVICE_ATTR` = `_IOW(KVMIO, 0xe1, struct kvm_device_attr)`.
    public static let setDeviceAttr = IoctlCode.ioc(.write, type: type, nr: 0xE1, size: UInt32(deviceAttrSize))
    /// `KVM_HAS_DEVICE_ATTR` = `_IOW(KVMIO, 0xe3, struct kvm_device_attr)`.
    public static let hasDeviceAttr = IoctlCode.ioc(.write, type: type, nr: 0xE3, size: UInt32(deviceAttrSize))
    /// `KVM_DEV_TYPE_VFIO` (4 in `enum kvm_device_type`).
    public static let deviceTypeVFIO: UInt32 = 4
    /// `KVM_DEV_VFIO_FILE` (1; alias `KVM_DEV_VFIO_GROUP`): the attribute group of VFIO files.
    public static let vfioFileGroup: UInt32 = 1
    /// `KVM_DEV_VFIO_FILE_ADD` (1): `addr` points to an `int32_t` VFIO file descriptor.
    public static let vfioFileAdd: UInt64 = 1
    /// `KVM_DEV_VFIO_FILE_DEL` (2).
    public static let vfioFileDel: UInt64 = 2
    /// `sizeof(struct kvm_create_device)`: 12.
    public static let createDeviceSize = 12
    /// `sizeof(struct kvm_device_attr)`: 24.
    public static let deviceAttrSize = 24

    /// `struct kvm_create_device` for `type`, flags 0:
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 4 | `type` (in: `KVM_DEV_TYPE_*`) |
    /// | 4 | 4 | `fd` (out: the device's file descriptor) |
    /// | 8 | 4 | `flags` (in: 0, or `KVM_CREATE_DEVICE_TEST` = 1) |
    public static func createDevice(type: UInt32) -> [UInt8] {
        var writer = ByteWriter(capacity: createDeviceSize)
        writer.u32(type)
        writer.u32(0)
        writer.u32(0)
        return writer.bytes
    }

    /// The `fd` field of a `struct kvm_create_device` the kernel wrote back; nil if `bytes` is not
    /// 12 bytes.
    public static func createdDeviceFD(_ bytes: [UInt8]) -> Int32? {
        guard bytes.count == createDeviceSize else { return nil }
        var reader = ByteReader(bytes, offset: 4)
        return (try? reader.u32()).map { Int32(bitPattern: $0) }
    }

    /// `struct kvm_device_attr`, flags 0:
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 4 | `flags` (0) |
    /// | 4 | 4 | `group` |
    /// | 8 | 8 | `attr` |
    /// | 16 | 8 | `addr` (user address of the attribute's data) |
    public static func deviceAttribute(group: UInt32, attribute: UInt64, address: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: deviceAttrSize)
        writer.u32(0)
        writer.u32(group)
        writer.u64(attribute)
        writer.u64(address)
        return writer.bytes
    }
}

extension VMMError {
    /// Turns an errno of a KVM step (``VMMStep/openKVM``, ``VMMStep/kvmGetAPIVersion``,
    /// ``VMMStep/kvmCreateVM``, ``VMMStep/kvmCreateDevice``, ``VMMStep/kvmVFIOFileAdd``) into a
    /// ``VMMError``:
    ///
    /// | errno | step | code |
    /// |---|---|---|
    /// | EACCES, EPERM | any | ``Code/permissionDenied`` |
    /// | ENOENT, ENODEV, ENXIO | open /dev/kvm | ``Code/kvmUnavailable`` |
    /// | ENOTTY | KVM_GET_API_VERSION, KVM_CREATE_VM | ``Code/notKVM`` |
    /// | ENODEV, ENOTTY | KVM_CREATE_DEVICE | ``Code/kvmVFIOUnsupported`` |
    /// | EINVAL, ENXIO, ENOTTY | KVM_DEV_VFIO_FILE_ADD | ``Code/kvmVFIOUnsupported`` |
    /// | anything else | any | ``Code/kernelError`` |
    public static func classifyKVM(_ errno: Errno, step: VMMStep, subject: String, environment: String) -> VMMError {
        let name = errno.linuxName
        if errno == .permissionDenied || errno == .notPermitted {
            return classify(errno, step: step, subject: subject, environment: environment)
        }
        switch (step, errno) {
        case (.openKVM, .noSuchFileOrDirectory), (.openKVM, .operationNotSupportedByDevice), (.openKVM, .noSuchAddressOrDevice):
            return VMMError(.kvmUnavailable, step: step, errno: errno,
                            reason: "\(subject) is not available on \(environment) (\(name)): the kernel has no KVM (CONFIG_KVM not set, the kvm module not loaded, or no hardware virtualization)")
        case (.kvmGetAPIVersion, .inappropriateIOCTLForDevice), (.kvmCreateVM, .inappropriateIOCTLForDevice):
            return VMMError(.notKVM, step: step, errno: errno,
                            reason: "\(subject) does not answer \(step) on \(environment): it is not the KVM device (/dev/kvm)")
        case (.kvmCreateDevice, .operationNotSupportedByDevice):
            return VMMError(.kvmVFIOUnsupported, step: step, errno: errno,
                            reason: "KVM on \(environment) has no VFIO device type (KVM_DEV_TYPE_VFIO): the kernel lacks CONFIG_KVM_VFIO")
        case (.kvmCreateDevice, .inappropriateIOCTLForDevice):
            return VMMError(.kvmVFIOUnsupported, step: step, errno: errno,
                            reason: "\(subject) does not answer KVM_CREATE_DEVICE on \(environment): it is not a KVM VM, or the kernel predates KVM device control")
        case (.kvmVFIOFileAdd, .invalidArgument), (.kvmVFIOFileAdd, .noSuchAddressOrDevice), (.kvmVFIOFileAdd, .inappropriateIOCTLForDevice):
            return VMMError(.kvmVFIOUnsupported, step: step, errno: errno,
                            reason: "KVM's VFIO device on \(environment) refused \(subject) (\(name)): it is not a VFIO file, or the kernel's KVM takes only VFIO group files (VFIO device cdevs need Linux 6.6 or later)")
        default:
            return VMMError(.kernelError, step: step, errno: errno,
                            reason: "\(step) on \(subject) failed with \(name) on \(environment)")
        }
    }
}

extension LinuxBackend {
    // MARK: KVM (Appendix B step 2)

    /// `ioctl(fd, request, value)` with an integer argument (``CIOMMUFD/ciommufd_ioctl_value``).
    /// Errors: the errno of a negative return.
    func ioctl(_ fd: Int32, request: UInt32, value: UInt) throws(Errno) -> Int32 {
        let result = ciommufd_ioctl_value(fd, UInt(request), value)
        guard result >= 0 else { throw Errno(rawValue: ciommufd_errno()) }
        return result
    }

    /// Creates a VM: opens ``kvmPath``, checks `KVM_GET_API_VERSION` = 12, issues
    /// `KVM_CREATE_VM` (machine type 0) and closes ``kvmPath`` again (the VM fd keeps KVM open).
    /// Returns the VM's file descriptor; ``close(_:)`` releases it with its KVM-VFIO device.
    ///
    /// Errors (``VMMError/classifyKVM(_:step:subject:environment:)``): ``VMMError/Code/kvmUnavailable``
    /// (no `/dev/kvm`), ``VMMError/Code/permissionDenied`` (EACCES), ``VMMError/Code/notKVM``
    /// (ENOTTY: the file is not `/dev/kvm`; or an API version other than 12), any other errno
    /// as ``VMMError/Code/kernelError`` (e.g. EINVAL for an unsupported machine type, ENOMEM).
    /// Nothing stays open after an error.
    public func createVM() throws(VMMError) -> Int32 {
        let kvm: Int32
        do { kvm = try open(kvmPath) } catch {
            throw VMMError.classifyKVM(error, step: .openKVM, subject: kvmPath, environment: environment)
        }
        defer { try? FileDescriptor(rawValue: kvm).close() }
        let version: Int32
        do { version = try ioctl(kvm, request: KVMUAPI.getAPIVersion, value: 0) } catch {
            throw VMMError.classifyKVM(error, step: .kvmGetAPIVersion, subject: kvmPath, environment: environment)
        }
        guard version == KVMUAPI.apiVersion else {
            throw VMMError(.notKVM, step: .kvmGetAPIVersion,
                           reason: "\(kvmPath) answered KVM API version \(version), not \(KVMUAPI.apiVersion): it is not a KVM this library knows")
        }
        let vm: Int32
        do { vm = try ioctl(kvm, request: KVMUAPI.createVM, value: 0) } catch {
            throw VMMError.classifyKVM(error, step: .kvmCreateVM, subject: kvmPath, environment: environment)
        }
        kvmVMs.withLock { $0[vm] = KVMVM(device: -1, owned: true) }
        return vm
    }

    /// `KVM_DEV_VFIO_FILE_ADD`: associates `vfio` with the VM `vm` (before `VFIO_DEVICE_BIND_IOMMUFD`,
    /// so the bind captures the VM; spec 1.5, Documentation/virt/kvm/devices/vfio.rst). The first
    /// call for a VM creates its KVM-VFIO device (`KVM_CREATE_DEVICE`, `KVM_DEV_TYPE_VFIO`; one per
    /// VM), kept until ``close(_:)`` of the VM (or the backend's release; a VM fd that
    /// ``createVM()`` did not make is never closed by the backend); then `KVM_SET_DEVICE_ATTR` with group
    /// `KVM_DEV_VFIO_FILE`, attribute `KVM_DEV_VFIO_FILE_ADD` and `addr` pointing to the cdev's
    /// `int32` descriptor.
    ///
    /// Errors: ``VMMError/Code/backendMismatch`` (`vfio` open on another backend; nothing issued);
    /// at ``VMMStep/kvmCreateDevice``: ``VMMError/Code/kvmVFIOUnsupported`` (ENODEV: no
    /// CONFIG_KVM_VFIO; ENOTTY: `vm` is not a VM); at ``VMMStep/kvmVFIOFileAdd``:
    /// ``VMMError/Code/kvmVFIOUnsupported`` (EINVAL / ENXIO / ENOTTY: not a VFIO file, or an old
    /// kernel), ``VMMError/Code/kernelError`` (EBADF: `vfio` closed; EEXIST: already added);
    /// ``VMMError/Code/permissionDenied``.
    public func addToVM(_ vm: Int32, vfio: borrowing VFIODevice) throws(VMMError) {
        var owner: any IOMMUFDBackend = vfio.backend
        while let tracing = owner as? TracingBackend { owner = tracing.base }
        guard owner === self else {
            throw VMMError(.backendMismatch, step: .kvmVFIOFileAdd,
                           reason: "\(vfio.path) is open on \(vfio.backend.environment), not on \(environment)")
        }
        let device = try kvmVFIODevice(vm)
        var descriptor = vfio.fileDescriptor
        let path = vfio.path
        let result: Result<Int32, Errno> = withUnsafeMutableBytes(of: &descriptor) { raw in
            let address = UInt64(UInt(bitPattern: raw.baseAddress))
            var attribute = KVMUAPI.deviceAttribute(group: KVMUAPI.vfioFileGroup, attribute: KVMUAPI.vfioFileAdd,
                                                    address: address)
            do throws(Errno) {
                return .success(try ioctl(device, request: KVMUAPI.setDeviceAttr, argument: &attribute))
            } catch {
                return .failure(error)
            }
        }
        if case let .failure(errno) = result {
            throw VMMError.classifyKVM(errno, step: .kvmVFIOFileAdd, subject: path, environment: environment)
        }
    }

    /// The VM's KVM-VFIO device fd, created on first use; under the VM table's lock, so two
    /// threads adding files to one VM create one device (a second would be EBUSY).
    private func kvmVFIODevice(_ vm: Int32) throws(VMMError) -> Int32 {
        let created: Result<Int32, Errno> = kvmVMs.withLock { vms in
            if let existing = vms[vm]?.device, existing >= 0 { return .success(existing) }
            var argument = KVMUAPI.createDevice(type: KVMUAPI.deviceTypeVFIO)
            do throws(Errno) {
                _ = try ioctl(vm, request: KVMUAPI.createDeviceRequest, argument: &argument)
            } catch {
                return .failure(error)
            }
            let device = KVMUAPI.createdDeviceFD(argument) ?? -1
            if device >= 0 { vms[vm] = KVMVM(device: device, owned: vms[vm]?.owned ?? false) }
            return .success(device)
        }
        switch created {
        case let .failure(errno):
            throw VMMError.classifyKVM(errno, step: .kvmCreateDevice, subject: "VM fd \(vm)", environment: environment)
        case let .success(device) where device < 0:
            throw VMMError(.malformedReply, step: .kvmCreateDevice,
                           reason: "KVM_CREATE_DEVICE on VM fd \(vm) returned no device descriptor")
        case let .success(device):
            return device
        }
    }

    // MARK: sysfs (Appendix B step 7, kernel-uapi.md §6.5)

    /// `<sysfsRoot>/bus/pci/devices/<dddd:bb:dd.f>`, the PCI device's sysfs directory.
    public func sysfsDevicePath(_ function: PCIFunctionAddress) -> String {
        "\(sysfsRoot)/bus/pci/devices/\(function)"
    }

    /// The host administrator's DSM connect: writes `tsm` (`tsmN`, no newline) to
    /// `<sysfsRoot>/bus/pci/devices/<BDF>/tsm/connect` of the DSM (kernel-uapi.md §6.5), which
    /// makes the kernel probe and connect the DSM through that link TSM (SPDM, IDE, TDISP version
    /// and capabilities).
    ///
    /// Errors at ``VMMStep/tsmConnect``: ``VMMError/Code/invalidArgument`` (`tsm` is not `tsm`
    /// followed by decimal digits; nothing written); ``VMMError/Code/tsmSysfsUnavailable`` (no
    /// such PCI device, or no `tsm/connect`: no CONFIG_PCI_TSM, no link TSM registered, or not
    /// DSM-capable); ``VMMError/Code/permissionDenied``; ``VMMError/Code/kernelError`` with the
    /// kernel's errno: EINVAL (bad name), EBUSY (already connected), ENXIO (no such link TSM, or
    /// its driver refused the device), EINTR, or the TSM driver's connect error.
    public func connectDSM(_ dsm: PCIFunctionAddress, tsm: String = "tsm0") throws(VMMError) {
        try writeTSMAttribute(dsm, "connect", tsm, step: .tsmConnect)
    }

    /// The host administrator's DSM disconnect: writes `tsm` to `tsm/disconnect` (§6.5: unbinds
    /// every TDI of the DSM, then disconnects it). Errors as ``connectDSM(_:tsm:)``, with the
    /// kernel's ENXIO (no context) and EINVAL (not the owning TSM).
    public func disconnectDSM(_ dsm: PCIFunctionAddress, tsm: String = "tsm0") throws(VMMError) {
        try writeTSMAttribute(dsm, "disconnect", tsm, step: .tsmDisconnect)
    }

    /// The TSM the DSM is connected to, read from `tsm/connect` (`tsmN`, or nil for the empty line);
    /// nil as well when the attribute cannot be read.
    public func connectedTSM(_ dsm: PCIFunctionAddress) -> String? {
        let path = sysfsDevicePath(dsm) + "/tsm/connect"
        guard let fd = try? FileDescriptor.open(FilePath(path), .readOnly) else { return nil }
        defer { try? fd.close() }
        var buffer = [UInt8](repeating: 0, count: 64)
        guard let count = try? buffer.withUnsafeMutableBytes({ try fd.read(into: $0) }) else { return nil }
        let text = String(decoding: buffer.prefix(count), as: UTF8.self).trimmingSpaces()
        return text.isEmpty ? nil : text
    }

    private func writeTSMAttribute(_ dsm: PCIFunctionAddress, _ name: String, _ tsm: String,
                                   step: VMMStep) throws(VMMError) {
        let digits = tsm.dropFirst(3)
        guard tsm.hasPrefix("tsm"), !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw VMMError(.invalidArgument, step: step,
                           reason: "'\(tsm)' is not a TSM device name (tsm followed by its number, e.g. tsm0); nothing written")
        }
        let device = sysfsDevicePath(dsm)
        let path = device + "/tsm/" + name
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.closeOnExec])
        } catch let errno as Errno {
            if errno == .noSuchFileOrDirectory {
                if access(device, F_OK) != 0 {
                    throw VMMError(.tsmSysfsUnavailable, step: step, errno: errno,
                                   reason: "no PCI device \(dsm) on \(environment) (\(device) does not exist)")
                }
                throw VMMError(.tsmSysfsUnavailable, step: step, errno: errno,
                               reason: "\(path) does not exist on \(environment): the kernel lacks CONFIG_PCI_TSM, no link TSM driver is registered (\(sysfsRoot)/class/tsm), or \(dsm) is not DSM-capable")
            }
            throw VMMError.classify(errno, step: step, subject: path, environment: environment)
        } catch {
            throw VMMError(.kernelError, step: step, errno: .ioError, reason: "open of \(path) failed: \(error)")
        }
        defer { try? fd.close() }
        do {
            _ = try fd.writeAll(Array(tsm.utf8))
        } catch let errno as Errno {
            if errno == .permissionDenied || errno == .notPermitted {
                throw VMMError.classify(errno, step: step, subject: path, environment: environment)
            }
            let meaning: String
            switch errno {
            case .invalidArgument: meaning = name == "connect" ? "the kernel did not take '\(tsm)' as a TSM name" : "\(tsm) is not the TSM \(dsm) is connected to"
            case .resourceBusy: meaning = "\(dsm) is already connected to a TSM"
            case .noSuchAddressOrDevice: meaning = name == "connect" ? "\(tsm) is not a registered link TSM, or its driver refused \(dsm)" : "\(dsm) is not connected"
            case .interrupted: meaning = "interrupted by a signal while waiting for the TSM lock"
            default: meaning = "the TSM driver's \(name) failed"
            }
            throw VMMError(.kernelError, step: step, errno: errno, reason: "writing \(tsm) to \(path) on \(environment): \(meaning)")
        } catch {
            throw VMMError(.kernelError, step: step, errno: .ioError, reason: "write to \(path) failed: \(error)")
        }
    }

    /// The VFIO device cdev of a PCI function bound to vfio-pci: `/dev/vfio/devices/vfioN`, from
    /// the `vfioN` entry of `<sysfsRoot>/bus/pci/devices/<BDF>/vfio-dev/`.
    ///
    /// Errors at ``VMMStep/openVFIODevice``: ``VMMError/Code/vfioDeviceUnavailable`` (ENOENT) when
    /// the function has no `vfio-dev` entry (not bound to vfio-pci, or a kernel without
    /// CONFIG_VFIO_DEVICE_CDEV) or does not exist.
    public func vfioDevicePath(for function: PCIFunctionAddress) throws(VMMError) -> String {
        let directory = sysfsDevicePath(function) + "/vfio-dev"
        guard let name = LinuxBackend.entries(of: directory).first(where: { $0.hasPrefix("vfio") }) else {
            let reason = access(sysfsDevicePath(function), F_OK) != 0
                ? "no PCI device \(function) on \(environment) (\(sysfsDevicePath(function)) does not exist)"
                : "\(function) has no VFIO device cdev (\(directory) is empty or missing): bind it to vfio-pci; the kernel needs CONFIG_VFIO_DEVICE_CDEV"
            throw VMMError(.vfioDeviceUnavailable, step: .openVFIODevice, errno: .noSuchFileOrDirectory, reason: reason)
        }
        return "/dev/vfio/devices/" + name
    }
}

extension String {
    /// The text without leading and trailing blanks and newlines.
    fileprivate func trimmingSpaces() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !" \t\r\n".unicodeScalars.contains($0) }),
              let last = scalars.lastIndex(where: { !" \t\r\n".unicodeScalars.contains($0) }) else { return "" }
        return String(scalars[first...last])
    }
}
