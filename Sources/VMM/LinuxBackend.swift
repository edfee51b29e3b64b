#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CIOMMUFD
import Kernel
import Sync
import SystemPackage
import UAPI

/// The real kernel: `/dev/iommu` and VFIO cdevs through `open(2)`, `close(2)` and `ioctl(2)` (the
/// `CIOMMUFD` shim's non-variadic `ciommufd_ioctl`), with argument structs and TSM buffers in this
/// process's memory.
///
/// **What it refuses before issuing anything** (``admit(_:)``): a profile whose command numbers
/// the running kernel gives to other commands. Linux 7.3 assigns nr 0x95 to
/// `IOMMU_IOAS_NOIOMMU_GET_PA`, which `revised` and `v5` use for `IOMMU_VDEVICE_TSM_OP` (spec 2.1
/// "Mainline today"); on such a kernel only `rev-k` is admitted, and the error names it. The
/// version comes from `uname(2)`'s release (or the `release` given to ``init(release:kvmPath:sysfsRoot:)``); a
/// release that does not start with `major.minor` is refused too, since the numbers cannot be
/// checked.
///
/// **What it reports plainly** (through ``VMMError/classify(_:step:subject:environment:detail:tsmCode:)``):
/// no `/dev/iommu` (``VMMError/Code/iommufdUnavailable``), TSM commands answering ENOTTY
/// (``VMMError/Code/tsmUAPIUnavailable``), permission denied (``VMMError/Code/permissionDenied``),
/// a file that is not an iommufd or not a VFIO cdev (``VMMError/Code/notIOMMUFD``,
/// ``VMMError/Code/notVFIODevice``).
///
/// **User memory**: ``mapUserBuffer(count:)`` allocates zeroed heap memory (`calloc`) that stays at one
/// address until ``unmapUserBuffer(at:)`` (or until the backend is released); its address is the
/// real pointer the kernel reads as `req_uptr` / `resp_uptr`. Reads and writes are checked against
/// the mapped buffers, so a wrong address is EFAULT here, never a stray access.
public final class LinuxBackend: IOMMUFDBackend {
    /// The kernel release the profile checks use, e.g. `"7.3.4-amd64"`.
    public let release: String

    /// The KVM device ``createVM()`` opens (default `/dev/kvm`).
    public let kvmPath: String
    /// The sysfs mount point the DSM connect and the VFIO cdev look-up use (default `/sys`).
    public let sysfsRoot: String

    /// The mapped buffers: address → byte count (the memory itself is reached through the address).
    /// (`Sync.Locked`: a lock the thread sanitizer sees.)
    private let buffers = Locked<[UInt64: Int]>([:])
    /// A VM this backend knows: its KVM-VFIO device fd (-1 until the first ``addToVM(_:vfio:)``)
    /// and whether ``createVM()`` made it (then the backend closes it when released).
    struct KVMVM: Sendable, Equatable {
        var device: Int32
        var owned: Bool
    }
    /// VM fd → its KVM-VFIO device.
    let kvmVMs = Locked<[Int32: KVMVM]>([:])

    /// A backend for the running kernel, or (for tests and for preparing a deployment) for a kernel
    /// whose `uname -r` is `release`. Only the profile check uses `release`; the calls always go
    /// to the running kernel. `kvmPath` and `sysfsRoot` stand in for `/dev/kvm` and `/sys` (tests:
    /// a regular file, a temporary directory).
    public init(release: String? = nil, kvmPath: String = "/dev/kvm", sysfsRoot: String = "/sys") {
        self.release = release ?? LinuxBackend.runningRelease() ?? "unknown"
        self.kvmPath = kvmPath
        self.sysfsRoot = sysfsRoot
    }

    deinit {
        buffers.withLock { buffers in
            for address in buffers.keys { free(LinuxBackend.pointer(address)) }
            buffers.removeAll()
        }
        kvmVMs.withLock { vms in
            for (vm, entry) in vms {
                if entry.device >= 0 { try? FileDescriptor(rawValue: entry.device).close() }
                if entry.owned { try? FileDescriptor(rawValue: vm).close() }
            }
            vms.removeAll()
        }
    }

    /// `"Linux <release>"`.
    public var environment: String { "Linux \(release)" }

