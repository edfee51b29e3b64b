import Sync
import TDISP
import Wire

/// A Device Security Manager: the TDISP responder of one device, serving its own function and
/// the functions and VFs it manages, with one TDI state per INTERFACE_ID
/// (docs/spec/tdisp-spdm.md §2; DSM discovery in docs/spec/kernel-uapi.md §6.2).
///
/// State with identity, so a class; every entry point takes one lock and never calls out while
/// holding it, so the simulated kernel may call ``respond(_:)`` under its own locks.
///
/// ## Checks, in order (EMU-TDISP-5)
/// For every request, the first failing check answers TDISP_ERROR and changes nothing:
/// 1. fewer than 16 bytes → INVALID_REQUEST (FUNCTION_ID copied when 8 bytes are present);
/// 2. MessageType not served by the profile → UNSUPPORTED_REQUEST, ERROR_DATA = the code;
/// 3. size ≠ the message's exact size (§2.3) → INVALID_REQUEST;
/// 4. TDISPVersion ≠ 0x10 → VERSION_MISMATCH;
/// 5. INTERFACE_ID (all 12 bytes) not a TDI of this DSM → INVALID_INTERFACE;
/// 6. the state legality table of §2.7 (with EMU-TDISP-3) → INVALID_INTERFACE_STATE;
/// 7. the message's fields (LOCK: EMU-TDISP-1, EMU-TDISP-6; REPORT: LENGTH 0 or OFFSET ≥ size →
///    INVALID_REQUEST; START: nonce → INVALID_NONCE; LOCK: RNG failure → INSUFFICIENT_ENTROPY).
///
/// Responses copy FUNCTION_ID and zero the 8 reserved bytes (§2.1). A TDISP_ERROR never changes
/// state (EMU-TDISP-4); ERROR is entered only through ``detect(_:)``.
public final class DSM: Sendable {
    /// The behaviour profile.
    public let profile: DSMProfile
    /// The functions this DSM serves, in the order given.
    public let functions: [TDIFunction]
    private let state: Locked<DSMState>

    /// Creates a DSM for `functions`, every TDI in CONFIG_UNLOCKED.
    ///
    /// Throws ``DSMConfigurationError/duplicateInterface(_:)`` when two functions share an
    /// INTERFACE_ID, ``DSMConfigurationError/noFunctions`` for an empty list (except with a
    /// profile that uses spdm-emu's single global context, which needs none).
    public init(functions: [TDIFunction], profile: DSMProfile = .standard,
                entropy: DSMEntropy = .system) throws(DSMConfigurationError) {
        var seen = Set<InterfaceID>()
        for function in functions {
            guard seen.insert(function.interfaceID).inserted else { throw .duplicateInterface(function.interfaceID) }
        }
        var tdis: [InterfaceID: TDIContext] = [:]
        if profile.versionInitialisesGlobalContext {
            let zero = InterfaceID(functionID: FunctionID(rawValue: 0))
            tdis[zero] = TDIContext(interfaceID: zero, function: functions.first { $0.interfaceID == zero })
        } else {
            guard !functions.isEmpty else { throw .noFunctions }
            for function in functions {
                tdis[function.interfaceID] = TDIContext(interfaceID: function.interfaceID, function: function)
            }
        }
        self.profile = profile
        self.functions = functions
        self.state = Locked(DSMState(tdis: tdis, entropy: EntropyState(entropy)))
    }

    /// The INTERFACE_IDs this DSM answers for now, ordered by FUNCTION_ID.
    public var interfaceIDs: [InterfaceID] {
        state.withLock { $0.tdis.keys.sorted { $0.functionID.rawValue < $1.functionID.rawValue } }
    }

    /// A copy of one TDI's state, or nil if `interfaceID` is not one of this DSM's TDIs.
    public func tdi(_ interfaceID: InterfaceID) -> TDISnapshot? {
        state.withLock { $0.tdis[interfaceID]?.snapshot }
    }

    /// Answers one TDISP request (bytes of §2) with one TDISP response. Never traps.
    public func respond(_ request: [UInt8]) -> [UInt8] {
        state.withLock { state in handle(request, &state) }
    }

