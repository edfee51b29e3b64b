#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CIOMMUFD
import Foundation
import Kernel
import SystemPackage
import Testing
import UAPI
@testable import VMM

/// The Linux backend's KVM side and the DSM's sysfs connect, through the paths this machine has:
/// the kernel's request codes, missing devices, real ENOTTY from a regular file standing in for
/// `/dev/kvm` or a VM, a temporary directory standing in for `/sys`; and, where `/dev/kvm` can be
/// opened, the real KVM_CREATE_VM / KVM_CREATE_DEVICE / KVM_DEV_VFIO_FILE_ADD.
@Suite("Linux backend: KVM and sysfs")
struct LinuxKVMTests {
    static let release = LinuxBackendTests.oldRelease
    static let dsm = PCIFunctionAddress(bus: 0xE1, device: 0, function: 0)
    /// True where this host can really make a VM: /dev/kvm opens and KVM_CREATE_VM succeeds (a
    /// container may show /dev/kvm without a working KVM behind it; the real-KVM test needs one).
    static var kvmUsable: Bool {
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { return false }
        let backend = LinuxBackend(release: release)
        guard let vm = try? backend.createVM() else { return false }
        try? backend.close(vm)
        return true
    }

    /// Linux include/uapi/linux/kvm.h: KVMIO 0xAE; `_IO(KVMIO, 0x00)` KVM_GET_API_VERSION,
    /// `_IO(KVMIO, 0x01)` KVM_CREATE_VM, `_IOWR(KVMIO, 0xe0, struct kvm_create_device)` (12 bytes:
    /// dir 3 << 30 | 12 << 16 | 0xAE << 8 | 0xE0), `_IOW(KVMIO, 0xe1 / 0xe3, struct kvm_device_attr)`
    /// (24 bytes: 1 << 30 | 24 << 16 | …).
    @Test("request codes are the kernel's, and the C compiler's _IO/_IOW/_IOWR agree")
    func requestCodes() throws {
        let expected: [(String, UInt32, Int)] = [
            ("KVM_GET_API_VERSION", 0xAE00, 0), ("KVM_CREATE_VM", 0xAE01, 0),
            ("KVM_CREATE_DEVICE", 0xC00C_AEE0, 12), ("KVM_SET_DEVICE_ATTR", 0x4018_AEE1, 24),
            ("KVM_HAS_DEVICE_ATTR", 0x4018_AEE3, 24),
        ]
        #expect(KVMUAPI.getAPIVersion == 0xAE00)
        #expect(KVMUAPI.createVM == 0xAE01)
        #expect(KVMUAPI.createDeviceRequest == 0xC00C_AEE0)
        #expect(KVMUAPI.setDeviceAttr == 0x4018_AEE1)
        #expect(KVMUAPI.hasDeviceAttr == 0x4018_AEE3)
        #expect(ciommufd_kvm_command_count() == expected.count)
        for (index, (name, request, size)) in expected.enumerated() {
            let row = try #require(ciommufd_kvm_command_at(index))
            #expect(String(cString: row.pointee.name) == name)
            #expect(row.pointee.argument_size == size)
            #expect(row.pointee.request == UInt(request), "\(name)")
        }
        #expect(MemoryLayout<ciommufd_kvm_create_device>.size == KVMUAPI.createDeviceSize)
        #expect(MemoryLayout<ciommufd_kvm_device_attr>.size == KVMUAPI.deviceAttrSize)
        #expect(MemoryLayout<ciommufd_kvm_device_attr>.offset(of: \.addr) == 16)
        // kvm.h: enum kvm_device_type FSL_MPIC_20 = 1, FSL_MPIC_42, XICS, VFIO → 4; KVM_DEV_VFIO_FILE 1, _ADD 1.
        #expect(KVMUAPI.deviceTypeVFIO == 4 && CIOMMUFD_KVM_DEV_TYPE_VFIO == 4)
        #expect(KVMUAPI.vfioFileGroup == 1 && KVMUAPI.vfioFileAdd == 1 && KVMUAPI.vfioFileDel == 2)
    }

    @Test("struct kvm_create_device and struct kvm_device_attr bytes")
    func structBytes() {
        #expect(KVMUAPI.createDevice(type: 4) == [4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(KVMUAPI.createdDeviceFD([4, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]) == 9)
        #expect(KVMUAPI.createdDeviceFD([4, 0, 0]) == nil)
        #expect(KVMUAPI.deviceAttribute(group: 1, attribute: 1, address: 0x1122_3344_5566_7788)
                == [0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
    }

    @Test("no /dev/kvm → kvmUnavailable, ENOENT, one sentence naming CONFIG_KVM")
    func missingKVM() {
        let backend = LinuxBackend(release: Self.release, kvmPath: "/nonexistent/kvm")
        let error = LinuxBackendTests.failure { _ = try backend.createVM() }
        #expect(error?.code == .kvmUnavailable)
        #expect(error?.step == .openKVM)
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.reason.contains("/nonexistent/kvm") == true)
        #expect(error?.reason.contains("CONFIG_KVM") == true)
        #expect(error?.description.contains("\n") == false)
    }