    /// The running kernel's release from `uname(2)`, or nil if the call fails.
    public static func runningRelease() -> String? {
        var names = utsname()
        guard uname(&names) == 0 else { return nil }
        return withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Admits `profile` if none of its command numbers means another command on ``release``.
    ///
    /// Errors at ``VMMStep/checkKernel``: ``VMMError/Code/unknownKernelVersion`` if ``release``
    /// does not start with `major.minor`; ``VMMError/Code/profileMismatch`` if
    /// ``UAPI/UAPIProfile/compatibility(with:)`` reports a conflict (the reason names the profiles
    /// that fit).
    public func admit(_ profile: UAPIProfile) throws(VMMError) {
        guard let version = KernelVersion(release: release) else {
            throw VMMError(.unknownKernelVersion, step: .checkKernel,
                           reason: "cannot read a kernel version from release '\(release)'; iommufd TSM command numbers depend on it, so nothing is issued")
        }
        if case let .conflict(reason) = profile.compatibility(with: version) {
            let fitting = UAPIProfile.all.filter { $0.compatibility(with: version) == .compatible }.map(\.name)
            let choice = fitting.isEmpty ? "no profile fits" : "profile that fits: \(fitting.joined(separator: ", "))"
            throw VMMError(.profileMismatch, step: .checkKernel,
                           reason: "refusing profile '\(profile.name)' on Linux \(release): \(reason); \(choice)")
        }
    }

    /// `open(path, O_RDWR | O_CLOEXEC)`, retried on EINTR. Errors: the errno of `open(2)`.
    public func open(_ path: String) throws(Errno) -> Int32 {
        do {
            return try FileDescriptor.open(FilePath(path), .readWrite, options: [.closeOnExec]).rawValue
        } catch let errno as Errno {
            throw errno
        } catch {
            throw .ioError
        }
    }

    /// `close(fd)`; for a VM made by ``createVM()`` also its KVM-VFIO device (which releases the
    /// VFIO files added to it). Errors: the errno of `close(2)` of `fd`.
    public func close(_ fd: Int32) throws(Errno) {
        if let entry = kvmVMs.withLock({ $0.removeValue(forKey: fd) }), entry.device >= 0 {
            try? FileDescriptor(rawValue: entry.device).close()
        }
        do {
            try FileDescriptor(rawValue: fd).close()
        } catch let errno as Errno {
            throw errno
        } catch {
            throw .ioError
        }
    }

    /// `ioctl(fd, request, argument.baseAddress)` through `ciommufd_ioctl`. Errors: the errno of a
    /// negative return (read in the same C call sequence, before anything else can change it).
    public func ioctl(_ fd: Int32, request: UInt32, argument: inout [UInt8]) throws(Errno) -> Int32 {
        let (result, error) = argument.withUnsafeMutableBytes { raw -> (Int32, Int32) in
            let result = ciommufd_ioctl(fd, UInt(request), raw.baseAddress)
            return (result, result < 0 ? ciommufd_errno() : 0)
        }
        guard result >= 0 else { throw Errno(rawValue: error) }
        return result
    }

    /// Allocates `count` zeroed bytes with `calloc` (16-aligned on glibc and Darwin); returns
    /// their address. Errors: EINVAL for `count` < 1; ENOMEM when the allocation fails (a
    /// capacity of gigabytes is an error, not a trap).
    public func mapUserBuffer(count: Int) throws(Errno) -> UInt64 {
        guard count >= 1 else { throw .invalidArgument }
        guard let base = calloc(count, 1) else { throw .noMemory }
        let address = UInt64(UInt(bitPattern: base))
        buffers.withLock { $0[address] = count }
        return address
    }

    /// Copies `bytes` to `address`. Errors: EFAULT unless the range lies in one mapped buffer.
    public func writeUserBuffer(at address: UInt64, _ bytes: [UInt8]) throws(Errno) {
        try buffers.withLock { buffers throws(Errno) in
            let (buffer, offset) = try LinuxBackend.locate(address, count: bytes.count, in: buffers)
            for (index, byte) in bytes.enumerated() { buffer.storeBytes(of: byte, toByteOffset: offset + index, as: UInt8.self) }
        }
    }

    /// Copies `count` bytes from `address`. Errors: EINVAL for a negative count; EFAULT unless the
    /// range lies in one mapped buffer.
    public func readUserBuffer(at address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        guard count >= 0 else { throw .invalidArgument }
        return try buffers.withLock { buffers throws(Errno) -> [UInt8] in
            let (buffer, offset) = try LinuxBackend.locate(address, count: count, in: buffers)
            return Array(UnsafeRawBufferPointer(start: buffer + offset, count: count))
        }
    }

    /// Frees the buffer that starts at `address`. Errors: EINVAL if none starts there.
    public func unmapUserBuffer(at address: UInt64) throws(Errno) {
        let removed = buffers.withLock { $0.removeValue(forKey: address) }
        guard removed != nil, let pointer = LinuxBackend.pointer(address) else { throw .invalidArgument }
        free(pointer)
    }

    /// How many buffers are mapped (for tests: every call releases what it mapped).
    var mappedBufferCount: Int { buffers.withLock { $0.count } }

    /// The buffer holding `[address, address + count)` and the offset of `address` in it.
    private static func locate(_ address: UInt64, count: Int,
                               in buffers: [UInt64: Int]) throws(Errno) -> (UnsafeMutableRawPointer, Int) {
        for (base, size) in buffers where address >= base {
            let offset = address - base
            guard offset <= UInt64(size), UInt64(count) <= UInt64(size) - offset,
                  let pointer = pointer(base) else { continue }
            return (pointer, Int(offset))
        }
        throw .badAddress
    }

    /// The pointer at a mapped buffer's address.
    private static func pointer(_ address: UInt64) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: UInt(address))
    }
}

