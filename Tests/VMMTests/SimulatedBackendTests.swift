import Synchronization
import Kernel
import SystemPackage
import Testing
import UAPI
@testable import VMM

/// A simulated host with the kernel sample's topology (spec 7.1), the sample link TSM as tsm0, and
/// the VMM library's simulated backend on it.
struct SimulatedHost {
    static let dsm = PCIFunctionAddress(domain: 0x10000, bus: 1, device: 0, function: 0)
    static let function1 = PCIFunctionAddress(domain: 0x10000, bus: 1, device: 0, function: 1)

    let kernel: SimulatedKernel
    let sample: SampleLinkTSM
    let backend: SimulatedBackend

    init(profile: UAPIProfile = .revised, configuration: SimulatedKernel.Configuration = .init()) throws {
        kernel = try SimulatedKernel(profile: profile, configuration: configuration,
                                     functions: KernelPCIFunction.devsecSampleTopology())
        sample = SampleLinkTSM()
        _ = try kernel.pciTSM.register(link: sample)
        backend = SimulatedBackend(kernel: kernel)
    }

    var vfioPath: String { SimulatedBackend.vfioDevicePath(Self.function1) }

    /// Host administrator's DSM connect (Appendix B step 7).
    func connect() throws {
        try kernel.pciTSM.connect(Self.dsm, "tsm0")
    }
}

/// Appendix B through the typed API and the simulated backend: every step, its IDs, and the
/// rejections a VMM meets, with the exact code, step and errno.
@Suite("Simulated backend: Appendix B end to end")
struct SimulatedBackendTests {
    static func failure(_ body: () throws -> Void) -> VMMError? { RejectionTests.failure(body) }

    /// Steps 1-6 on `host`: returns the vDEVICE (DEVICE 1, IOAS 2, HWPT 3, vIOMMU 4, vDEVICE 5).
    static func setUp(_ host: SimulatedHost, iommufd: borrowing IOMMUFD, vfio: borrowing VFIODevice,
                      associate: Bool = true) throws -> (device: DevID, ioas: IOASID, hwpt: HWPTID,
                                                         viommu: VIOMMUID, vdevice: VDeviceID, vm: Int32) {
        let vm = host.backend.createVM()
        if associate { try host.backend.addToVM(vm, vfio: vfio) }
        let device = try vfio.bind(to: iommufd)
        let ioas = try iommufd.allocIOAS()
        let hwpt = try iommufd.allocHWPT(device: device, parent: ioas)
        let viommu = try iommufd.allocVIOMMU(device: device, hwpt: hwpt, type: .armSMMUv3)
        let vdevice = try iommufd.allocVDevice(viommu: viommu, device: device, virtID: 0x0108)
        return (device, ioas, hwpt, viommu, vdevice, vm)
    }

