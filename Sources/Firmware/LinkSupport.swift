// Pieces the three firmware models share: the modelled device link (secure session + IDE
// stream), the report fetch, and the first, architecture-independent envelope checks of a
// driver's guest_req.
import SystemPackage
import TDISP
import Wire

/// A connected DSM as a firmware model keeps it.
struct DeviceLink: Sendable {
    var transport: any TDISPTransport
    var evidence: DeviceEvidence
    /// TDISP_CAPABILITIES as received at connect.
    var capabilities: TDISPCapabilities
    /// Modelled SPDM session id and IDE stream id of the link.
    var sessionID: UInt32
    var ideStreamID: UInt8

    /// LOCK flags the models request: NO_FW_UPDATE | LOCK_MSIX where the DSM supports them
    /// (tdisp-spdm.md §2.5; EMU-TDISP-1 makes the DSM reject unsupported bits).
    var lockFlags: LockInterfaceFlags { capabilities.lockInterfaceFlagsSupported.intersection([.noFirmwareUpdate, .lockMSIX]) }

    /// The 28 payload bytes of TDISP_CAPABILITIES (after the 16-byte header), TDX's device info.
    var capabilitiesPayload: [UInt8] { Array(capabilities.encoded().dropFirst(TDISPHeader.size)) }

    /// Runs GET_TDISP_VERSION and GET_TDISP_CAPABILITIES with the DSM, as the TSM does once the
    /// SPDM session is up. Fails when the DSM does not offer TDISP 1.0.
    static func establish(dsm: FunctionID, transport: any TDISPTransport, evidence: DeviceEvidence,
                          sessionID: UInt32, ideStreamID: UInt8, faults: inout FaultState) throws(DeviceFailure) -> DeviceLink {
        let requester = TDISPRequester(transport: transport, function: dsm)
        let versions = try requester.versions(faults: &faults)
        guard versions.contains(TDISPVersion.v1_0) else { throw .malformed }
        let capabilities = try requester.capabilities(faults: &faults)
        return DeviceLink(transport: transport, evidence: evidence, capabilities: capabilities,
                          sessionID: sessionID, ideStreamID: ideStreamID)
    }

    func requester(_ function: FunctionID) -> TDISPRequester {
        TDISPRequester(transport: transport, function: function)
    }
}

/// The result of locking a TDI over TDISP: the START nonce, the report bytes and its MMIO ranges.
struct LockedInterface: Sendable {
    var nonce: StartInterfaceNonce
    var report: [UInt8]
    var ranges: [MMIORange]
}

extension DeviceLink {
    /// LOCK_INTERFACE_REQUEST then GET_DEVICE_INTERFACE_REPORT.
    func lockAndFetchReport(_ function: FunctionID, faults: inout FaultState) throws(DeviceFailure) -> LockedInterface {
        let requester = requester(function)
        let nonce = try requester.lock(flags: lockFlags, streamID: ideStreamID, mmioReportingOffset: 0, faults: &faults)
        let (bytes, report) = try requester.report(faults: &faults)
        return LockedInterface(nonce: nonce, report: bytes, ranges: report.mmioRanges)
    }

    /// STOP_INTERFACE_REQUEST, best effort (unbind and failed binds); failures are ignored.
    func stopQuietly(_ function: FunctionID, faults: inout FaultState) {
        try? requester(function).stop(faults: &faults)
    }
}

/// The driver-wide envelope checks shared by the three drivers, in their order
/// (arch-backends.md §1.2, §6.1-§6.3): own tvm_arch, user pointer, known op.
/// Returns the op, or the errno (always EINVAL).
func envelopeOp(_ request: GuestRequest, arch: TSMArch) -> Result<GuestOp, Errno> {
    guard request.tvmArch == arch.rawValue else { return .failure(.invalidArgument) }
    guard request.isUserPointer else { return .failure(.invalidArgument) }
    guard let op = GuestOp(rawValue: request.op) else { return .failure(.invalidArgument) }
    return .success(op)
}

/// Copies the request payload in (EFAULT when any byte is unmapped).
func copyIn(_ request: GuestRequest, _ memory: any UserMemory) -> [UInt8]? {
    memory.readOrNil(request.requestAddress, count: Int(request.requestLength))
}

/// True when [aBase, aTop) and [bBase, bTop) share a byte.
func overlaps(_ aBase: UInt64, _ aTop: UInt64, _ bBase: UInt64, _ bTop: UInt64) -> Bool {
    aBase < bTop && bBase < aTop
}

/// True when [base, base + size) lies inside one reported MMIO range (no overflow).
func insideReport(_ ranges: [MMIORange], base: UInt64, size: UInt64) -> Bool {
    let (top, overflow) = base.addingReportingOverflow(size)
    guard !overflow else { return false }
    return ranges.contains { range in
        guard let rangeBase = range.byteBase else { return false }
        let (rangeTop, rangeOverflow) = rangeBase.addingReportingOverflow(range.byteSize)
        return !rangeOverflow && base >= rangeBase && top <= rangeTop
    }
}

let pageSize: UInt64 = 4096