    /// Sends `request` and decodes the answer: a convenience for requesters and tests.
    /// Throws only if the response cannot be decoded (which would be a DSM bug).
    public func exchange(_ request: some TDISPMessage) throws(WireError) -> TDISPResponse {
        try TDISPResponse(decoding: respond(request.encoded()))
    }

    // MARK: - Change detectors

    /// Reports a change to the device that affects locked configuration: every matching TDI in
    /// CONFIG_LOCKED or RUN moves to ERROR (its START nonce is destroyed, EMU-TDISP-2); TDIs in
    /// CONFIG_UNLOCKED or ERROR are untouched. Returns the INTERFACE_IDs moved, by FUNCTION_ID.
    ///
    /// Matching: `lockedRegisterWrite` and `barChange` affect that function; a
    /// `functionLevelReset` of a PF also affects its VFs (an FLR of the PF clears VF Enable);
    /// `linkLoss` affects every TDI of the DSM. Source: docs/spec/tdisp-spdm.md §2.7 "Transitions
    /// to ERROR" [I][CHECK].
    @discardableResult
    public func detect(_ event: DeviceChangeEvent) -> [InterfaceID] {
        state.withLock { state in
            var moved = [InterfaceID]()
            for (id, var tdi) in state.tdis where tdi.state == .configLocked || tdi.state == .run {
                guard event.affects(functionID: id.functionID, physicalFunction: tdi.function?.physicalFunction) else {
                    continue
                }
                tdi.state = .error
                if profile.singleUseNonce { tdi.nonce = nil }
                state.tdis[id] = tdi
                moved.append(id)
            }
            return moved.sorted { $0.functionID.rawValue < $1.functionID.rawValue }
        }
    }

    // MARK: - The responder