    @Test("a regular file as /dev/kvm: real ENOTTY from KVM_GET_API_VERSION → notKVM; nothing left open")
    func regularFileAsKVM() throws {
        let file = try LinuxBackendTests.temporaryFile()
        defer { unlink(file) }
        let backend = LinuxBackend(release: Self.release, kvmPath: file)
        let error = LinuxBackendTests.failure { _ = try backend.createVM() }
        #expect(error?.code == .notKVM)
        #expect(error?.step == .kvmGetAPIVersion)
        #expect(error?.errno == .inappropriateIOCTLForDevice)
        #expect(backend.kvmVMs.withLock { $0.isEmpty })
    }

    @Test("a regular file as the VM: real ENOTTY from KVM_CREATE_DEVICE → kvmVFIOUnsupported")
    func regularFileAsVM() throws {
        let file = try LinuxBackendTests.temporaryFile()
        defer { unlink(file) }
        let backend = LinuxBackend(release: Self.release)
        let vm = try backend.open(file)
        defer { try? backend.close(vm) }
        let vfio = try VFIODevice.open(file, backend: backend)
        let error = LinuxBackendTests.failure { try backend.addToVM(vm, vfio: vfio) }
        #expect(error?.code == .kvmVFIOUnsupported)
        #expect(error?.step == .kvmCreateDevice)
        #expect(error?.errno == .inappropriateIOCTLForDevice)
    }

    @Test("a VFIO device of another backend → backendMismatch, nothing issued")
    func otherBackend() throws {
        let file = try LinuxBackendTests.temporaryFile()
        defer { unlink(file) }
        let backend = LinuxBackend(release: Self.release)
        let vfio = try VFIODevice.open(file, backend: LinuxBackend(release: Self.release))
        let error = LinuxBackendTests.failure { try backend.addToVM(-1, vfio: vfio) }
        #expect(error?.code == .backendMismatch)
        #expect(error?.errno == nil)
    }

    @Test("an unreadable /dev/kvm as a non-root user → permissionDenied, EACCES", .enabled(if: geteuid() != 0))
    func permission() throws {
        let file = try LinuxBackendTests.temporaryFile()
        defer { unlink(file) }
        try #require(chmod(file, 0) == 0)
        let error = LinuxBackendTests.failure { _ = try LinuxBackend(release: Self.release, kvmPath: file).createVM() }
        #expect(error?.code == .permissionDenied)
        #expect(error?.errno == .permissionDenied)
    }

