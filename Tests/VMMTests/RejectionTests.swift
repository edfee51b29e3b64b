import SystemPackage
import Testing
import UAPI
@testable import VMM

/// Every rejection the typed layer makes itself, and how it reports the kernel's: exact code,
/// step and errno (or nil for checks before any call).
@Suite("VMM rejection paths")
struct RejectionTests {
    /// The VMMError `body` throws, or nil if it returns; any other error is recorded as an issue.
    static func failure(_ body: () throws -> Void) -> VMMError? {
        do {
            try body()
            return nil
        } catch let error as VMMError {
            return error
        } catch {
            Issue.record("expected a VMMError, got \(error)")
            return nil
        }
    }

    @Test("op + tvm_arch on a v5 profile → requestFormMismatch at validateArguments, nothing issued")
    func opOnV5() throws {
        let backend = RecordingBackend()
        let iommufd = try IOMMUFD.open(backend: backend, profile: .v5)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: .readObject, tvmArch: .cca, request: [1], responseCapacity: 4)
        }
        #expect(error?.code == .requestFormMismatch)
        #expect(error?.step == .validateArguments)
        #expect(error?.errno == nil)
        #expect(backend.calls.isEmpty)
        #expect(backend.mappedBufferCount == 0)
    }

    @Test("scope on a revised profile → requestFormMismatch, nothing issued")
    func scopeOnRevised() throws {
        let backend = RecordingBackend()
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), scope: .pciInfo, request: [], responseCapacity: 0)
        }
        #expect(error?.code == .requestFormMismatch)
        #expect(error?.step == .validateArguments)
        #expect(backend.calls.isEmpty)
    }

    @Test("an op rev-k does not number (READ_OBJECT, REGEN_OBJECT, OBJECT_INFO) → invalidArgument",
          arguments: [GuestRequestOp.readObject, .regenObject, .objectInfo])
    func opNotInRevK(op: GuestRequestOp) throws {
        let backend = RecordingBackend()
        let iommufd = try IOMMUFD.open(backend: backend, profile: .revK)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: op, tvmArch: .cca, request: [], responseCapacity: 0)
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.step == .validateArguments)
        #expect(error?.reason.contains(op.kernelName) == true)
        #expect(backend.calls.isEmpty)
    }

    @Test("a response capacity outside 0...16 MiB → invalidArgument, nothing mapped",
          arguments: [-1, (1 << 24) + 1, Int(UInt32.max) + 1])
    func badCapacity(capacity: Int) throws {
        let backend = RecordingBackend()
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: .readObject, tvmArch: .cca, request: [1], responseCapacity: capacity)
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.step == .validateArguments)
        #expect(backend.calls.isEmpty)
        #expect(backend.mappedBufferCount == 0)
    }

    @Test("a request above 16 MiB → invalidArgument, nothing issued")
    func requestTooLarge() throws {
        let backend = RecordingBackend()
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: .readObject, tvmArch: .cca,
                                       request: [UInt8](repeating: 0, count: (1 << 24) + 1), responseCapacity: 0)
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.step == .validateArguments)
        #expect(backend.calls.isEmpty)
    }

    @Test("user memory that cannot be mapped → kernelError ENOMEM at 'user memory', nothing issued")
    func mappingFails() throws {
        let backend = RecordingBackend()
        backend.failMapping(with: .noMemory)
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: .readObject, tvmArch: .cca, request: [1], responseCapacity: 8)
        }
        #expect(error?.code == .kernelError)
        #expect(error?.step == .userMemory)
        #expect(error?.errno == .noMemory)
        #expect(backend.calls.isEmpty)
    }

    @Test("a response buffer that vanished during the call → EFAULT at 'user memory', the rest released")
    func responseBufferVanished() throws {
        let backend = RecordingBackend { backend, _, argument throws(Errno) in
            guard let respUptr = TypedCallBytesTests.u64(argument, 32) else { throw .badAddress }
            try backend.unmapUserBuffer(at: respUptr)
            return 0
        }
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: .readObject, tvmArch: .cca, request: [1], responseCapacity: 8)
        }
        #expect(error?.code == .kernelError)
        #expect(error?.step == .userMemory)
        #expect(error?.errno == .badAddress)
        #expect(backend.mappedBufferCount == 0)
    }

    @Test("a residue above the response capacity → invalidResidue at TSM_REQ, buffers released")
    func residueTooLarge() throws {
        let backend = RecordingBackend { _, _, _ in 9 }
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: .readObject, tvmArch: .cca, request: [1], responseCapacity: 8)
        }
        #expect(error?.code == .invalidResidue)
        #expect(error?.step == .tsmReq)
        #expect(error?.errno == nil)
        #expect(backend.mappedBufferCount == 0)
    }

    @Test("a residue above the request when there is no response buffer → invalidResidue")
    func residueAboveRequest() throws {
        let backend = RecordingBackend { _, _, _ in 3 }
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: .setTDIState, tvmArch: .cca, request: [1, 2], responseCapacity: 0)
        }
        #expect(error?.code == .invalidResidue)
    }

    @Test("a driver errno with tsm_code written back (spec 4.3 step 14) → kernelError carrying both")
    func driverFailureKeepsTSMCode() throws {
        let backend = RecordingBackend { _, _, argument throws(Errno) in
            TypedCallBytesTests.put64(0xDEAD_BEEF, &argument, 40)
            throw .ioError
        }
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(1), op: .readObject, tvmArch: .cca, request: [1], responseCapacity: 8)
        }
        #expect(error?.code == .kernelError)
        #expect(error?.step == .tsmReq)
        #expect(error?.errno == .ioError)
        #expect(error?.tsmCode == 0xDEAD_BEEF)
        #expect(backend.mappedBufferCount == 0)
    }

    @Test("kernel errnos keep their step and errno",
          arguments: [(Errno.noSuchFileOrDirectory, "IOMMU_VDEVICE_TSM_OP"), (.resourceBusy, "IOMMU_VDEVICE_TSM_OP"),
                      (.operationNotSupportedByDevice, "IOMMU_VDEVICE_TSM_OP"), (.noSuchAddressOrDevice, "IOMMU_VDEVICE_TSM_REQ"),
                      (.invalidArgument, "IOMMU_VDEVICE_TSM_REQ"), (.resourceBusy, "IOMMU_DESTROY"),
                      (.fileExists, "IOMMU_VDEVICE_ALLOC"), (.notSupported, "IOMMU_VIOMMU_ALLOC")])
    func kernelErrnos(errno: Errno, stepName: String) throws {
        let backend = RecordingBackend { _, _, _ throws(Errno) in throw errno }
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure {
            switch stepName {
            case "IOMMU_VDEVICE_TSM_OP": try iommufd.tsmBind(VDeviceID(1))
            case "IOMMU_VDEVICE_TSM_REQ":
                _ = try iommufd.tsmRequest(VDeviceID(1), op: .readObject, tvmArch: .cca, request: [], responseCapacity: 0)
            case "IOMMU_DESTROY": try iommufd.destroy(IOASID(1))
            case "IOMMU_VDEVICE_ALLOC": _ = try iommufd.allocVDevice(viommu: VIOMMUID(1), device: DevID(1), virtID: 0)
            default: _ = try iommufd.allocVIOMMU(device: DevID(1), hwpt: HWPTID(1), type: 0)
            }
        }
        #expect(error?.code == .kernelError)
        #expect(error?.step.rawValue == stepName)
        #expect(error?.errno == errno)
    }

    @Test("the classification table (VMMError.classify)",
          arguments: [
              (Errno.permissionDenied, VMMStep.openIOMMUFD, VMMError.Code.permissionDenied),
              (.notPermitted, .openVFIODevice, .permissionDenied),
              (.notPermitted, .tsmReq, .permissionDenied),
              (.noSuchFileOrDirectory, .openIOMMUFD, .iommufdUnavailable),
              (.operationNotSupportedByDevice, .openIOMMUFD, .iommufdUnavailable),
              (.noSuchAddressOrDevice, .openIOMMUFD, .iommufdUnavailable),
              (.noSuchFileOrDirectory, .openVFIODevice, .vfioDeviceUnavailable),
              (.operationNotSupportedByDevice, .openVFIODevice, .vfioDeviceUnavailable),
              (.inappropriateIOCTLForDevice, .tsmOp, .tsmUAPIUnavailable),
              (.inappropriateIOCTLForDevice, .tsmReq, .tsmUAPIUnavailable),
              (.inappropriateIOCTLForDevice, .vfioBind, .notVFIODevice),
              (.inappropriateIOCTLForDevice, .ioasAlloc, .notIOMMUFD),
              (.inappropriateIOCTLForDevice, .destroy, .notIOMMUFD),
              (.noSuchFileOrDirectory, .tsmOp, .kernelError),
              (.noSuchAddressOrDevice, .tsmReq, .kernelError),
              (.resourceBusy, .openVFIODevice, .kernelError),
          ])
    func classification(errno: Errno, step: VMMStep, code: VMMError.Code) {
        let error = VMMError.classify(errno, step: step, subject: "x", environment: "y")
        #expect(error.code == code)
        #expect(error.step == step)
        #expect(error.errno == errno)
    }

    @Test("errors are equal by code only")
    func equalByCode() {
        let one = VMMError(.kernelError, step: .tsmOp, errno: .noSuchFileOrDirectory, reason: "a")
        let two = VMMError(.kernelError, step: .destroy, errno: .resourceBusy, reason: "b")
        let three = VMMError(.notIOMMUFD, step: .tsmOp, errno: .noSuchFileOrDirectory, reason: "a")
        #expect(one == two)
        #expect(one != three)
        #expect(one.description == "IOMMU_VDEVICE_TSM_OP: a (ENOENT)")
        // A reason that names its errno in parentheses does not get it twice.
        let named = VMMError(.kernelError, step: .tsmOp, errno: .noSuchFileOrDirectory, reason: "gone (ENOENT): really")
        #expect(named.description == "IOMMU_VDEVICE_TSM_OP: gone (ENOENT): really")
    }

    @Test("a VFIO device from another backend → backendMismatch, nothing issued")
    func backendMismatch() throws {
        let first = RecordingBackend(environment: "first")
        let second = RecordingBackend(environment: "second")
        let iommufd = try IOMMUFD.open(backend: first)
        let vfio = try VFIODevice.open("/dev/vfio/devices/vfio0", backend: second)
        let error = Self.failure { _ = try vfio.bind(to: iommufd) }
        #expect(error?.code == .backendMismatch)
        #expect(error?.step == .vfioBind)
        #expect(first.calls.isEmpty && second.calls.isEmpty)
    }

    @Test("a backend that changes the struct's size → malformedReply")
    func malformedReply() throws {
        let backend = RecordingBackend { _, _, argument in
            argument.removeLast()
            return 0
        }
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = Self.failure { _ = try iommufd.allocIOAS() }
        #expect(error?.code == .malformedReply)
        #expect(error?.step == .ioasAlloc)
    }

    @Test("close() closes exactly once; dropping the handle closes it too")
    func closesOnce() throws {
        let backend = RecordingBackend()
        do {
            let iommufd = try IOMMUFD.open(backend: backend)
            let vfio = try VFIODevice.open("/dev/vfio/devices/vfio0", backend: backend)
            #expect(backend.openFiles.count == 2)
            try vfio.close()
            #expect(backend.openFiles == [iommufd.fileDescriptor])
        }
        #expect(backend.openFiles.isEmpty)
    }
}