/// What the Linux host offers for device assignment, found without issuing any ioctl: for
/// `tsmctl assign --backend linux` to say plainly what is missing before it starts.
public struct LinuxDiagnosis: Sendable, Hashable {
    /// The kernel release examined.
    public let release: String
    /// Its parsed version, or nil if the release does not start with `major.minor`.
    public let version: KernelVersion?
    /// True when `/dev/iommu` exists.
    public let iommufdPresent: Bool
    /// True when this process may open `/dev/iommu` read-write (`access(R_OK | W_OK)`).
    public let iommufdAccessible: Bool
    /// The VFIO device cdevs under `/dev/vfio/devices`, sorted (empty when there are none).
    public let vfioDevices: [String]
    /// The profiles whose command numbers fit ``version``; empty when the version is unknown.
    public let fittingProfiles: [String]
    /// True when the KVM device (`/dev/kvm`) exists.
    public let kvmPresent: Bool
    /// True when this process may open it read-write.
    public let kvmAccessible: Bool
    /// The TSM devices under `/sys/class/tsm` (`tsm0`, …), sorted; empty when none is registered
    /// or the kernel lacks CONFIG_TSM.
    public let tsmDevices: [String]
    /// The PCI devices (`dddd:bb:dd.f`) with a `tsm/connect` attribute (DSM-capable, with a link
    /// TSM registered; kernel-uapi.md §6.5), sorted.
    public let connectableDSMs: [String]
    /// One plain sentence per problem found; empty when nothing is missing.
    public let problems: [String]
}

extension LinuxBackend {
    /// Examines the host without issuing any ioctl or writing anything: `/dev/iommu` (present,
    /// accessible), `/dev/vfio/devices/*`, which profiles fit ``release``, ``kvmPath`` (present,
    /// accessible), the TSM devices under `<sysfsRoot>/class/tsm` and the PCI devices with a
    /// `tsm/connect` attribute under `<sysfsRoot>/bus/pci/devices`. `iommufdPath` and
    /// `vfioDirectory` can be changed for tests (``kvmPath`` and ``sysfsRoot`` at `init`).
    public func diagnose(iommufdPath: String = IOMMUFD.defaultPath,
                         vfioDirectory: String = "/dev/vfio/devices") -> LinuxDiagnosis {
        let version = KernelVersion(release: release)
        let present = access(iommufdPath, F_OK) == 0
        let accessible = present && access(iommufdPath, R_OK | W_OK) == 0
        let devices = LinuxBackend.entries(of: vfioDirectory).map { vfioDirectory + "/" + $0 }
        let fitting = version.map { version in
            UAPIProfile.all.filter { $0.compatibility(with: version) == .compatible }.map(\.name)
        } ?? []
        let kvmPresent = access(kvmPath, F_OK) == 0
        let kvmAccessible = kvmPresent && access(kvmPath, R_OK | W_OK) == 0
        let tsms = LinuxBackend.entries(of: sysfsRoot + "/class/tsm")
        let pciDirectory = sysfsRoot + "/bus/pci/devices"
        let dsms = LinuxBackend.entries(of: pciDirectory).filter { access(pciDirectory + "/" + $0 + "/tsm/connect", F_OK) == 0 }
        var problems: [String] = []
        if version == nil {
            problems.append("cannot read a kernel version from release '\(release)', so no profile can be checked")
        }
        if !present {
            problems.append("\(iommufdPath) does not exist: the kernel has no iommufd (CONFIG_IOMMUFD not set, or the iommufd module not loaded)")
        } else if !accessible {
            problems.append("\(iommufdPath) is not readable and writable by this user: permission denied")
        }
        if devices.isEmpty {
            problems.append("no VFIO device cdev under \(vfioDirectory): bind a device to vfio-pci (the kernel needs CONFIG_VFIO_DEVICE_CDEV)")
        }
        if !kvmPresent {
            problems.append("\(kvmPath) does not exist: the kernel has no KVM (CONFIG_KVM not set, the kvm module not loaded, or no hardware virtualization)")
        } else if !kvmAccessible {
            problems.append("\(kvmPath) is not readable and writable by this user: permission denied (add the user to the kvm group)")
        }
        if tsms.isEmpty {
            problems.append("no TSM device under \(sysfsRoot)/class/tsm: no TSM driver is registered (the kernel needs CONFIG_TSM and a platform TSM driver)")
        }
        if dsms.isEmpty {
            problems.append("no PCI device has a tsm/connect attribute under \(pciDirectory): the kernel lacks CONFIG_PCI_TSM, no link TSM is registered, or no device is DSM-capable")
        }
        return LinuxDiagnosis(release: release, version: version, iommufdPresent: present,
                              iommufdAccessible: accessible, vfioDevices: devices,
                              fittingProfiles: fitting, kvmPresent: kvmPresent, kvmAccessible: kvmAccessible,
                              tsmDevices: tsms, connectableDSMs: dsms, problems: problems)
    }

    /// The names in `directory` other than `.` and `..`, sorted; empty if it cannot be read.
    static func entries(of directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
