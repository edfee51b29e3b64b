// Test support: a small TDISP responder with the state machine of tdisp-spdm.md §2.7 (used until
// the Device module's DSM is merged), the spdm-emu sample report as golden vector, and a harness
// that drives a platform's guest_req through a flat user memory.
import Firmware
import Synchronization
import SystemPackage
import Wire

/// The spdm-emu sample DEVICE_INTERFACE_REPORT, byte for byte (tdisp-spdm.md §2.11).
let sampleReport: [UInt8] = {
    let hex = """
    03 00 00 00 00 00 00 00 00 00 00 00 04 00 00 00
    00 00 00 00 00 00 00 00 01 00 00 00 04 00 01 00
    00 80 00 00 00 00 00 00 04 00 00 00 08 00 02 00
    00 00 01 00 00 00 00 00 08 00 00 00 08 00 03 00
    00 00 02 00 00 00 00 00 08 00 00 00 08 00 04 00
    10 00 00 00 74 64 69 73 70 5f 64 65 76 5f 65 6d
    75 00 00 00
    """
    return (try? Hex.decode(hex.split(separator: "\n").joined(separator: " "))) ?? []
}()

/// A minimal TDISP responder (DSM) hosting a set of TDIs, answering per tdisp-spdm.md §2.3-§2.8
/// with EMU-TDISP-2 (single-use nonce) and EMU-TDISP-3 (STOP accepted in every state).
final class FakeDSM: TDISPTransport {
    struct TDI {
        var state: TDISPState = .configUnlocked
        var nonce: [UInt8]? = nil
        var lockFlags: UInt16 = 0
    }
    private let tdis: Mutex<[UInt32: TDI]>
    private let counter = Mutex<UInt8>(0)
    private let requests = Mutex<[UInt8]>([])
    let report: [UInt8]
    let lockFlagsSupported: UInt16 = 0x0007

    init(functions: [FunctionID], report: [UInt8] = sampleReport) {
        var map: [UInt32: TDI] = [:]
        for function in functions { map[function.rawValue] = TDI() }
        tdis = Mutex(map)
        self.report = report
    }

    /// The DSM's TDI state of `function` (nil when not hosted).
    func state(_ function: FunctionID) -> TDISPState? { tdis.withLock { $0[function.rawValue]?.state } }

    /// Request codes received so far.
    var received: [UInt8] { requests.withLock { $0 } }

    /// The change detector of the device model: moves a locked TDI to ERROR.
    func corrupt(_ function: FunctionID) { tdis.withLock { $0[function.rawValue]?.state = .error } }

    func exchange(_ request: [UInt8]) throws -> [UInt8] {
        var reader = ByteReader(request)
        guard let version = try? reader.u8(), let code = try? reader.u8(), (try? reader.skip(2)) != nil,
              let function = try? reader.u32(), (try? reader.skip(8)) != nil
        else { return error(0, 0x0001) }
        requests.withLock { $0.append(code) }
        let sizes: [UInt8: Int] = [0x81: 16, 0x82: 20, 0x83: 36, 0x84: 20, 0x85: 16, 0x86: 48, 0x87: 16]
        guard let size = sizes[code] else { return error(function, 0x0007, data: UInt32(code)) }
        guard request.count == size else { return error(function, 0x0001) }
        guard version == 0x10 else { return error(function, 0x0041) }
        return tdis.withLock { tdis -> [UInt8] in
            guard var tdi = tdis[function] else { return error(function, 0x0101) }
            defer { tdis[function] = tdi }
            switch code {
            case 0x81:
                var writer = header(0x01, function)
                writer.u8(1)
                writer.u8(0x10)
                return writer.bytes
            case 0x82:
                var writer = header(0x02, function)
                writer.u32(0)
                writer.bytes([0xFE] + [UInt8](repeating: 0, count: 15))
                writer.u16(lockFlagsSupported)
                writer.zeros(3)
                writer.u8(48)
                writer.u8(0)
                writer.u8(0)
                return writer.bytes
            case 0x85:
                var writer = header(0x05, function)
                writer.u8(tdi.state.rawValue)
                return writer.bytes
            case 0x83:
                guard tdi.state == .configUnlocked else { return error(function, 0x0004) }
                guard let flags = try? reader.u16() else { return error(function, 0x0001) }
                guard flags & ~lockFlagsSupported == 0 else { return error(function, 0x0001) }  // EMU-TDISP-1
                let nonce = counter.withLock { value -> [UInt8] in
                    value &+= 1
                    return (0..<32).map { UInt8(truncatingIfNeeded: Int($0) &+ Int(value) &* 7) }
                }
                tdi.state = .configLocked
                tdi.nonce = nonce
                tdi.lockFlags = flags
                var writer = header(0x03, function)
                writer.bytes(nonce)
                return writer.bytes
            case 0x84:
                guard tdi.state == .configLocked || tdi.state == .run else { return error(function, 0x0004) }
                guard let offset = try? reader.u16(), let length = try? reader.u16(), length > 0,
                      Int(offset) < report.count
                else { return error(function, 0x0001) }
                let portion = min(Int(length), report.count - Int(offset), 0x40)
                var writer = header(0x04, function)
                writer.u16(UInt16(portion))
                writer.u16(UInt16(report.count - Int(offset) - portion))
                writer.bytes(report[Int(offset)..<Int(offset) + portion])
                return writer.bytes
            case 0x86:
                guard tdi.state == .configLocked else { return error(function, 0x0004) }
                guard let nonce = try? reader.bytes(32), nonce == tdi.nonce else { return error(function, 0x0102) }
                tdi.nonce = nil
                tdi.state = .run
                return header(0x06, function).bytes
            default:  // 0x87 STOP, EMU-TDISP-3
                tdi.nonce = nil
                tdi.state = .configUnlocked
                return header(0x07, function).bytes
            }
        }
    }

    private func header(_ code: UInt8, _ function: UInt32) -> ByteWriter {
        var writer = ByteWriter()
        writer.u8(0x10)
        writer.u8(code)
        writer.u16(0)
        writer.u32(function)
        writer.u64(0)
        return writer
    }

    private func error(_ function: UInt32, _ code: UInt32, data: UInt32 = 0) -> [UInt8] {
        var writer = header(0x7F, function)
        writer.u32(code)
        writer.u32(data)
        return writer.bytes
    }
}

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
    let dsm: FakeDSM
    let dsmFunction = FunctionID(bus: 0x3a, device: 0, function: 0)
    let function = FunctionID(bus: 0x3a, device: 0, function: 1)
    let vm: UInt64 = 0x5151
    let guestID: UInt32 = 0x0008
    let memory = FlatUserMemory()
    static var evidence: DeviceEvidence {
        DeviceEvidence(certificateChain: [UInt8](repeating: 0xCE, count: 700),
                       measurements: [UInt8](repeating: 0x4D, count: 120), vca: [UInt8](repeating: 0x56, count: 60))
    }

    init(_ platform: Platform, bind: Bool = true) throws {
        self.platform = platform
        dsm = FakeDSM(functions: [FunctionID(bus: 0x3a, device: 0, function: 0), FunctionID(bus: 0x3a, device: 0, function: 1)])
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
    var deviceState: TDISPState? { dsm.state(function) }
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
