import Kernel
import SystemPackage
import Testing
import UAPI

/// Errno values from the spec's table (section 0), typed once here so tests assert the kernel's
/// numbers, not swift-system's spelling.
enum E {
    static let EPERM = Errno(rawValue: 1)
    static let ENOENT = Errno(rawValue: 2)
    static let EINTR = Errno(rawValue: 4)
    static let ENXIO = Errno(rawValue: 6)
    static let E2BIG = Errno(rawValue: 7)
    static let EBADF = Errno(rawValue: 9)
    static let ENOMEM = Errno(rawValue: 12)
    static let EFAULT = Errno(rawValue: 14)
    static let EBUSY = Errno(rawValue: 16)
    static let EEXIST = Errno(rawValue: 17)
    static let ENODEV = Errno(rawValue: 19)
    static let EINVAL = Errno(rawValue: 22)
    static let ENOTTY = Errno(rawValue: 25)
    static let EOVERFLOW = Errno(rawValue: 75)
    static let EBADFD = Errno(rawValue: 77)
    static let EOPNOTSUPP = Errno(rawValue: 95)
}

/// The result of a call: the value or the errno.
enum Outcome: Equatable, CustomStringConvertible {
    case value(Int32)
    case errno(Errno)

    init(_ body: () throws(Errno) -> Int32) {
        do { self = .value(try body()) } catch { self = .errno(error) }
    }

    var description: String {
        switch self {
        case .value(let value): return "\(value)"
        case .errno(let errno): return errno.linuxName
        }
    }
}

func outcome(_ body: () throws(Errno) -> Void) -> Outcome {
    Outcome { () throws(Errno) -> Int32 in try body(); return 0 }
}

/// A simulated host with the kernel sample's topology (spec 7.1), the sample link TSM registered
/// as tsm0, an iommufd, a VM, and the VFIO cdev of `10000:01:00.1` associated with the VM.
final class Fixture: @unchecked Sendable {
    static let dsm = PCIFunctionAddress("10000:01:00.0")!
    static let function1 = PCIFunctionAddress("10000:01:00.1")!
    static let otherDSM = PCIFunctionAddress("10001:03:00.0")!

    let kernel: SimulatedKernel
    let sample: SampleLinkTSM
    let tsm: TSMDevice
    let iommufd: Int32
    let vmFD: Int32
    let vm: VMHandle
    var vfio: Int32 = -1
    var devID: UInt32 = 0
    var ioasID: UInt32 = 0
    var hwptID: UInt32 = 0
    var viommuID: UInt32 = 0
    var vdeviceID: UInt32 = 0

    var profile: UAPIProfile { kernel.profile }

    init(profile: UAPIProfile = .revised, sample: SampleLinkTSM = SampleLinkTSM(), associate: Bool = true,
         function: PCIFunctionAddress = Fixture.function1) throws {
        kernel = try SimulatedKernel(profile: profile, functions: KernelPCIFunction.devsecSampleTopology())
        self.sample = sample
        tsm = try kernel.pciTSM.register(link: sample)
        iommufd = kernel.openIOMMUFD()
        vmFD = kernel.createVM()
        vm = try kernel.vm(vmFD)
        vfio = try kernel.openVFIODevice(function)
        if associate { try kernel.kvmVFIOFileAdd(vm: vmFD, vfio: vfio) }
    }

    // MARK: Raw ioctls

    /// Maps `bytes`, issues `request` on `fd` with its address, reads the bytes back, unmaps.
    func raw(_ request: UInt32, _ bytes: [UInt8], fd: Int32? = nil, signalPending: Bool = false) -> (Outcome, [UInt8]) {
        do {
            let address = try kernel.memory.map(bytes: bytes)
            let result = Outcome { () throws(Errno) -> Int32 in
                try kernel.ioctl(fd ?? iommufd, request, address, signalPending: signalPending)
            }
            let after = try kernel.memory.read(address, count: max(1, bytes.count))
            try kernel.memory.unmap(address)
            return (result, Array(after.prefix(bytes.count)))
        } catch {
            Issue.record("memory: \(error)")
            return (.errno(error), [])
        }
    }

    /// Issues command `id` of the profile with `value`; returns the outcome and the struct as the
    /// kernel left it in user memory.
    @discardableResult
    func call<T: UAPIStruct>(_ id: CommandID, _ value: T, signalPending: Bool = false) -> (Outcome, T) {
        guard let command = profile.command(id) else {
            Issue.record("no command \(id) in \(profile)")
            return (.errno(E.ENOTTY), value)
        }
        let (result, bytes) = raw(command.request, value.encode(), signalPending: signalPending)
        return (result, (try? T(bytes: bytes)) ?? value)
    }

