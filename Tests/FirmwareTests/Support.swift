// Test support: a small TDISP responder with the state machine of tdisp-spdm.md §2.7 (used until
// the Device module's DSM is merged), the spdm-emu sample report as golden vector, and a harness
// that drives a platform's guest_req through a flat user memory.
import Device
import Firmware
import Synchronization
import SystemPackage
import TDISP
import Wire

/// The TDI's function (3a:00.1): BAR 0 at 0x0800_0000, 4 pages, IS_MEM_ATTR_UPDATABLE (range 0);
/// BAR 2 at 0x1000_0000, 8 pages (range 2); BAR 4 at 0x2000_0000, 1 page, IS_NON_TEE_MEM (range 4).
let tdiFunction = TDIFunction(
    functionID: FunctionID(bus: 0x3a, device: 0, function: 1),
    bars: [
        TDIBAR(index: 0, address: 0x0800_0000, size: 0x4000, memoryAttributeUpdatable: true),
        TDIBAR(index: 2, address: 0x1000_0000, size: 0x8000),
        TDIBAR(index: 4, address: 0x2000_0000, size: 0x1000, nonTEE: true),
    ],
    deviceSpecificInfo: Array("tsmkit firmware test".utf8))

/// The DSM's own function (3a:00.0), one BAR.
let dsmPF = TDIFunction(functionID: FunctionID(bus: 0x3a, device: 0, function: 0),
                              bars: [TDIBAR(index: 0, address: 0x0400_0000, size: 0x1000)])

/// Fixed addresses of the harness's user memory.
enum Address {
    static let request: UInt64 = 0x1000_0000
    static let response: UInt64 = 0x2000_0000
    static let nonce: UInt64 = 0x3000_0000
    static let unmapped: UInt64 = 0xDEAD_0000
}

/// A platform with one connected DSM (function 0 of bus 0x3a) and a bound TDI on function 1.
struct Harness<Platform: LinkTSMDriver> {
    let platform: Platform
    let dsm: DSM
    let dsmFunction = FunctionID(bus: 0x3a, device: 0, function: 0)
    let function = FunctionID(bus: 0x3a, device: 0, function: 1)
    let vm: UInt64 = 0x5151
    let guestID: UInt32 = 0x0008
    let memory = MappedUserMemory()
    static var evidence: DeviceEvidence {
        DeviceEvidence(certificateChain: [UInt8](repeating: 0xCE, count: 700),
                       measurements: [UInt8](repeating: 0x4D, count: 120), vca: [UInt8](repeating: 0x56, count: 60))
    }

    init(_ platform: Platform, bind: Bool = true) throws {
        self.platform = platform
        dsm = try DSM(functions: [dsmPF, tdiFunction], entropy: .seeded(11))
        try platform.connect(dsm: dsmFunction, transport: dsm, evidence: Self.evidence)
        if bind { try platform.bind(function: function, dsm: dsmFunction, vm: vm, guestID: guestID) }
    }

    /// Sends `payload` as `op` with `resp_len` = `responseLength` (response buffer mapped with that size).
    func send(_ op: GuestOp, _ payload: [UInt8], responseLength: Int = 0, arch: TSMArch? = nil,
              requestLength: Int? = nil, requestAddress: UInt64 = Address.request,
              responseAddress: UInt64 = Address.response, user: Bool = true) -> GuestRequestOutcome {
        send(rawOp: op.rawValue, payload, responseLength: responseLength, arch: arch, requestLength: requestLength,
             requestAddress: requestAddress, responseAddress: responseAddress, user: user)
    }

    func send(rawOp: UInt32, _ payload: [UInt8], responseLength: Int = 0, arch: TSMArch? = nil,
              requestLength: Int? = nil, requestAddress: UInt64 = Address.request,
              responseAddress: UInt64 = Address.response, user: Bool = true) -> GuestRequestOutcome {
        memory.map(Address.request, payload)
        memory.map(Address.response, zeroes: responseLength)
        let request = GuestRequest(op: rawOp, tvmArch: (arch ?? platform.arch).rawValue, requestAddress: requestAddress,
                                   requestLength: UInt32(requestLength ?? payload.count),
                                   responseAddress: responseAddress, responseLength: UInt32(responseLength),
                                   isUserPointer: user)
        return platform.guestRequest(function: function, request, memory: memory)
    }

    /// Maps a 32-byte nonce filled with `fill` at ``Address/nonce``.
    func mapNonce(_ fill: UInt8) { memory.map(Address.nonce, [UInt8](repeating: fill, count: 32)) }

    /// The DSM's state of the harness TDI.
    var deviceState: TDIState? { dsm.tdi(InterfaceID(functionID: function))?.state }

    /// The DSM's whole view of the harness TDI (state, nonce, lock, report, attributes).
    var deviceSnapshot: TDISnapshot? { dsm.tdi(InterfaceID(functionID: function)) }

    /// The report the DSM built at LOCK, encoded.
    var report: [UInt8] { deviceSnapshot?.report?.encoded() ?? [] }

    /// Number of TDISP requests the firmware has sent so far.
    var tdispRequests: Int { platform.callLog.filter { $0.hasPrefix("TDISP") }.count }

    /// Number of TDISP requests with `code` the firmware has sent so far.
    func tdispRequests(_ code: UInt8) -> Int { platform.callLog.filter { $0 == "TDISP 0x" + String(code, radix: 16) }.count }

    /// Moves the TDI to ERROR through the DSM's change detector (a write to a locked register).
    func corrupt() { dsm.detect(.lockedRegisterWrite(function, offset: 0x10)) }
}

/// A deterministic generator for fuzz tests (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