    private func handle(_ bytes: [UInt8], _ state: inout DSMState) -> [UInt8] {
        // 1. A header.
        guard let header = try? TDISPHeader(decoding: bytes) else {
            var reader = ByteReader(bytes, offset: 4)
            let functionID = FunctionID(rawValue: (try? reader.u32()) ?? 0)
            let version = profile.errorVersionIsV1_0 ? TDISPVersion.v1_0 : (bytes.first ?? TDISPVersion.v1_0)
            return TDISPErrorResponse(version: version, interfaceID: InterfaceID(functionID: functionID),
                                      errorCode: .invalidRequest).encoded()
        }
        let reply = InterfaceID(functionID: header.interfaceID.functionID)
        let errorVersion = profile.errorVersionIsV1_0 ? TDISPVersion.v1_0 : header.version
        func fail(_ code: TDISPErrorCode, _ data: UInt32 = 0) -> [UInt8] {
            TDISPErrorResponse(version: errorVersion, interfaceID: reply, errorCode: code, errorData: data).encoded()
        }
        // 2. A request this DSM serves.
        guard profile.requestMessagesSupported.contains(header.messageType) else {
            return fail(.unsupportedRequest, UInt32(header.messageType.rawValue))
        }
        // 3. The exact size (the codec checks it).
        guard let request = try? TDISPRequest(decoding: bytes) else { return fail(.invalidRequest) }
        // 4. The version.
        guard header.version == TDISPVersion.v1_0 else { return fail(.versionMismatch) }
        // 5. The interface (spdm-emu: GET_TDISP_VERSION re-initialises its one context first).
        if profile.versionInitialisesGlobalContext, case .getVersion = request {
            let function = functions.first { $0.interfaceID == header.interfaceID }
            state.tdis = [header.interfaceID: TDIContext(interfaceID: header.interfaceID, function: function)]
        }
        guard var tdi = state.tdis[header.interfaceID] else { return fail(.invalidInterface) }

        // 6-7. State and fields, per message; `tdi` is written back only on success.
        let response: any TDISPMessage
        switch request {
        case .getVersion:
            response = TDISPVersionResponse(interfaceID: reply, versions: [TDISPVersion.v1_0])

        case .getCapabilities:
            response = TDISPCapabilities(
                interfaceID: reply, dsmCaps: 0,
                requestMessagesSupported: profile.requestMessagesSupported,
                lockInterfaceFlagsSupported: profile.lockInterfaceFlagsSupported,
                deviceAddressWidth: profile.deviceAddressWidth,
                numRequestsThis: profile.numRequestsThis, numRequestsAll: profile.numRequestsAll)

        case .getDeviceInterfaceState:
            response = DeviceInterfaceStateResponse(interfaceID: reply, state: tdi.state)

        case let .lockInterface(lock):
            guard tdi.state == .configUnlocked else { return fail(.invalidInterfaceState) }
            if profile.checkLockParameters {
                // EMU-TDISP-1: no flag outside those supported (reserved bits are never supported).
                guard lock.flags.isSubset(of: profile.lockInterfaceFlagsSupported.intersection(.defined)) else {
                    return fail(.invalidRequest)
                }
                // EMU-TDISP-6: the offset moves whole 4 KiB pages.
                guard lock.mmioReportingOffset % MMIORange.pageSize == 0 else { return fail(.invalidRequest) }
            }
            let report: DeviceInterfaceReport
            if let fixed = profile.fixedReport {
                report = fixed
            } else if let function = tdi.function {
                do {
                    report = try InterfaceReportBuilder.build(function: function, flags: lock.flags,
                                                              mmioReportingOffset: lock.mmioReportingOffset)
                } catch .addressOverflow {
                    return fail(.invalidRequest)
                } catch {
                    return fail(.invalidDeviceConfiguration)
                }
            } else {
                return fail(.invalidDeviceConfiguration)
            }
            guard let bytes = state.entropy.nonceBytes(), let nonce = StartInterfaceNonce(bytes) else {
                return fail(.insufficientEntropy)
            }
            tdi.state = .configLocked
            tdi.nonce = nonce
            tdi.lock = lock
            tdi.report = report
            tdi.reportBytes = report.encoded()
            tdi.p2pStreams = []
            tdi.mmioAttributes = [:]
            response = LockInterfaceResponse(interfaceID: reply, nonce: nonce)

        case let .getDeviceInterfaceReport(get):
            if profile.reportRequiresLock {
                guard tdi.state == .configLocked || tdi.state == .run else { return fail(.invalidInterfaceState) }
            }
            let size = tdi.reportBytes.count
            let length = min(Int(get.length), Int(profile.maxPortion))
            guard length > 0 else { return fail(.invalidRequest) }
            guard Int(get.offset) < size else { return fail(.invalidRequest) }
            let start = Int(get.offset)
            let portion = min(length, size - start)
            response = DeviceInterfaceReportResponse(
                interfaceID: reply, remainderLength: UInt16(clamping: size - start - portion),
                portion: Array(tdi.reportBytes[start..<start + portion]))

        case let .startInterface(start):
            guard tdi.state == .configLocked else { return fail(.invalidInterfaceState) }
            guard let stored = tdi.nonce, stored.constantTimeEquals(start.nonce) else { return fail(.invalidNonce) }
            tdi.state = .run
            if profile.singleUseNonce { tdi.nonce = nil }
            response = StartInterfaceResponse(interfaceID: reply)

        case .stopInterface:
            if tdi.state == .configUnlocked {
                // EMU-TDISP-3: accepted with no change, unless the profile is stopStrict.
                if profile.stopStrict { return fail(.invalidInterfaceState) }
            } else {
                tdi.state = .configUnlocked
                if profile.singleUseNonce { tdi.nonce = nil }
                if profile.stopDiscardsReport {
                    tdi.report = nil
                    tdi.reportBytes = []
                }
                tdi.lock = nil
                tdi.p2pStreams = []
                tdi.mmioAttributes = [:]
            }
            response = StopInterfaceResponse(interfaceID: reply)

        case let .bindP2PStream(bind):
            guard tdi.state == .run else { return fail(.invalidInterfaceState) }
            guard tdi.lock?.flags.contains(.bindP2P) == true, !tdi.p2pStreams.contains(bind.p2pStreamID) else {
                return fail(.invalidRequest)
            }
            tdi.p2pStreams.insert(bind.p2pStreamID)
            response = BindP2PStreamResponse(interfaceID: reply)

        case let .unbindP2PStream(unbind):
            guard tdi.state == .run else { return fail(.invalidInterfaceState) }
            guard tdi.p2pStreams.contains(unbind.p2pStreamID) else { return fail(.invalidRequest) }
            tdi.p2pStreams.remove(unbind.p2pStreamID)
            response = UnbindP2PStreamResponse(interfaceID: reply)

        case let .setMMIOAttribute(set):
            guard tdi.state == .run else { return fail(.invalidInterfaceState) }
            // The range must be one the report lists as updatable; only IS_NON_TEE_MEM may change.
            let wanted = set.range
            guard let index = tdi.report?.mmioRanges.firstIndex(where: {
                $0.firstPage == wanted.firstPage && $0.numberOfPages == wanted.numberOfPages
                    && $0.rangeID == wanted.rangeID && $0.attributes.contains(.memoryAttributeUpdatable)
            }), let reported = tdi.report?.mmioRanges[index],
                reported.attributes.subtracting(.nonTEEMemory) == wanted.attributes.subtracting(.nonTEEMemory)
            else { return fail(.invalidRequest) }
            tdi.mmioAttributes[index] = wanted.attributes
            response = SetMMIOAttributeResponse(interfaceID: reply)

        case .vdm:
            // No vendor-defined messages are defined by this DSM (never in a profile's served set).
            return fail(.unsupportedRequest, UInt32(header.messageType.rawValue))
        }
        state.tdis[header.interfaceID] = tdi
        return response.encoded()
    }
}

