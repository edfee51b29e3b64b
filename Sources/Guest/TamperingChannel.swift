// A channel decorator that plays the untrusted host altering one evidence object on its way to
// the guest (issue 6 deliverable 4: `tsmctl assign --tamper report|measurements|certificate`).
import Firmware
import UAPI

/// Wraps a ``GuestRequestChannel`` and alters one named evidence object in what the host hands
/// the guest: READ_OBJECT responses (CCA object types under ``ccaObjectNumbering``, EMU-CCA-1;
/// TDX type 1 = TDI report, EMU-TDX-2) and ``GuestRequestChannel/hostEvidence(tvmArch:)``.
/// Every other request and response passes through unchanged.
///
/// The default alteration flips bit 0 of the object's middle byte — inside the intermediate
/// certificate of a generated SPDM chain, a measurement value of the standard record, an
/// MMIO_RANGE or the device-specific bytes of a report — so the guest refuses with
/// `certificateUntrusted`, `measurementsInvalid` or `reportDigestMismatch` respectively.
public struct TamperingChannel: GuestRequestChannel {
    /// The object to alter, named as `--tamper` names it.
    public enum Target: String, Sendable, CaseIterable {
        /// The TDISP interface report.
        case report
        /// The measurements report.
        case measurements
        /// The SPDM certificate chain.
        case certificate

        /// The guest's refusal code for this tampering under the default alteration.
        public var expectedRefusal: GuestAcceptanceError.Code {
            switch self {
            case .report: return .reportDigestMismatch
            case .measurements: return .measurementsInvalid
            case .certificate: return .certificateUntrusted
            }
        }
    }

    /// The channel underneath (the honest host path).
    public let base: any GuestRequestChannel
    /// The object altered.
    public let target: Target
    /// The alteration.
    public let alter: @Sendable ([UInt8]) -> [UInt8]
    /// The CCA object numbering used to recognise READ_OBJECT types.
    public let ccaObjectNumbering: FirmwareProfile.CCAObjectNumbering

    /// Wraps `base`, altering `target` with `alter` (default: ``flipMiddleBit(_:)``).
    public init(_ base: any GuestRequestChannel, tampering target: Target,
                ccaObjectNumbering: FirmwareProfile.CCAObjectNumbering = .linux,
                alter: @escaping @Sendable ([UInt8]) -> [UInt8] = TamperingChannel.flipMiddleBit) {
        self.base = base
        self.target = target
        self.ccaObjectNumbering = ccaObjectNumbering
        self.alter = alter
    }

    /// `bytes` with bit 0 of the byte at `count / 2` flipped (empty stays empty).
    public static func flipMiddleBit(_ bytes: [UInt8]) -> [UInt8] {
        guard !bytes.isEmpty else { return bytes }
        var altered = bytes
        altered[bytes.count / 2] ^= 0x01
        return altered
    }

    /// Forwards to ``base``; alters the object bytes of a READ_OBJECT response for ``target``.
    public func request(op: GuestRequestOp, tvmArch: TVMArch, payload: [UInt8], responseCapacity: Int) async throws -> GuestResponse {
        var response = try await base.request(op: op, tvmArch: tvmArch, payload: payload, responseCapacity: responseCapacity)
        guard op == .readObject, let read = try? CCA.ReadObjectRequest(decoding: payload), names(read.objectType, tvmArch) else {
            return response
        }
        let written = max(0, min(response.bytes.count, responseCapacity - max(response.residue, 0)))
        response.bytes = alter(Array(response.bytes.prefix(written))) + response.bytes.dropFirst(written)
        return response
    }

    /// Forwards to ``base``; alters ``target`` in the host's evidence copy.
    public func hostEvidence(tvmArch: TVMArch) async throws -> HostEvidence {
        var evidence = try await base.hostEvidence(tvmArch: tvmArch)
        switch target {
        case .report: evidence.interfaceReport = evidence.interfaceReport.map(alter)
        case .measurements: evidence.measurements = evidence.measurements.map(alter)
        case .certificate: evidence.certificateChain = evidence.certificateChain.map(alter)
        }
        return evidence
    }

    /// True when READ_OBJECT `objectType` of `arch` is the target object.
    private func names(_ objectType: UInt32, _ arch: TVMArch) -> Bool {
        switch arch {
        case .cca:
            switch (CCA.ObjectType.object(objectType, numbering: ccaObjectNumbering), target) {
            case (.interfaceReport?, .report), (.measurements?, .measurements), (.certificateChain?, .certificate): return true
            default: return false
            }
        case .tdx: return target == .report && objectType == TDX.ObjectType.tdiReport.rawValue
        case .sev: return false
        }
    }
}