    func request(_ id: CommandID) -> UInt32 { profile.command(id)?.request ?? 0 }

    // MARK: Appendix B steps

    func bindVFIO() throws {
        devID = try kernel.vfioBindIOMMUFD(vfio, iommufd: iommufd)
    }

    func allocIOAS() throws {
        let (result, out) = call(.ioasAlloc, IOMMUIOASAlloc())
        try #require(result == .value(0))
        ioasID = out.outIOASID
    }

    func allocHWPT(nestParent: Bool = true) throws {
        let (result, out) = call(.hwptAlloc, IOMMUHWPTAlloc(flags: nestParent ? 1 : 0, devID: devID, ptID: ioasID))
        try #require(result == .value(0))
        hwptID = out.outHWPTID
    }

    func allocVIOMMU() throws {
        let (result, out) = call(.viommuAlloc, IOMMUVIOMMUAlloc(type: 1, devID: devID, hwptID: hwptID))
        try #require(result == .value(0))
        viommuID = out.outVIOMMUID
    }

    func allocVDevice(virtID: UInt64 = 0x0108) throws {
        let (result, out) = call(.vdeviceAlloc, IOMMUVDeviceAlloc(viommuID: viommuID, devID: devID, virtID: virtID))
        try #require(result == .value(0))
        vdeviceID = out.outVDeviceID
    }

    func connect() throws {
        try kernel.pciTSM.connect(Fixture.dsm, "tsm0")
    }

    /// Steps 1-7 of Appendix B.
    func setUp(virtID: UInt64 = 0x0108, connect doConnect: Bool = true) throws {
        try bindVFIO()
        try allocIOAS()
        try allocHWPT()
        try allocVIOMMU()
        try allocVDevice(virtID: virtID)
        if doConnect { try connect() }
    }

    func tsmOp(_ type: UInt32, vdevice: UInt32? = nil, flags: UInt32 = 0) -> Outcome {
        call(.vdeviceTSMOp, IOMMUVDeviceTSMOp(type: type, flags: flags, vdeviceID: vdevice ?? vdeviceID)).0
    }

    func bind() -> Outcome { tsmOp(1) }
    func unbind() -> Outcome { tsmOp(2) }

    func destroy(_ id: UInt32) -> Outcome { call(.destroy, IOMMUDestroy(id: id)).0 }

    /// A revised guest request: maps request and response buffers, issues TSM_REQ, returns the
    /// outcome, the struct as written back, and the response bytes.
    func guestRequest(op: UInt32 = 4, arch: UInt32 = 1, request: [UInt8] = Array(0..<64), responseLength: Int = 64,
                      vdevice: UInt32? = nil, tsmCodeIn: UInt64 = 0xAAAA, signalPending: Bool = false)
        -> (Outcome, IOMMUVDeviceTSMReq, [UInt8]) {
        do {
            let req = try kernel.memory.map(bytes: request)
            let resp = try kernel.memory.map(size: max(1, responseLength))
            defer { try? kernel.memory.unmap(req); try? kernel.memory.unmap(resp) }
            let value = IOMMUVDeviceTSMReq(vdeviceID: vdevice ?? vdeviceID, op: op, tvmArch: arch,
                                           reqLen: UInt32(request.count), respLen: UInt32(responseLength),
                                           reqUptr: req, respUptr: resp, tsmCode: tsmCodeIn)
            let (result, out) = call(.vdeviceTSMReq, value, signalPending: signalPending)
            return (result, out, try kernel.memory.read(resp, count: responseLength))
        } catch {
            Issue.record("memory: \(error)")
            return (.errno(error), IOMMUVDeviceTSMReq(vdeviceID: 0, op: 0, tvmArch: 0, reqLen: 0, respLen: 0, reqUptr: 0, respUptr: 0), [])
        }
    }

    /// Everything a failed call must leave unchanged.
    struct Snapshot: Equatable {
        var objects: [IOMMUFDObjectSnapshot]
        var tdis: [PCIFunctionAddress: PCITSMCore.TDIState]
        var mappings: [UInt64]
        var statistics: SampleLinkTSM.Statistics
    }

    func snapshot() -> Snapshot {
        Snapshot(objects: (try? kernel.objects(iommufd)) ?? [], tdis: kernel.pciTSM.boundTDIs,
                 mappings: kernel.memory.mappings.map(\.address), statistics: sample.statistics)
    }
}

extension SampleLinkTSM.Statistics {
    /// Ignoring the request counter (a rejected request may still reach the driver).
    var shape: [Int] { [streamsInUse, liveTDIs, liveContexts] }
}
