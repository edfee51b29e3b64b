import SystemPackage
import UAPI

/// Why the guest refused (or could not accept) a device. An extensible ``code``, a ``reason``
/// naming the object or step and what failed, the ``step`` of the flow, and the errno /
/// firmware status underneath when a call failed. Equal by code (docs/STYLE.md).
///
/// | Code | When |
/// |---|---|
/// | `certificateUntrusted` | the certificate chain does not verify to the trust anchor (or does not decode) |
/// | `certificateDigestMismatch` | the chain differs from what the TSM digested |
/// | `measurementsInvalid` | the measurements do not decode or their signature does not verify with the leaf key |
/// | `measurementsDigestMismatch` | the measurements differ from what the TSM digested |
/// | `reportDigestMismatch` | the interface report differs from what the TSM digested |
/// | `reportMalformed` | the (digest-matching) report does not decode |
/// | `mmioRangeNotReported` | an MMIO range to validate lies in no MMIO_RANGE of the report |
/// | `mmioValidationFailed` | VALIDATE_MMIO or the guest's acceptance of a range failed |
/// | `unexpectedTDIState` | the TDI is not in the state the step needs (not locked before, not RUN after) |
/// | `evidenceChanged` | the TSM's nonces or digests changed during the flow |
/// | `hostRequestFailed` | a request through the host failed (errno, `tsm_code`) or the host lacks the evidence |
/// | `tsmCallFailed` | a direct TSM call (RSI, TDCALL, PSP message) returned a failure status |
/// | `dmaEnableFailed` | enabling DMA failed |
public struct GuestAcceptanceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public let code: Code
    /// A sentence naming the object or step and what failed.
    public let reason: String
    /// The flow step that failed (the ``GuestTranscriptEvent/step`` of its event).
    public let step: String
    /// The errno of a failed host request.
    public let errno: Errno?
    /// `tsm_code` of a failed host request, or the status of a failed direct TSM call.
    public let status: UInt64?
    /// The evidence verifier's error underneath, when there is one.
    public let evidenceError: EvidenceError?

    /// Creates the value from its fields.
    public init(_ code: Code, _ reason: String, step: String, errno: Errno? = nil, status: UInt64? = nil,
                evidenceError: EvidenceError? = nil) {
        self.code = code
        self.reason = reason
        self.step = step
        self.errno = errno
        self.status = status
        self.evidenceError = evidenceError
    }

    /// Equality compares ``code`` only.
    public static func == (lhs: GuestAcceptanceError, rhs: GuestAcceptanceError) -> Bool { lhs.code == rhs.code }

    /// Hashes ``code`` only, consistent with `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// `code (step): reason`.
    public var description: String { "\(code) (\(step)): \(reason)" }

    /// The kind of a ``GuestAcceptanceError``; ``rawValue`` is the camel-case name (for JSON).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The code's name, e.g. "reportDigestMismatch".
        public let rawValue: String
        /// A code named `rawValue`.
        public init(rawValue: String) { self.rawValue = rawValue }

        /// The certificate chain does not verify to the trust anchor.
        public static let certificateUntrusted = Code(rawValue: "certificateUntrusted")
        /// The certificate chain differs from what the TSM digested.
        public static let certificateDigestMismatch = Code(rawValue: "certificateDigestMismatch")
        /// The measurements do not decode or their signature does not verify.
        public static let measurementsInvalid = Code(rawValue: "measurementsInvalid")
        /// The measurements differ from what the TSM digested.
        public static let measurementsDigestMismatch = Code(rawValue: "measurementsDigestMismatch")
        /// The interface report differs from what the TSM digested.
        public static let reportDigestMismatch = Code(rawValue: "reportDigestMismatch")
        /// The interface report does not decode.
        public static let reportMalformed = Code(rawValue: "reportMalformed")
        /// An MMIO range lies in no MMIO_RANGE of the report.
        public static let mmioRangeNotReported = Code(rawValue: "mmioRangeNotReported")
        /// Validating or accepting an MMIO range failed.
        public static let mmioValidationFailed = Code(rawValue: "mmioValidationFailed")
        /// The TDI is not in the state the step needs.
        public static let unexpectedTDIState = Code(rawValue: "unexpectedTDIState")
        /// The TSM's nonces or digests changed during the flow.
        public static let evidenceChanged = Code(rawValue: "evidenceChanged")
        /// A request through the host failed.
        public static let hostRequestFailed = Code(rawValue: "hostRequestFailed")
        /// A direct TSM call returned a failure status.
        public static let tsmCallFailed = Code(rawValue: "tsmCallFailed")
        /// Enabling DMA failed.
        public static let dmaEnableFailed = Code(rawValue: "dmaEnableFailed")

        /// The name.
        public var description: String { rawValue }
    }
}
