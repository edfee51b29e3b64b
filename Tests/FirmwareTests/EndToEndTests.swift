import Device
import Firmware
import Foundation
import PCI
import SystemPackage
import TDISP
import Testing
import UAPI

/// The "done when", at the firmware layer: on a device built from the real
/// `tee-io-endpoint-sriov.lspci` dump, each architecture binds a VF's TDI, walks it to RUN through
/// guest requests (and the guest's direct firmware calls), sees the DSM report RUN, enables DMA
/// where the architecture has it, and unbinds back to CONFIG_UNLOCKED.
@Suite("End to end on tee-io-endpoint-sriov.lspci")
struct EndToEndTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let pf = FunctionID(requesterID: 0xE100)
    static let vf = FunctionID(requesterID: 0xE120)
    static let vm: UInt64 = 42
    static let guestID: UInt32 = 0x0010
    static let guestMMIO: UInt64 = 0x40_0000_0000

    struct World {
        let dsm: DSM
        let memory = MappedUserMemory()
        var deviceState: TDIState? { dsm.tdi(InterfaceID(functionID: EndToEndTests.vf))?.state }
        var ranges: [MMIORange] { dsm.tdi(InterfaceID(functionID: EndToEndTests.vf))?.report?.mmioRanges ?? [] }
        var report: [UInt8] { dsm.tdi(InterfaceID(functionID: EndToEndTests.vf))?.report?.encoded() ?? [] }

        func send(_ platform: any LinkTSMDriver, _ op: GuestOp, _ payload: [UInt8], responseLength: Int = 0) -> GuestRequestOutcome {
            memory.map(0x1000_0000, payload)
            memory.map(0x2000_0000, zeroes: responseLength)
            let request = GuestRequest(op: op.rawValue, tvmArch: platform.arch.rawValue, requestAddress: 0x1000_0000,
                                       requestLength: UInt32(payload.count), responseAddress: 0x2000_0000,
                                       responseLength: UInt32(responseLength))
            return platform.guestRequest(function: EndToEndTests.vf, request, memory: memory)
        }
    }

    static func world() throws -> World {
        let text = try String(contentsOf: root.appendingPathComponent("Examples/devices/tee-io-endpoint-sriov.lspci"), encoding: .utf8)
        let topology = try PCITopology(lspci: text)
        let bdf = try #require(BDF("e1:00.0"))
        return World(dsm: try DSM(device: topology, dsm: bdf, entropy: .seeded(5)))
    }

    static func connectAndBind(_ platform: any LinkTSMDriver, _ world: World) throws {
        try platform.connect(dsm: pf, transport: world.dsm, evidence: DeviceEvidence(certificateChain: [0x30, 0x82], measurements: [1], vca: [0x10]))
        try platform.bind(function: vf, dsm: pf, vm: vm, guestID: guestID)
        #expect(world.deviceState == .configLocked)
        #expect(platform.tdispState(function: vf) == .configLocked)
        #expect(!world.ranges.isEmpty)
    }

    @Test("Arm CCA: READ_OBJECT, VALIDATE_MMIO + RSI validate, RUN, RSI DMA enable, unbind")
    func cca() throws {
        let world = try Self.world()
        let platform = CCAPlatform()
        try Self.connectAndBind(platform, world)
        let read = world.send(platform, .readObject, CCA.ReadObjectRequest(objectType: 3).encoded(), responseLength: 4096)
        #expect(read.errno == nil && read.response == world.report)
        var gpa = Self.guestMMIO
        for range in world.ranges {
            let size = UInt64(range.numberOfPages) * 4096
            let request = CCA.ValidateMMIORequest(gpaBase: gpa, gpaTop: gpa + size, paBase: range.firstPage << 12)
            #expect(world.send(platform, .validateMMIO, request.encoded()).errno == nil)
            #expect(platform.rsiVDEVValidateMapping(function: Self.vf, vm: Self.vm, gpaBase: gpa, gpaTop: gpa + size,
                                                    paBase: range.firstPage << 12) == 0)
            gpa += size
        }
        let run = world.send(platform, .setTDIState, CCA.SetTDIStateRequest(state: 2).encoded())
        #expect(run.errno == nil && run.tsmCode == 0)
        #expect(world.deviceState == .run)
        let info = try #require(platform.rsiVDEVGetInfo(function: Self.vf, vm: Self.vm).info)
        #expect(platform.rsiVDEVDMAEnable(function: Self.vf, vm: Self.vm, lockNonce: info.lockNonce,
                                          measurementsNonce: info.measurementsNonce, reportNonce: info.reportNonce) == 0)
        platform.unbind(function: Self.vf)
        #expect(world.deviceState == .configUnlocked)
        #expect(platform.tdispState(function: Self.vf) == nil)
    }

    @Test("AMD SEV-TIO: RUN, MMIO_VALIDATE every reported range, SDTE enable/disable, unbind")
    func sev() throws {
        let world = try Self.world()
        let platform = SEVPlatform()
        try Self.connectAndBind(platform, world)
        #expect(world.send(platform, .setTDIState, [1]).errno == nil)
        #expect(world.deviceState == .run)
        let tdiID = try #require(platform.tdiID(function: Self.vf))
        var gpa = Self.guestMMIO
        for range in world.ranges {
            let body = SEV.MMIOValidateRequest(tdiID: tdiID, subrangeBase: gpa, subrangePageCount: range.numberOfPages,
                                               rangeOffset: 0, validated: true, rangeID: range.rangeID).encoded()
            let message = SEV.GuestMessage(sequenceNumber: platform.nextSequenceNumber(vm: Self.vm), messageType: 21, body: body)
            let outcome = world.send(platform, .validateMMIO, message.encoded(), responseLength: 4096)
            #expect(outcome.errno == nil && outcome.tsmCode == 0)
            let response = try SEV.MMIOValidateResponse(decoding: SEV.GuestMessage(decoding: outcome.response).body)
            #expect(response.status == 0 && response.changed)
            gpa += UInt64(range.numberOfPages) * 4096
        }
        let enable = SEV.GuestMessage(sequenceNumber: platform.nextSequenceNumber(vm: Self.vm), messageType: 25,
                                      body: SEV.SDTEWriteRequest(tdiID: tdiID, sdte: SEV.SDTEWriteRequest.validSDTE(vtom: 1 << 46)).encoded())
        let enabled = world.send(platform, .sevEnableDMA, enable.encoded(), responseLength: 112)
        #expect(enabled.errno == nil)
        #expect(try SEV.SDTEWriteResponse(decoding: SEV.GuestMessage(decoding: enabled.response).body).status == 0)
        #expect(platform.tdiInfo(function: Self.vf)?.tsmEnabled == true)
        #expect(world.deviceState == .run)
        let disable = SEV.GuestMessage(sequenceNumber: platform.nextSequenceNumber(vm: Self.vm), messageType: 25,
                                       body: SEV.SDTEWriteRequest(tdiID: tdiID, sdte: []).encoded())
        #expect(world.send(platform, .sevDisableDMA, disable.encoded(), responseLength: 112).errno == nil)
        platform.unbind(function: Self.vf)
        #expect(world.deviceState == .configUnlocked)
    }

    @Test("Intel TDX Connect: VALIDATE_MMIO + TDG.MMIO.ACCEPT, TDG.TDI.START, RUN, TDG.DMAR.ACCEPT, unbind")
    func tdx() throws {
        let world = try Self.world()
        let platform = TDXPlatform()
        try Self.connectAndBind(platform, world)
        var gpa = Self.guestMMIO
        for range in world.ranges {
            let size = UInt64(range.numberOfPages) * 4096
            let request = TDX.ValidateMMIORequest(gpaBase: gpa, gpaTop: gpa + size, paBase: range.firstPage << 12)
            #expect(world.send(platform, .validateMMIO, request.encoded()).errno == nil)
            #expect(platform.tdgMMIOAccept(function: Self.vf, vm: Self.vm, gpa: gpa) == 0)
            #expect(platform.tdgMMIOAccept(function: Self.vf, vm: Self.vm, gpa: gpa + size - 4096) == (size > 4096 ? 0 : TDX.Status.invalidOperand))
            gpa += size
        }
        let session = platform.tdgTDIRead(function: Self.vf, vm: Self.vm, field: TDX.TDIField.bindSessionID.rawValue)
        #expect(session.status == 0)
        #expect(platform.tdgTDIStart(function: Self.vf, vm: Self.vm, bindSessionID: session.value) == 0)
        let run = world.send(platform, .setTDIState, TDX.SetTDIStateRequest(state: 2).encoded())
        #expect(run.errno == nil && run.tsmCode == 0)
        #expect(world.deviceState == .run)
        #expect(platform.tdgDMARAccept(function: Self.vf, vm: Self.vm) == 0)
        #expect(platform.tdgTDIRead(function: Self.vf, vm: Self.vm, field: TDX.TDIField.tdispState.rawValue).value == 2)
        platform.unbind(function: Self.vf)
        #expect(world.deviceState == .configUnlocked)
    }

    @Test("a CCA envelope on a SEV platform is EINVAL and reaches no device")
    func crossArchitecture() throws {
        let world = try Self.world()
        let platform = SEVPlatform()
        try Self.connectAndBind(platform, world)
        let log = platform.callLog
        let before = world.dsm.tdi(InterfaceID(functionID: Self.vf))
        let memory = MappedUserMemory()
        memory.map(0x1000, CCA.SetTDIStateRequest(state: 2).encoded())
        let outcome = platform.guestRequest(function: Self.vf, GuestRequest(op: GuestOp(.setTDIState).rawValue, tvmArch: TVMArch.cca.rawValue,
                                                                             requestAddress: 0x1000, requestLength: 4, responseAddress: 0,
                                                                             responseLength: 0), memory: memory)
        #expect(outcome.errno == .invalidArgument && outcome.tsmCode == 0)
        #expect(platform.callLog == log)
        #expect(world.dsm.tdi(InterfaceID(functionID: Self.vf)) == before)
    }
}
