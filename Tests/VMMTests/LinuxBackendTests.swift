#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage
import Testing
import UAPI
@testable import VMM

/// The Linux backend through its real paths: real `open(2)`, real `ioctl(2)` (on files that are
/// not iommufds, since this machine has no `/dev/iommu`), and the profile/version check with an
/// injected release string.
@Suite("Linux backend")
struct LinuxBackendTests {
    /// A release before Linux 7.3 (every profile fits), so the tests below reach the real calls.
    static let oldRelease = "7.2.12-amd64"

    static func failure(_ body: () throws -> Void) -> VMMError? {
        RejectionTests.failure(body)
    }

    /// A fresh regular file (not a device), removed by the caller.
    static func temporaryFile() throws -> String {
        var template = Array("/tmp/tsmkit-vmm-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return -1 }
            return mkstemp(base)
        }
        try #require(fd >= 0)
        _ = close(fd)
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static var devIOMMUMissing: Bool { access("/dev/iommu", F_OK) != 0 }

    @Test("no /dev/iommu → iommufdUnavailable, ENOENT, at 'open iommufd', saying CONFIG_IOMMUFD",
          .enabled(if: devIOMMUMissing))
    func missingDevIOMMU() {
        let error = Self.failure { _ = try IOMMUFD.open(backend: LinuxBackend(release: Self.oldRelease)) }
        #expect(error?.code == .iommufdUnavailable)
        #expect(error?.step == .openIOMMUFD)
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.reason.contains("/dev/iommu") == true)
        #expect(error?.reason.contains("CONFIG_IOMMUFD") == true)
    }

    @Test("profile check against the kernel release (spec 2.1 'Mainline today')",
          arguments: [
              ("7.3.4-amd64", "revised", "profileMismatch"),
              ("7.3.0", "v5", "profileMismatch"),
              ("8.1.2", "revised", "profileMismatch"),
              ("7.3.4-amd64", "rev-k", "admitted"),
              ("7.2.12", "revised", "admitted"),
              ("7.2.12", "v5", "admitted"),
              ("6.18.44-fc-v595", "revised", "admitted"),
              ("not-a-version", "rev-k", "unknownKernelVersion"),
              ("", "revised", "unknownKernelVersion"),
          ])
    func profileCheck(release: String, profileName: String, outcome: String) throws {
        let backend = LinuxBackend(release: release)
        let profile = try UAPIProfile.named(profileName)
        let error = Self.failure { try backend.admit(profile) }
        switch outcome {
        case "admitted":
            #expect(error == nil)
        case "profileMismatch":
            #expect(error?.code == .profileMismatch)
            #expect(error?.step == .checkKernel)
            #expect(error?.errno == nil)
            #expect(error?.reason.contains("IOMMU_IOAS_NOIOMMU_GET_PA") == true)
            #expect(error?.reason.contains("profile that fits: rev-k") == true)
        default:
            #expect(error?.code == .unknownKernelVersion)
            #expect(error?.step == .checkKernel)
        }
    }

    @Test("a refused profile opens nothing: the error is the version check, not the missing file")
    func refusalBeforeOpen() {
        let error = Self.failure {
            _ = try IOMMUFD.open(backend: LinuxBackend(release: "7.3.4"), profile: .revised, path: "/nonexistent/iommu")
        }
        #expect(error?.code == .profileMismatch)
        #expect(error?.step == .checkKernel)
    }

    @Test("an admitted rev-k on 7.3 goes on to open(2)")
    func admittedRevKOpens() {
        let error = Self.failure {
            _ = try IOMMUFD.open(backend: LinuxBackend(release: "7.3.4"), profile: .revK, path: "/nonexistent/iommu")
        }
        #expect(error?.code == .iommufdUnavailable)
        #expect(error?.errno == .noSuchFileOrDirectory)
    }

    @Test("the running release is read from uname(2)")
    func runningRelease() throws {
        let release = try #require(LinuxBackend.runningRelease())
        #expect(KernelVersion(release: release) != nil)
        #expect(LinuxBackend().release == release)
    }

