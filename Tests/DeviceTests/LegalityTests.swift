import Device
import Testing
import TDISP

/// Every cell of the legality table of docs/spec/tdisp-spdm.md §2.7, with EMU-TDISP-3 (STOP in
/// CONFIG_UNLOCKED succeeds and changes nothing).
@Suite("DSM legality table (spec 2.7)")
struct LegalityTests {
    enum Outcome: Sendable, CustomStringConvertible {
        case ok(TDISPMessageType, TDIState)
        case error(TDISPErrorCode)
        var description: String {
            switch self {
            case let .ok(type, state): return "\(type) → \(state)"
            case let .error(code): return "\(code)"
            }
        }
    }

    static let states = TDIState.allCases
    static let requests: [TDISPMessageType] = Array(TDISPMessageType.allRequests.prefix(10))

    /// The expected outcome of `request` in `state`.
    static func expected(_ request: TDISPMessageType, _ state: TDIState) -> Outcome {
        let wrongState = Outcome.error(.invalidInterfaceState)
        switch request {
        case .getTDISPVersion: return .ok(.tdispVersion, state)
        case .getTDISPCapabilities: return .ok(.tdispCapabilities, state)
        case .getDeviceInterfaceState: return .ok(.deviceInterfaceState, state)
        case .lockInterfaceRequest: return state == .configUnlocked ? .ok(.lockInterfaceResponse, .configLocked) : wrongState
        case .getDeviceInterfaceReport:
            return state == .configLocked || state == .run ? .ok(.deviceInterfaceReport, state) : wrongState
        case .startInterfaceRequest: return state == .configLocked ? .ok(.startInterfaceResponse, .run) : wrongState
        case .stopInterfaceRequest: return .ok(.stopInterfaceResponse, .configUnlocked)
        case .bindP2PStreamRequest: return state == .run ? .ok(.bindP2PStreamResponse, .run) : wrongState
        case .unbindP2PStreamRequest: return state == .run ? .ok(.unbindP2PStreamResponse, .run) : wrongState
        case .setMMIOAttributeRequest: return state == .run ? .ok(.setMMIOAttributeResponse, .run) : wrongState
        default: return .error(.unsupportedRequest)
        }
    }

    static func request(_ type: TDISPMessageType, _ id: InterfaceID, nonce: StartInterfaceNonce?, dsm: DSM) -> any TDISPMessage {
        switch type {
        case .getTDISPVersion: return GetTDISPVersion(interfaceID: id)
        case .getTDISPCapabilities: return GetTDISPCapabilities(interfaceID: id)
        case .getDeviceInterfaceState: return GetDeviceInterfaceState(interfaceID: id)
        case .lockInterfaceRequest: return LockInterfaceRequest(interfaceID: id, flags: [.lockMSIX])
        case .getDeviceInterfaceReport: return GetDeviceInterfaceReport(interfaceID: id, offset: 0, length: 0xFFFF)
        case .startInterfaceRequest:
            return StartInterfaceRequest(interfaceID: id, nonce: nonce ?? StartInterfaceNonce(Array(repeating: 0, count: 32))!)
        case .stopInterfaceRequest: return StopInterfaceRequest(interfaceID: id)
        case .bindP2PStreamRequest: return BindP2PStreamRequest(interfaceID: id, p2pStreamID: 2)
        case .unbindP2PStreamRequest: return UnbindP2PStreamRequest(interfaceID: id, p2pStreamID: 1)
        default:
            // The PF's BAR 2 range (updatable) with IS_NON_TEE_MEM flipped on.
            let range = MMIORange(firstPage: 0x2_0018_010000 >> 12, numberOfPages: 4,
                                  attributes: [.memoryAttributeUpdatable, .nonTEEMemory], rangeID: 2)
            return SetMMIOAttributeRequest(interfaceID: id, range: range)
        }
    }

    @Test("cell", arguments: requests, states)
    func cell(request type: TDISPMessageType, state: TDIState) throws {
        let dsm = try makeDSM()
        let id = pf.interfaceID
        let nonce = try drive(dsm, id, to: state)
        #expect(dsm.tdi(id)?.state == state)
        let before = dsm.tdi(id)
        let response = try dsm.exchange(Self.request(type, id, nonce: nonce, dsm: dsm))
        switch Self.expected(type, state) {
        case let .ok(responseType, after):
            #expect(response.header.messageType == responseType, "\(type) in \(state): got \(response)")
            #expect(dsm.tdi(id)?.state == after)
            #expect(response.header.interfaceID == id)
        case let .error(code):
            #expect(response.errorCode == code, "\(type) in \(state): got \(response)")
            #expect(dsm.tdi(id) == before)  // a refused request changes nothing
        }
        // The VF was never touched.
        #expect(dsm.tdi(vf.interfaceID)?.state == .configUnlocked)
    }

    @Test("STOP in CONFIG_UNLOCKED: EMU-TDISP-3 accepts, stopStrict refuses")
    func stopInUnlocked() throws {
        let standard = try makeDSM()
        #expect(try standard.exchange(StopInterfaceRequest(interfaceID: pf.interfaceID)).header.messageType == .stopInterfaceResponse)
        var strict = DSMProfile.standard
        strict.stopStrict = true
        let dsm = try makeDSM(strict)
        #expect(try dsm.exchange(StopInterfaceRequest(interfaceID: pf.interfaceID)).errorCode == .invalidInterfaceState)
    }
}
