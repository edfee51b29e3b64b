import Device
import Firmware
import Foundation
import Kernel
import PCI
import SystemPackage
import TDISP
import Testing
import UAPI

/// A simulated host of one architecture built from the real `tee-io-endpoint-sriov.lspci` dump
/// (DSM e1:00.0, VF 1 = e1:04.0: First VF Offset 32, stride 1), with the VMM steps of Appendix B
/// done for a function through the kernel's ioctls, and helpers for guest requests.
final class ArchFixture: @unchecked Sendable {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let dumpText: String = (try? String(contentsOf: root.appendingPathComponent("Examples/devices/tee-io-endpoint-sriov.lspci"),
                                               encoding: .utf8)) ?? ""
    static let dsm = PCIFunctionAddress("e1:00.0")!
    static let vf = PCIFunctionAddress("e1:04.0")!
    /// A guest-physical MMIO window inside the protected IPA space (below 2^47).
    static let guestMMIO: UInt64 = 0x40_0000_0000
    static let virtID: UInt64 = 0x10

    let platform: ArchPlatform
    var kernel: SimulatedKernel { platform.kernel }
    let function: PCIFunctionAddress
    let iommufd: Int32
    let vmFD: Int32
    let vm: VMHandle
    let vfio: Int32
    var devID: UInt32 = 0
    var vdeviceID: UInt32 = 0

    init(_ arch: TVMArch, uapi: UAPIProfile = .revised, firmware: FirmwareProfile? = nil,
         function: PCIFunctionAddress = ArchFixture.vf, connect: Bool = true, bind: Bool = true,
         on existing: ArchPlatform? = nil) throws {
        platform = try existing ?? ArchPlatform(arch: arch, lspci: Self.dumpText, uapiProfile: uapi, firmwareProfile: firmware,
                                                seed: 7, evidence: false)
        self.function = function
        let kernel = platform.kernel
        iommufd = kernel.openIOMMUFD()
        vmFD = kernel.createVM()
        vm = try kernel.vm(vmFD)
        vfio = try kernel.openVFIODevice(function)
        try kernel.kvmVFIOFileAdd(vm: vmFD, vfio: vfio)
        devID = try kernel.vfioBindIOMMUFD(vfio, iommufd: iommufd)
        let ioas: IOMMUIOASAlloc = try require(.ioasAlloc, IOMMUIOASAlloc())
        let hwpt: IOMMUHWPTAlloc = try require(.hwptAlloc, IOMMUHWPTAlloc(flags: 1, devID: devID, ptID: ioas.outIOASID))
        let viommu: IOMMUVIOMMUAlloc = try require(.viommuAlloc, IOMMUVIOMMUAlloc(type: 1, devID: devID, hwptID: hwpt.outHWPTID))
        let vdevice: IOMMUVDeviceAlloc = try require(.vdeviceAlloc, IOMMUVDeviceAlloc(viommuID: viommu.outVIOMMUID, devID: devID, virtID: Self.virtID))
        vdeviceID = vdevice.outVDeviceID
        if connect { try kernel.pciTSM.connect(Self.dsm, "tsm0") }
        if connect && bind { try #require(tsmOp(1) == .value(0)) }
    }

    private func require<T: UAPIStruct>(_ id: CommandID, _ value: T) throws -> T {
        let (result, out) = call(id, value)
        try #require(result == .value(0))
        return out
    }

    var profile: UAPIProfile { kernel.profile }

    @discardableResult
    func call<T: UAPIStruct>(_ id: CommandID, _ value: T) -> (Outcome, T) {
        guard let command = profile.command(id) else { return (.errno(E.ENOTTY), value) }
        do {
            let address = try kernel.memory.map(bytes: value.encode())
            defer { try? kernel.memory.unmap(address) }
            let result = Outcome { () throws(Errno) -> Int32 in try kernel.ioctl(iommufd, command.request, address) }
            let bytes = try kernel.memory.read(address, count: T.layout.size)
            return (result, (try? T(bytes: bytes)) ?? value)
        } catch {
            return (.errno(error), value)
        }
    }

    /// IOMMU_VDEVICE_TSM_OP: 1 bind, 2 unbind.
    func tsmOp(_ type: UInt32) -> Outcome {
        call(.vdeviceTSMOp, IOMMUVDeviceTSMOp(type: type, flags: 0, vdeviceID: vdeviceID)).0
    }

    struct Reply {
        var outcome: Outcome
        var tsmCode: UInt64
        var response: [UInt8]
    }

    /// A revised-layout TSM_REQ with `payload` at a fresh mapping and a `responseLength`-byte
    /// response buffer. `requestAddress`/`responseAddress` override the buffers (fault tests);
    /// `readOnlyResponse` maps the response read-only.
    func request(_ op: GuestOp, arch: TVMArch? = nil, _ payload: [UInt8], responseLength: Int = 0,
                 requestLength: Int? = nil, requestAddress: UInt64? = nil, responseAddress: UInt64? = nil,
                 readOnlyResponse: Bool = false, rawOp: UInt32? = nil) -> Reply {
        do {
            let req = try kernel.memory.map(bytes: payload)
            let resp = try kernel.memory.map(size: max(1, responseLength), writable: !readOnlyResponse)
            defer { try? kernel.memory.unmap(req); try? kernel.memory.unmap(resp) }
            let wire = rawOp ?? profile.rawValue(of: UAPIGuestOp(op)) ?? 0
            let value = IOMMUVDeviceTSMReq(vdeviceID: vdeviceID, op: wire, tvmArch: (arch ?? platform.arch).rawValue,
                                           reqLen: UInt32(requestLength ?? payload.count), respLen: UInt32(responseLength),
                                           reqUptr: requestAddress ?? req, respUptr: responseAddress ?? (responseLength == 0 ? 0 : resp),
                                           tsmCode: 0xAAAA)
            let (result, out) = call(.vdeviceTSMReq, value)
            return Reply(outcome: result, tsmCode: out.tsmCode, response: responseLength == 0 ? [] : try kernel.memory.read(resp, count: responseLength))
        } catch {
            Issue.record("memory: \(error)")
            return Reply(outcome: .errno(error), tsmCode: 0, response: [])
        }
    }

    var deviceState: TDIState? { platform.deviceTDIState(function) }
    var firmwareState: TDIState? { platform.firmwareTDIState(function) }
    var deviceMessages: Int { platform.deviceMessages }
    var ranges: [MMIORange] {
        function.functionID.flatMap { platform.dsm(serving: function)?.tdi(InterfaceID(functionID: $0))?.report?.mmioRanges } ?? []
    }
    var report: [UInt8] {
        function.functionID.flatMap { platform.dsm(serving: function)?.tdi(InterfaceID(functionID: $0))?.report?.encoded() } ?? []
    }
}

/// The uAPI op of a firmware op (same names).
func UAPIGuestOp(_ op: GuestOp) -> GuestRequestOp {
    switch op {
    case .readObject: return .readObject
    case .regenObject: return .regenObject
    case .objectInfo: return .objectInfo
    case .validateMMIO: return .validateMMIO
    case .setTDIState: return .setTDIState
    case .sevEnableDMA: return .sevEnableDMA
    case .sevDisableDMA: return .sevDisableDMA
    }
}
