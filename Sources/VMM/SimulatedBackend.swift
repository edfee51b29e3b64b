import Kernel
import SystemPackage
import UAPI

/// The embedded simulated kernel (`Kernel.SimulatedKernel`) behind ``IOMMUFDBackend``: a thin
/// adapter, so the typed calls of ``IOMMUFD`` and ``VFIODevice`` run unchanged on it.
///
/// * **ioctl**: the argument bytes are mapped into the kernel's simulated user address space
///   (``SimulatedKernel/memory``), `kernel.ioctl(fd, request, address)` runs the dispatcher of spec
///   2.2 on them, and the bytes are read back — after a failure too, since a revised TSM_REQ writes
///   `tsm_code` back with its errno (spec 4.3 step 14) — then unmapped.
/// * **user buffers** (`req_uptr`, `resp_uptr`) are mappings in that same address space.
/// * **paths**: ``IOMMUFD/defaultPath`` (`/dev/iommu`) opens an iommufd;
///   ``vfioDevicePath(_:)`` (`/dev/vfio/devices/<BDF>`, this adapter's naming: the simulated
///   kernel has no device numbers) opens the VFIO cdev of a PCI function, and
///   `/dev/vfio/devices/platform:<name>` that of a platform device. Any other path is ENOENT.
/// * **profile**: ``admit(_:)`` accepts only the kernel's own profile — another profile's
///   numbers and layouts mean something else to it (``VMMError/Code/profileMismatch``).
/// * **KVM** (Appendix B step 2): ``createVM()`` and ``addToVM(_:vfio:)`` stand in for
///   `KVM_CREATE_VM` and `KVM_DEV_VFIO_FILE_ADD`, which must precede ``VFIODevice/bind(to:)``.
public final class SimulatedBackend: IOMMUFDBackend {
    /// The kernel every call goes to.
    public let kernel: SimulatedKernel

    /// The prefix of VFIO device paths.
    public static let vfioDirectory = "/dev/vfio/devices/"

    /// An adapter for `kernel`.
    public init(kernel: SimulatedKernel) {
        self.kernel = kernel
    }

    /// The path under which ``open(_:)`` opens the VFIO cdev of PCI function `address`:
    /// `/dev/vfio/devices/<BDF>`, e.g. `/dev/vfio/devices/10000:01:00.1`.
    public static func vfioDevicePath(_ address: PCIFunctionAddress) -> String {
        vfioDirectory + address.description
    }

    /// `"the simulated kernel (profile <name>)"`.
    public var environment: String { "the simulated kernel (profile \(kernel.profile.name))" }

    /// Admits only ``SimulatedKernel/profile``. Errors: ``VMMError/Code/profileMismatch`` at
    /// ``VMMStep/checkKernel`` naming the kernel's profile.
    public func admit(_ profile: UAPIProfile) throws(VMMError) {
        guard profile == kernel.profile else {
            throw VMMError(.profileMismatch, step: .checkKernel,
                           reason: "refusing profile '\(profile.name)': the simulated kernel runs profile '\(kernel.profile.name)' (profile that fits: \(kernel.profile.name))")
        }
    }

    /// Opens `/dev/iommu` or a VFIO cdev (see the type's path rules).
    ///
    /// Errors: ENOENT for an unknown path or a malformed BDF; from the kernel: ENODEV (no such
    /// function or platform device), EBUSY (cdev already open).
    public func open(_ path: String) throws(Errno) -> Int32 {
        if path == IOMMUFD.defaultPath { return kernel.openIOMMUFD() }
        guard path.hasPrefix(Self.vfioDirectory) else { throw .noSuchFileOrDirectory }
        let name = String(path.dropFirst(Self.vfioDirectory.count))
        if name.hasPrefix("platform:") {
            return try kernel.openVFIOPlatformDevice(String(name.dropFirst("platform:".count)))
        }
        guard let address = PCIFunctionAddress(name) else { throw .noSuchFileOrDirectory }
        return try kernel.openVFIODevice(address)
    }

    /// `kernel.close(fd)`. Errors: EBADF.
    public func close(_ fd: Int32) throws(Errno) {
        try kernel.close(fd)
    }

    /// Maps `argument`, runs `kernel.ioctl(fd, request, address)`, reads the struct back (also on
    /// failure), unmaps. Errors: the kernel's errno; ENOMEM/EINVAL if the mapping fails.
    public func ioctl(_ fd: Int32, request: UInt32, argument: inout [UInt8]) throws(Errno) -> Int32 {
        let address = try kernel.memory.map(bytes: argument)
        defer { try? kernel.memory.unmap(address) }
        let result: Int32
        do throws(Errno) {
            result = try kernel.ioctl(fd, request, address)
        } catch {
            if let after = try? kernel.memory.read(address, count: argument.count) { argument = after }
            throw error
        }
        argument = try kernel.memory.read(address, count: argument.count)
        return result
    }

    /// A mapping of `count` zero bytes in the kernel's user address space.
    public func mapUserBuffer(count: Int) throws(Errno) -> UInt64 {
        guard count >= 1 else { throw .invalidArgument }
        return try kernel.memory.map(size: count)
    }

    /// `kernel.memory.write`. Errors: EFAULT.
    public func writeUserBuffer(at address: UInt64, _ bytes: [UInt8]) throws(Errno) {
        try kernel.memory.write(address, bytes)
    }

    /// `kernel.memory.read`. Errors: EFAULT, EINVAL.
    public func readUserBuffer(at address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        try kernel.memory.read(address, count: count)
    }

    /// `kernel.memory.unmap`. Errors: EINVAL.
    public func unmapUserBuffer(at address: UInt64) throws(Errno) {
        try kernel.memory.unmap(address)
    }

    // MARK: KVM stand-ins (Appendix B step 2)

    /// `KVM_CREATE_VM`: a new VM; returns its file descriptor (close it with ``close(_:)``).
    public func createVM() -> Int32 {
        kernel.createVM()
    }

    /// `KVM_DEV_VFIO_FILE_ADD`: associates `vfio` with the VM `vm`, so that its bind captures the VM
    /// (spec 1.5). `vfio` may be open through a ``TracingBackend`` over this backend. Errors at
    /// ``VMMStep/kvmVFIOFileAdd``: ``VMMError/Code/backendMismatch`` if `vfio` is from another
    /// backend; ``VMMError/Code/kernelError`` with EBADF (not a VM / not
    /// open), EINVAL, EEXIST (already added).
    public func addToVM(_ vm: Int32, vfio: borrowing VFIODevice) throws(VMMError) {
        var owner: any IOMMUFDBackend = vfio.backend
        while let tracing = owner as? TracingBackend { owner = tracing.base }
        guard owner === self else {
            throw VMMError(.backendMismatch, step: .kvmVFIOFileAdd,
                           reason: "\(vfio.path) is open on \(vfio.backend.environment), not on \(environment)")
        }
        do throws(Errno) {
            try kernel.kvmVFIOFileAdd(vm: vm, vfio: vfio.fileDescriptor)
        } catch {
            throw VMMError.classify(error, step: .kvmVFIOFileAdd, subject: vfio.path, environment: environment)
        }
    }
}