    @Test("a regular file as the iommufd: real ioctls answer ENOTTY → notIOMMUFD / tsmUAPIUnavailable")
    func regularFileAsIOMMUFD() throws {
        let path = try Self.temporaryFile()
        defer { unlink(path) }
        let backend = LinuxBackend(release: Self.oldRelease)
        let iommufd = try IOMMUFD.open(backend: backend, path: path)

        let alloc = Self.failure { _ = try iommufd.allocIOAS() }
        #expect(alloc?.code == .notIOMMUFD)
        #expect(alloc?.step == .ioasAlloc)
        #expect(alloc?.errno == .inappropriateIOCTLForDevice)

        let destroy = Self.failure { try iommufd.destroy(id: 1) }
        #expect(destroy?.code == .notIOMMUFD)
        #expect(destroy?.step == .destroy)

        let bind = Self.failure { try iommufd.tsmBind(VDeviceID(1)) }
        #expect(bind?.code == .tsmUAPIUnavailable)
        #expect(bind?.step == .tsmOp)
        #expect(bind?.errno == .inappropriateIOCTLForDevice)
        #expect(bind?.reason.contains("0x3B95") == true)

        let request = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: .readObject, tvmArch: .cca, request: [1, 2, 3], responseCapacity: 64)
        }
        #expect(request?.code == .tsmUAPIUnavailable)
        #expect(request?.step == .tsmReq)
        #expect(request?.errno == .inappropriateIOCTLForDevice)
        #expect(request?.tsmCode == 0)
        #expect(backend.mappedBufferCount == 0)
    }

    @Test("a regular file as a VFIO cdev: VFIO_DEVICE_BIND_IOMMUFD answers ENOTTY → notVFIODevice")
    func regularFileAsVFIODevice() throws {
        let path = try Self.temporaryFile()
        defer { unlink(path) }
        let backend = LinuxBackend(release: Self.oldRelease)
        let iommufd = try IOMMUFD.open(backend: backend, path: path)
        let vfio = try VFIODevice.open(path, backend: backend)
        let error = Self.failure { _ = try vfio.bind(to: iommufd) }
        #expect(error?.code == .notVFIODevice)
        #expect(error?.step == .vfioBind)
        #expect(error?.errno == .inappropriateIOCTLForDevice)
    }

    @Test("a missing VFIO cdev → vfioDeviceUnavailable, ENOENT")
    func missingVFIODevice() {
        let error = Self.failure {
            _ = try VFIODevice.open("/nonexistent/vfio/devices/vfio0", backend: LinuxBackend(release: Self.oldRelease))
        }
        #expect(error?.code == .vfioDeviceUnavailable)
        #expect(error?.step == .openVFIODevice)
        #expect(error?.errno == .noSuchFileOrDirectory)
    }

    @Test("a directory as the iommufd → kernelError, EISDIR")
    func directoryAsIOMMUFD() {
        let error = Self.failure {
            _ = try IOMMUFD.open(backend: LinuxBackend(release: Self.oldRelease), path: "/tmp")
        }
        #expect(error?.code == .kernelError)
        #expect(error?.errno == .isDirectory)
    }

    @Test("an unreadable file as a non-root user → permissionDenied, EACCES", .enabled(if: geteuid() != 0))
    func permissionDenied() throws {
        let path = try Self.temporaryFile()
        defer { unlink(path) }
        try #require(chmod(path, 0) == 0)
        let error = Self.failure { _ = try IOMMUFD.open(backend: LinuxBackend(release: Self.oldRelease), path: path) }
        #expect(error?.code == .permissionDenied)
        #expect(error?.errno == .permissionDenied)
    }

    /// The inode `fd` refers to, or nil when `fd` is not open.
    static func inode(of fd: Int32) -> UInt64? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// The inode of `path`.
    static func inode(path: String) -> UInt64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// Tests run in parallel and may reuse a closed descriptor number, so "closed" is checked as
    /// "the number no longer refers to this test's own (uniquely named) file".
    @Test("close() really closes the descriptor; so does dropping the handle")
    func closeReleasesDescriptor() throws {
        let path = try Self.temporaryFile()
        defer { unlink(path) }
        let fileInode = try #require(Self.inode(path: path))
        let backend = LinuxBackend(release: Self.oldRelease)
        let iommufd = try IOMMUFD.open(backend: backend, path: path)
        let fd = iommufd.fileDescriptor
        #expect(Self.inode(of: fd) == fileInode)
        try iommufd.close()
        #expect(Self.inode(of: fd) != fileInode)

        var dropped: Int32 = -1
        do {
            let vfio = try VFIODevice.open(path, backend: backend)
            dropped = vfio.fileDescriptor
            #expect(Self.inode(of: dropped) == fileInode)
        }
        #expect(Self.inode(of: dropped) != fileInode)
    }

    @Test("user memory: real addresses, bounds-checked reads and writes")
    func userMemory() throws {
        let backend = LinuxBackend(release: Self.oldRelease)
        let address = try backend.mapUserBuffer(count: 8)
        #expect(address != 0)
        #expect(address % 16 == 0)
        try backend.writeUserBuffer(at: address + 2, [1, 2, 3])
        #expect(try backend.readUserBuffer(at: address, count: 8) == [0, 0, 1, 2, 3, 0, 0, 0])
        // The address is the real pointer the kernel would read.
        let pointer = try #require(UnsafeRawPointer(bitPattern: UInt(address)))
        #expect(pointer.load(fromByteOffset: 3, as: UInt8.self) == 2)

        #expect(throws: Errno.badAddress) { try backend.readUserBuffer(at: address + 4, count: 5) }
        #expect(throws: Errno.badAddress) { try backend.writeUserBuffer(at: address &- 1, [1]) }
        #expect(throws: Errno.badAddress) { try backend.readUserBuffer(at: 0, count: 1) }
        #expect(throws: Errno.invalidArgument) { try backend.readUserBuffer(at: address, count: -1) }
        #expect(throws: Errno.invalidArgument) { try backend.mapUserBuffer(count: 0) }
        #expect(throws: Errno.noMemory) { try backend.mapUserBuffer(count: Int.max) }
        #expect(throws: Errno.invalidArgument) { try backend.unmapUserBuffer(at: address + 1) }
        try backend.unmapUserBuffer(at: address)
        #expect(backend.mappedBufferCount == 0)
        #expect(throws: Errno.badAddress) { try backend.readUserBuffer(at: address, count: 1) }
    }

    @Test("the raw entry point returns the kernel's errno unchanged")
    func rawIoctl() throws {
        let path = try Self.temporaryFile()
        defer { unlink(path) }
        let backend = LinuxBackend(release: Self.oldRelease)
        let iommufd = try IOMMUFD.open(backend: backend, path: path)
        var argument = IOMMUIOASAlloc().encode()
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try iommufd.ioctl(request: 0x3B81, argument: &argument) }
        #expect(throws: Errno.badFileDescriptor) { try backend.ioctl(-1, request: 0x3B81, argument: &argument) }
    }
}