    @Test("the whole sequence, a guest request, and teardown in order leave nothing behind")
    func endToEnd() throws {
        let host = try SimulatedHost()
        let iommufd = try IOMMUFD.open(backend: host.backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let objects = try Self.setUp(host, iommufd: iommufd, vfio: vfio)
        // Lowest free ID from 1 per iommufd (spec 0.1).
        #expect([objects.device.id, objects.ioas.id, objects.hwpt.id, objects.viommu.id, objects.vdevice.id] == [1, 2, 3, 4, 5])

        try host.connect()
        try iommufd.tsmBind(objects.vdevice)
        let vm = try host.kernel.vm(objects.vm)
        #expect(host.kernel.tdi(SimulatedHost.function1) == PCITSMCore.TDIState(vm: vm, tdiID: 0x0108))

        host.sample.configure { $0.tsmCode = 0x1234 }
        let request = (0..<64).map { UInt8($0 ^ 0x5A) }
        let full = try iommufd.tsmRequest(objects.vdevice, op: .validateMMIO, tvmArch: .cca, request: request,
                                          responseCapacity: 64)
        #expect(full.bytes == request)
        #expect(full.residue == 0)
        #expect(full.tsmCode == 0x1234)
        let roomy = try iommufd.tsmRequest(objects.vdevice, op: .readObject, tvmArch: .cca, request: request,
                                           responseCapacity: 100)
        #expect(roomy.residue == 36)
        #expect(roomy.bytes == request)

        try iommufd.tsmUnbind(objects.vdevice)
        #expect(host.kernel.tdi(SimulatedHost.function1) == nil)
        try iommufd.destroy(objects.vdevice)
        try iommufd.destroy(objects.viommu)
        try iommufd.destroy(objects.hwpt)
        try iommufd.destroy(objects.ioas)
        let busy = Self.failure { try iommufd.destroy(objects.device) }
        #expect(busy?.code == .kernelError)
        #expect(busy?.step == .destroy)
        #expect(busy?.errno == .resourceBusy)
        try vfio.close()
        #expect(try host.kernel.objects(iommufd.fileDescriptor).isEmpty)
        try iommufd.close()
        try host.backend.close(objects.vm)
        #expect(host.kernel.openDescriptors.isEmpty)
        #expect(host.kernel.memory.mappings.isEmpty)
        #expect(host.sample.statistics.liveTDIs == 0)
    }

    @Test("rev-k: TSM_OP 0x3B96 and TSM_REQ 0x3B97 with rev-K's op numbers reach the TSM")
    func revK() throws {
        let host = try SimulatedHost(profile: .revK)
        let iommufd = try IOMMUFD.open(backend: host.backend, profile: .revK)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let objects = try Self.setUp(host, iommufd: iommufd, vfio: vfio)
        try host.connect()
        try iommufd.tsmBind(objects.vdevice)
        host.sample.configure { $0.tsmCode = 7 }
        let answer = try iommufd.tsmRequest(objects.vdevice, op: .sevEnableDMA, tvmArch: .sev, request: [1, 2],
                                            responseCapacity: 2)
        #expect(answer.bytes == [1, 2])
        #expect(answer.tsmCode == 7)
    }

    @Test("v5: a scope request answers without tsm_code; the DEBUG scopes are EINVAL (spec 4.2 step 6)")
    func v5() throws {
        let host = try SimulatedHost(profile: .v5)
        let iommufd = try IOMMUFD.open(backend: host.backend, profile: .v5)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let objects = try Self.setUp(host, iommufd: iommufd, vfio: vfio)
        try host.connect()
        try iommufd.tsmBind(objects.vdevice)
        let answer = try iommufd.tsmRequest(objects.vdevice, scope: .pciInfo, request: [5, 6, 7], responseCapacity: 8)
        #expect(answer.bytes == [5, 6, 7])
        #expect(answer.residue == 5)
        #expect(answer.tsmCode == nil)
        let debug = Self.failure {
            _ = try iommufd.tsmRequest(objects.vdevice, scope: .pciDebugRead, request: [], responseCapacity: 0)
        }
        #expect(debug?.code == .kernelError)
        #expect(debug?.step == .tsmReq)
        #expect(debug?.errno == .invalidArgument)
        let tooHigh = Self.failure {
            _ = try iommufd.tsmRequest(objects.vdevice, rawScope: 4, request: [], responseCapacity: 0)
        }
        #expect(tooHigh?.errno == .invalidArgument)
    }

    @Test("TSM_OP rejections: no VM → ENODEV; not connected → EINVAL; unknown vDEVICE → ENOENT")
    func tsmOpRejections() throws {
        let host = try SimulatedHost()
        let iommufd = try IOMMUFD.open(backend: host.backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let noVM = try Self.setUp(host, iommufd: iommufd, vfio: vfio, associate: false)
        let enodev = Self.failure { try iommufd.tsmBind(noVM.vdevice) }
        #expect(enodev?.code == .kernelError)
        #expect(enodev?.step == .tsmOp)
        #expect(enodev?.errno == .operationNotSupportedByDevice)

        let host2 = try SimulatedHost()
        let iommufd2 = try IOMMUFD.open(backend: host2.backend)
        let vfio2 = try VFIODevice.open(host2.vfioPath, backend: host2.backend)
        let objects = try Self.setUp(host2, iommufd: iommufd2, vfio: vfio2)
        let notConnected = Self.failure { try iommufd2.tsmBind(objects.vdevice) }
        #expect(notConnected?.errno == .invalidArgument)
        #expect(notConnected?.step == .tsmOp)
        let unknown = Self.failure { try iommufd2.tsmBind(VDeviceID(99)) }
        #expect(unknown?.errno == .noSuchFileOrDirectory)
        let badFlags = Self.failure { try iommufd2.tsmOp(type: 1, vdeviceID: objects.vdevice.id, flags: 1) }
        #expect(badFlags?.errno == .notSupported)
    }

    @Test("TSM_REQ rejections: not bound → ENXIO; SEV op with CCA → EINVAL; tvm_arch 0 → EINVAL; unknown → ENOENT")
    func tsmReqRejections() throws {
        let host = try SimulatedHost()
        let iommufd = try IOMMUFD.open(backend: host.backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let objects = try Self.setUp(host, iommufd: iommufd, vfio: vfio)
        try host.connect()
        let notBound = Self.failure {
            _ = try iommufd.tsmRequest(objects.vdevice, op: .readObject, tvmArch: .cca, request: [1], responseCapacity: 4)
        }
        #expect(notBound?.code == .kernelError)
        #expect(notBound?.step == .tsmReq)
        #expect(notBound?.errno == .noSuchAddressOrDevice)
        #expect(notBound?.tsmCode == 0)

        try iommufd.tsmBind(objects.vdevice)
        let sevOnly = Self.failure {
            _ = try iommufd.tsmRequest(objects.vdevice, op: .sevEnableDMA, tvmArch: .cca, request: [], responseCapacity: 0)
        }
        #expect(sevOnly?.errno == .invalidArgument)
        let noArch = Self.failure {
            _ = try iommufd.tsmRequest(objects.vdevice, rawOp: 1, rawTVMArch: 0, request: [], responseCapacity: 0)
        }
        #expect(noArch?.errno == .invalidArgument)
        let unknown = Self.failure {
            _ = try iommufd.tsmRequest(VDeviceID(42), op: .readObject, tvmArch: .cca, request: [], responseCapacity: 0)
        }
        #expect(unknown?.errno == .noSuchFileOrDirectory)
        #expect(host.kernel.memory.mappings.isEmpty)
    }

    @Test("a driver errno comes with the tsm_code it wrote (spec 4.3 step 14)")
    func driverErrorWithTSMCode() throws {
        let host = try SimulatedHost()
        let iommufd = try IOMMUFD.open(backend: host.backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let objects = try Self.setUp(host, iommufd: iommufd, vfio: vfio)
        try host.connect()
        try iommufd.tsmBind(objects.vdevice)
        host.sample.configure {
            $0.tsmCode = 0xBAD
            $0.error = .ioError
        }
        let error = Self.failure {
            _ = try iommufd.tsmRequest(objects.vdevice, op: .setTDIState, tvmArch: .tdx, request: [2], responseCapacity: 4)
        }
        #expect(error?.code == .kernelError)
        #expect(error?.errno == .ioError)
        #expect(error?.tsmCode == 0xBAD)
    }

    @Test("a residue the kernel reports above the capacity → invalidResidue")
    func residueAboveCapacity() throws {
        let host = try SimulatedHost()
        let iommufd = try IOMMUFD.open(backend: host.backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let objects = try Self.setUp(host, iommufd: iommufd, vfio: vfio)
        try host.connect()
        try iommufd.tsmBind(objects.vdevice)
        host.sample.configure { $0.residue = 1000 }
        let error = Self.failure {
            _ = try iommufd.tsmRequest(objects.vdevice, op: .readObject, tvmArch: .cca, request: [1], responseCapacity: 16)
        }
        #expect(error?.code == .invalidResidue)
        #expect(error?.step == .tsmReq)
    }

    @Test("object rules: second vDEVICE → EEXIST; IOAS in use → EBUSY; closing VFIO while bound tombstones the vDEVICE")
    func objectRules() throws {
        let host = try SimulatedHost()
        let iommufd = try IOMMUFD.open(backend: host.backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let objects = try Self.setUp(host, iommufd: iommufd, vfio: vfio)
        let again = Self.failure {
            _ = try iommufd.allocVDevice(viommu: objects.viommu, device: objects.device, virtID: 0x0200)
        }
        #expect(again?.errno == .fileExists)
        #expect(again?.step == .vdeviceAlloc)
        let ioasBusy = Self.failure { try iommufd.destroy(objects.ioas) }
        #expect(ioasBusy?.errno == .resourceBusy)
        try host.connect()
        try iommufd.tsmBind(objects.vdevice)
        try vfio.close()
        #expect(host.kernel.tdi(SimulatedHost.function1) == nil)
        let gone = Self.failure { try iommufd.tsmBind(objects.vdevice) }
        #expect(gone?.errno == .noSuchFileOrDirectory)
        #expect(gone?.step == .tsmOp)
    }

    @Test("CONFIG_TSM off: the TSM commands answer EOPNOTSUPP (spec 2.2)")
    func configTSMOff() throws {
        var configuration = SimulatedKernel.Configuration()
        configuration.configTSM = false
        let host = try SimulatedHost(configuration: configuration)
        let iommufd = try IOMMUFD.open(backend: host.backend)
        let error = Self.failure { try iommufd.tsmBind(VDeviceID(1)) }
        #expect(error?.code == .kernelError)
        #expect(error?.errno == .notSupported)
    }

    @Test("files: unknown path → ENOENT; unknown function → ENODEV; second open → EBUSY")
    func files() throws {
        let host = try SimulatedHost()
        let unknownPath = Self.failure { _ = try IOMMUFD.open(backend: host.backend, path: "/dev/iommu0") }
        #expect(unknownPath?.code == .iommufdUnavailable)
        #expect(unknownPath?.errno == .noSuchFileOrDirectory)
        let noFunction = Self.failure {
            _ = try VFIODevice.open(SimulatedBackend.vfioDevicePath(PCIFunctionAddress(bus: 9, device: 0, function: 0)),
                                    backend: host.backend)
        }
        #expect(noFunction?.code == .vfioDeviceUnavailable)
        #expect(noFunction?.errno == .operationNotSupportedByDevice)
        let badName = Self.failure { _ = try VFIODevice.open("/dev/vfio/devices/vfio0", backend: host.backend) }
        #expect(badName?.code == .vfioDeviceUnavailable)
        #expect(badName?.errno == .noSuchFileOrDirectory)
        let first = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let second = Self.failure { _ = try VFIODevice.open(host.vfioPath, backend: host.backend) }
        #expect(second?.code == .kernelError)
        #expect(second?.errno == .resourceBusy)
        try first.close()
    }

    @Test("the backend admits only the kernel's own profile", arguments: [UAPIProfile.v5, .revK])
    func profileMismatch(profile: UAPIProfile) throws {
        let host = try SimulatedHost()
        let error = Self.failure { _ = try IOMMUFD.open(backend: host.backend, profile: profile) }
        #expect(error?.code == .profileMismatch)
        #expect(error?.step == .checkKernel)
        #expect(error?.reason.contains("revised") == true)
        #expect(host.kernel.openDescriptors.isEmpty)
    }

    @Test("KVM_DEV_VFIO_FILE_ADD twice → EEXIST; a VFIO file from another backend → backendMismatch")
    func kvmAssociation() throws {
        let host = try SimulatedHost()
        let other = try SimulatedHost()
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let vm = host.backend.createVM()
        try host.backend.addToVM(vm, vfio: vfio)
        let twice = Self.failure { try host.backend.addToVM(vm, vfio: vfio) }
        #expect(twice?.code == .kernelError)
        #expect(twice?.step == .kvmVFIOFileAdd)
        #expect(twice?.errno == .fileExists)
        let foreign = Self.failure { try other.backend.addToVM(other.backend.createVM(), vfio: vfio) }
        #expect(foreign?.code == .backendMismatch)
        #expect(foreign?.step == .kvmVFIOFileAdd)
    }

    @Test("the raw ioctl outside the table → ENOTTY, argument untouched")
    func rawOutsideTable() throws {
        let host = try SimulatedHost()
        let iommufd = try IOMMUFD.open(backend: host.backend)
        var argument: [UInt8] = [8, 0, 0, 0, 1, 0, 0, 0]
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try iommufd.ioctl(request: 0x3BA0, argument: &argument) }
        #expect(argument == [8, 0, 0, 0, 1, 0, 0, 0])
    }

    @Test("a session's tunnel serves concurrent guest requests from escaping tasks; dropping the session closes the iommufd")
    func sessionTunnel() async throws {
        let host = try SimulatedHost()
        let fd = try await Self.useTunnel(host)
        // The session (and every tunnel holding it) is gone: its iommufd is closed.
        #expect(!host.kernel.openDescriptors.contains(fd))
        #expect(host.kernel.openDescriptors.count == 1)  // the VM file only
    }

    /// Runs eight guest requests concurrently through a tunnel; returns the session's iommufd.
    static func useTunnel(_ host: SimulatedHost) async throws -> Int32 {
        let session = try IOMMUFDSession(backend: host.backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let objects = try setUp(host, iommufd: session.iommufd, vfio: vfio)
        let tunnel = session.tunnel(for: objects.vdevice)
        try host.connect()
        try tunnel.bind()
        let answers = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for index in 0..<8 {
                group.addTask {
                    try tunnel.tsmRequest(op: .readObject, tvmArch: .cca, request: [UInt8(index)], responseCapacity: 1).bytes
                }
            }
            var all: [[UInt8]] = []
            for try await answer in group { all.append(answer) }
            return all
        }
        #expect(answers.sorted { $0.lexicographicallyPrecedes($1) } == (0..<8).map { [UInt8($0)] })
        try tunnel.unbind()
        try vfio.close()
        #expect(host.kernel.openDescriptors.contains(session.iommufd.fileDescriptor))
        return session.iommufd.fileDescriptor
    }
}

@Suite("VDeviceSetup: Appendix B steps 4-6 and 11 as one call each")
struct VDeviceSetupTests {
    @Test("setUpVDevice then tearDown: IDs 2..5, bound TDI released, nothing left")
    func roundTrip() throws {
        let host = try SimulatedHost()
        let iommufd = try IOMMUFD.open(backend: host.backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        try host.backend.addToVM(host.backend.createVM(), vfio: vfio)
        let device = try vfio.bind(to: iommufd)
        let setup = try iommufd.setUpVDevice(device: device, virtID: 0x0108)
        #expect(setup == VDeviceSetup(device: DevID(1), ioas: IOASID(2), hwpt: HWPTID(3), viommu: VIOMMUID(4),
                                      vdevice: VDeviceID(5)))
        #expect(setup.vdevice.virtID == 0x0108)
        try host.connect()
        try iommufd.tsmBind(setup.vdevice)
        try iommufd.tearDown(setup, closing: vfio)
        #expect(host.kernel.tdi(SimulatedHost.function1) == nil)
        #expect(try host.kernel.objects(iommufd.fileDescriptor).isEmpty)
    }

    @Test("a second setUpVDevice for the device fails with EEXIST and leaves only the first set")
    func secondSetUpRollsBack() throws {
        let host = try SimulatedHost()
        let iommufd = try IOMMUFD.open(backend: host.backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: host.backend)
        let device = try vfio.bind(to: iommufd)
        _ = try iommufd.setUpVDevice(device: device, virtID: 0x0108)
        let before = try host.kernel.objects(iommufd.fileDescriptor)
        let error = RejectionTests.failure { _ = try iommufd.setUpVDevice(device: device, virtID: 0x0200) }
        #expect(error?.code == .kernelError)
        #expect(error?.step == .vdeviceAlloc)
        #expect(error?.errno == .fileExists)
        #expect(try host.kernel.objects(iommufd.fileDescriptor).map(\.id) == before.map(\.id))
    }

    @Test("a failing vIOMMU step destroys the HWPT, then the IOAS, and reports the vIOMMU's errno")
    func rollbackOrder() throws {
        let backend = RecordingBackend { _, request, argument throws(Errno) in
            switch request {
            case 0x3B81: TypedCallBytesTests.put32(2, &argument, 8)
            case 0x3B89: TypedCallBytesTests.put32(3, &argument, 16)
            case 0x3B90: throw .notSupported
            default: break
            }
            return 0
        }
        let iommufd = try IOMMUFD.open(backend: backend)
        let error = RejectionTests.failure { _ = try iommufd.setUpVDevice(device: DevID(1), virtID: 0, viommuType: 0) }
        #expect(error?.step == .viommuAlloc)
        #expect(error?.errno == .notSupported)
        #expect(backend.calls.map(\.request) == [0x3B81, 0x3B89, 0x3B90, 0x3B80, 0x3B80])
        #expect(backend.calls.suffix(2).map(\.argument) == [[8, 0, 0, 0, 3, 0, 0, 0], [8, 0, 0, 0, 2, 0, 0, 0]])
    }
}

@Suite("TracingBackend")
struct TracingBackendTests {
    final class Events: Sendable {
        private let lock = Mutex<[BackendEvent]>([])
        func append(_ event: BackendEvent) { lock.withLock { $0.append(event) } }
        var all: [BackendEvent] { lock.withLock { $0 } }
    }

    @Test("reports opens, every ioctl with its bytes before and after, the request payload and the response")
    func tracesAppendixB() throws {
        let host = try SimulatedHost()
        let events = Events()
        let backend = TracingBackend(host.backend) { events.append($0) }
        let iommufd = try IOMMUFD.open(backend: backend)
        let vfio = try VFIODevice.open(host.vfioPath, backend: backend)
        try host.backend.addToVM(host.backend.createVM(), vfio: vfio)
        let device = try vfio.bind(to: iommufd)
        let setup = try iommufd.setUpVDevice(device: device, virtID: 0x0108)
        try host.connect()
        try iommufd.tsmBind(setup.vdevice)
        host.sample.configure { $0.tsmCode = 0x55 }
        _ = try iommufd.tsmRequest(setup.vdevice, op: .readObject, tvmArch: .cca, request: [7, 8, 9], responseCapacity: 3)
        let missing = RejectionTests.failure { try iommufd.destroy(id: 77) }
        #expect(missing?.errno == .noSuchFileOrDirectory)

        let all = events.all
        #expect(all.first == .open(path: "/dev/iommu", result: .success(iommufd.fileDescriptor)))
        let requests = all.compactMap { event -> UInt32? in
            if case let .ioctl(_, request, _, _, _) = event { return request }
            return nil
        }
        #expect(requests == [0x3B76, 0x3B81, 0x3B89, 0x3B90, 0x3B91, 0x3B95, 0x3B96, 0x3B80])
        // Each ioctl is announced before the call with the bytes it is issued with, and the two
        // events are adjacent (nothing of the backend happens in between).
        for (index, event) in all.enumerated() {
            guard case let .ioctl(fd, request, before, _, _) = event else { continue }
            #expect(index > 0 && all[index - 1] == .ioctlIssued(fd: fd, request: request, argument: before))
        }
        #expect(all.filter { if case .ioctlIssued = $0 { return true } else { return false } }.count == requests.count)
        #expect(all.contains { if case .userWrite(_, [7, 8, 9]) = $0 { return true } else { return false } })
        #expect(all.contains { if case .userRead(_, [7, 8, 9]) = $0 { return true } else { return false } })
        let tsmReq = all.first { if case .ioctl(_, 0x3B96, _, _, _) = $0 { return true } else { return false } }
        if case let .ioctl(_, _, before, after, result)? = tsmReq {
            #expect(TypedCallBytesTests.u64(before, 40) == 0)
            #expect(TypedCallBytesTests.u64(after, 40) == 0x55)
            #expect(result == .success(0))
        } else {
            Issue.record("no TSM_REQ event")
        }
        #expect(all.last.map { event -> Bool in
            if case .ioctl(_, 0x3B80, _, _, .failure(.noSuchFileOrDirectory)) = event { return true }
            return false
        } == true)
    }
}