    /// virt/kvm/vfio.c `kvm_vfio_file_add`: a file that is not a VFIO file is refused with EINVAL.
    @Test("real KVM: KVM_CREATE_VM, KVM_CREATE_DEVICE(VFIO) once per VM, FILE_ADD of a non-VFIO file → EINVAL",
          .enabled(if: kvmUsable))
    func realKVM() throws {
        let file = try LinuxBackendTests.temporaryFile()
        defer { unlink(file) }
        let backend = LinuxBackend(release: Self.release)
        let vm = try backend.createVM()
        #expect(vm >= 0)
        let vfio = try VFIODevice.open(file, backend: backend)
        for _ in 0..<2 {  // the second call reuses the VM's KVM-VFIO device (a second one is EBUSY)
            let error = LinuxBackendTests.failure { try backend.addToVM(vm, vfio: vfio) }
            #expect(error?.code == .kvmVFIOUnsupported)
            if error?.step == .kvmVFIOFileAdd { #expect(error?.errno == .invalidArgument) }
        }
        let entry = try #require(backend.kvmVMs.withLock { $0[vm] })
        #expect(entry.owned)
        let device = entry.device
        try backend.close(vm)
        #expect(backend.kvmVMs.withLock { $0[vm] } == nil)
        if device >= 0 { #expect(fcntl(device, F_GETFD) == -1) }  // closed with the VM
    }

    // MARK: sysfs

    /// A temporary directory standing in for /sys, with `bus/pci/devices/<device>/` and the given
    /// entries under it (directories end with "/").
    static func sysfs(_ entries: [String]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tsmkit-sysfs-\(UUID().uuidString)").path
        for entry in entries {
            let path = root + "/" + entry
            let directory = entry.hasSuffix("/") ? path : (path as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if !entry.hasSuffix("/") { try #require(FileManager.default.createFile(atPath: path, contents: Data())) }
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    static func remove(_ root: String) {
        try? FileManager.default.removeItem(atPath: root)
    }

    static func contents(_ path: String) -> String? {
        guard let fd = try? FileDescriptor.open(FilePath(path), .readOnly) else { return nil }
        defer { try? fd.close() }
        var buffer = [UInt8](repeating: 0, count: 64)
        guard let count = try? buffer.withUnsafeMutableBytes({ try fd.read(into: $0) }) else { return nil }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
    }

    /// kernel-uapi.md §6.5: the host administrator writes the TSM's name (`tsmN`) to the DSM's
    /// `tsm/connect`, and to `tsm/disconnect` to undo it.
    @Test("connect / disconnect write tsm0 to the DSM's tsm attributes")
    func connectWrites() throws {
        let root = try Self.sysfs(["bus/pci/devices/0000:e1:00.0/tsm/connect", "bus/pci/devices/0000:e1:00.0/tsm/disconnect"])
        defer { Self.remove(root) }
        let backend = LinuxBackend(release: Self.release, sysfsRoot: root)
        let device = root + "/bus/pci/devices/0000:e1:00.0"
        #expect(backend.sysfsDevicePath(Self.dsm) == device)
        try backend.connectDSM(Self.dsm)
        #expect(Self.contents(device + "/tsm/connect") == "tsm0")
        #expect(backend.connectedTSM(Self.dsm) == "tsm0")
        try backend.disconnectDSM(Self.dsm, tsm: "tsm12")
        #expect(Self.contents(device + "/tsm/disconnect") == "tsm12")
    }

    @Test("a name that is not tsmN → invalidArgument, nothing written", arguments: ["tsm", "tsmX", "tsm0\n", "foo0", ""])
    func badName(name: String) throws {
        let root = try Self.sysfs(["bus/pci/devices/0000:e1:00.0/tsm/connect"])
        defer { Self.remove(root) }
        let backend = LinuxBackend(release: Self.release, sysfsRoot: root)
        let error = LinuxBackendTests.failure { try backend.connectDSM(Self.dsm, tsm: name) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.step == .tsmConnect)
        #expect(Self.contents(root + "/bus/pci/devices/0000:e1:00.0/tsm/connect") == "")
    }

    @Test("no tsm/ group (no CONFIG_PCI_TSM) and no such device → tsmSysfsUnavailable, ENOENT")
    func missingAttribute() throws {
        let root = try Self.sysfs(["bus/pci/devices/0000:e1:00.0/"])
        defer { Self.remove(root) }
        let backend = LinuxBackend(release: Self.release, sysfsRoot: root)
        let error = LinuxBackendTests.failure { try backend.connectDSM(Self.dsm) }
        #expect(error?.code == .tsmSysfsUnavailable)
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.reason.contains("tsm/connect does not exist") == true)
        #expect(error?.reason.contains("CONFIG_PCI_TSM") == true)
        let absent = LinuxBackendTests.failure { try backend.disconnectDSM(PCIFunctionAddress(bus: 0xE2, device: 0, function: 0)) }
        #expect(absent?.code == .tsmSysfsUnavailable)
        #expect(absent?.step == .tsmDisconnect)
        #expect(absent?.reason.contains("no PCI device 0000:e2:00.0") == true)
        #expect(backend.connectedTSM(Self.dsm) == nil)
    }

    @Test("the VFIO cdev of a function comes from sysfs vfio-dev/; none → vfioDeviceUnavailable")
    func vfioPath() throws {
        let root = try Self.sysfs(["bus/pci/devices/0000:e1:04.0/vfio-dev/vfio3/", "bus/pci/devices/0000:e1:00.0/"])
        defer { Self.remove(root) }
        let backend = LinuxBackend(release: Self.release, sysfsRoot: root)
        #expect(try backend.vfioDevicePath(for: PCIFunctionAddress(bus: 0xE1, device: 4, function: 0)) == "/dev/vfio/devices/vfio3")
        let unbound = LinuxBackendTests.failure { _ = try backend.vfioDevicePath(for: Self.dsm) }
        #expect(unbound?.code == .vfioDeviceUnavailable)
        #expect(unbound?.reason.contains("vfio-pci") == true)
    }

    @Test("diagnosis names a missing /dev/kvm and missing tsm sysfs attributes")
    func diagnosis() throws {
        let root = try Self.sysfs(["bus/pci/devices/0000:e1:00.0/"])
        defer { Self.remove(root) }
        let diagnosis = LinuxBackend(release: Self.release, kvmPath: "/nonexistent/kvm", sysfsRoot: root).diagnose()
        #expect(!diagnosis.kvmPresent && !diagnosis.kvmAccessible)
        #expect(diagnosis.tsmDevices.isEmpty && diagnosis.connectableDSMs.isEmpty)
        #expect(diagnosis.problems.contains { $0.hasPrefix("/nonexistent/kvm does not exist") && $0.contains("CONFIG_KVM") })
        #expect(diagnosis.problems.contains { $0.contains("/class/tsm") })
        #expect(diagnosis.problems.contains { $0.contains("tsm/connect") && $0.contains("CONFIG_PCI_TSM") })
    }
}