/// A change the device model observed that may affect locked TDIs (``DSM/detect(_:)``).
public enum DeviceChangeEvent: Hashable, Sendable {
    /// A configuration write to a register that is locked while the TDI is CONFIG_LOCKED/RUN
    /// (`offset` in configuration space, for the trace).
    case lockedRegisterWrite(FunctionID, offset: UInt16)
    /// A BAR of the function was reprogrammed (or MSI-X table/PBA moved).
    case barChange(FunctionID, barIndex: UInt8)
    /// A Function Level Reset of the function (of a PF: also its VFs).
    case functionLevelReset(FunctionID)
    /// The link went down (or the IDE stream / SPDM session was lost): every TDI.
    case linkLoss

    func affects(functionID: FunctionID, physicalFunction: FunctionID?) -> Bool {
        switch self {
        case let .lockedRegisterWrite(target, _), let .barChange(target, _):
            return target == functionID
        case let .functionLevelReset(target):
            return target == functionID || target == physicalFunction
        case .linkLoss:
            return true
        }
    }
}

/// A copy of one TDI's state (``DSM/tdi(_:)``).
public struct TDISnapshot: Hashable, Sendable {
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// TDI_STATE.
    public var state: TDIState
    /// True while a START nonce is stored (EMU-TDISP-2: only in CONFIG_LOCKED).
    public var hasNonce: Bool
    /// The accepted LOCK_INTERFACE_REQUEST, while locked.
    public var lock: LockInterfaceRequest?
    /// The interface report built at LOCK (nil before LOCK and after STOP, unless the profile
    /// keeps it).
    public var report: DeviceInterfaceReport?
    /// P2P stream ids bound by BIND_P2P_STREAM_REQUEST.
    public var p2pStreams: Set<UInt8>
    /// RANGE_ATTRIBUTES set by SET_MMIO_ATTRIBUTE_REQUEST, by index into the report's ranges.
    public var mmioAttributes: [Int: MMIORangeAttributes]
}

/// Why a ``DSM`` could not be created.
public enum DSMConfigurationError: Error, Equatable, Sendable {
    /// Two functions have the same INTERFACE_ID.
    case duplicateInterface(InterfaceID)
    /// No function to serve.
    case noFunctions
}

struct TDIContext: Sendable {
    var interfaceID: InterfaceID
    var function: TDIFunction?
    var state: TDIState = .configUnlocked
    var nonce: StartInterfaceNonce?
    var lock: LockInterfaceRequest?
    var report: DeviceInterfaceReport?
    var reportBytes: [UInt8] = []
    var p2pStreams: Set<UInt8> = []
    var mmioAttributes: [Int: MMIORangeAttributes] = [:]

    init(interfaceID: InterfaceID, function: TDIFunction?) {
        self.interfaceID = interfaceID
        self.function = function
    }

    var snapshot: TDISnapshot {
        TDISnapshot(interfaceID: interfaceID, state: state, hasNonce: nonce != nil, lock: lock, report: report,
                    p2pStreams: p2pStreams, mmioAttributes: mmioAttributes)
    }
}

struct DSMState: Sendable {
    var tdis: [InterfaceID: TDIContext]
    var entropy: EntropyState
}