@Suite("Linux host diagnosis")
struct LinuxDiagnosisTests {
    @Test("this host: no /dev/iommu is reported as a missing iommufd", .enabled(if: LinuxBackendTests.devIOMMUMissing))
    func missingIOMMUFD() {
        let diagnosis = LinuxBackend(release: "7.3.4-amd64").diagnose()
        #expect(diagnosis.iommufdPresent == false)
        #expect(diagnosis.iommufdAccessible == false)
        #expect(diagnosis.fittingProfiles == ["rev-k"])
        #expect(diagnosis.problems.contains { $0.contains("CONFIG_IOMMUFD") })
    }

    @Test("fitting profiles follow the release", arguments: [
        ("7.2.12", ["revised", "v5", "rev-k"]), ("7.3.4-amd64", ["rev-k"]), ("garbage", []),
    ])
    func fittingProfiles(release: String, expected: [String]) {
        let diagnosis = LinuxBackend(release: release).diagnose(iommufdPath: "/nonexistent", vfioDirectory: "/nonexistent")
        #expect(diagnosis.fittingProfiles == expected)
        #expect(diagnosis.problems.contains { $0.contains("cannot read a kernel version") } == expected.isEmpty)
    }

    @Test("a readable file and a directory of cdevs: no problems reported")
    func everythingPresent() throws {
        let file = try LinuxBackendTests.temporaryFile()
        defer { unlink(file) }
        let directory = file + ".d"
        try #require(mkdir(directory, 0o700) == 0)
        let cdev = directory + "/vfio0"
        let created = creat(cdev, 0o600)
        try #require(created >= 0)
        _ = close(created)
        defer { unlink(cdev); rmdir(directory) }
        let sysfs = try LinuxKVMTests.sysfs(["class/tsm/tsm0/", "bus/pci/devices/0000:e1:00.0/tsm/connect"])
        defer { LinuxKVMTests.remove(sysfs) }
        let diagnosis = LinuxBackend(release: "7.2.0", kvmPath: file, sysfsRoot: sysfs)
            .diagnose(iommufdPath: file, vfioDirectory: directory)
        #expect(diagnosis.iommufdPresent)
        #expect(diagnosis.iommufdAccessible)
        #expect(diagnosis.vfioDevices == [cdev])
        #expect(diagnosis.kvmPresent && diagnosis.kvmAccessible)
        #expect(diagnosis.tsmDevices == ["tsm0"])
        #expect(diagnosis.connectableDSMs == ["0000:e1:00.0"])
        #expect(diagnosis.problems.isEmpty)
    }
}
