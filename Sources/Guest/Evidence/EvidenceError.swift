/// Why the guest refused a device's evidence.
///
/// Shaped like swift-certificates' errors: an extensible ``code`` and a ``reason`` that names
/// the evidence object and what failed in it. Two errors are equal when their codes are equal,
/// so callers and tests switch on the code and new codes do not break them.
///
/// Source: issue 6 deliverable 2; docs/identity.md ("Verifying evidence in the guest").
public struct EvidenceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public let code: Code
    /// A sentence naming the object (certificate chain, measurements, …) and what failed.
    public let reason: String

    /// Creates an error with `code` and `reason`.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// Equality compares ``code`` only.
    public static func == (lhs: EvidenceError, rhs: EvidenceError) -> Bool { lhs.code == rhs.code }

    /// Hashes ``code`` only, consistent with `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// `code: reason`.
    public var description: String { "\(code): \(reason)" }

    /// The kind of an ``EvidenceError``.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case malformed
            case chainUntrusted
            case signatureInvalid
            case digestMismatch
            case nonceMismatch
            case unsupportedAlgorithm
        }

        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// The bytes are not the structure they claim to be (SPDM certificate chain, DER
        /// certificate, GET_MEASUREMENTS, MEASUREMENTS, measurement block, a digest of the
        /// wrong size).
        public static let malformed = Code(.malformed)
        /// The certificate chain does not lead to the trust anchor under the policy: no valid
        /// path (a bad certificate signature, another root), an expired certificate, a leaf
        /// without digitalSignature, a CA without CA rights, a key that is not P-384.
        public static let chainUntrusted = Code(.chainUntrusted)
        /// The MEASUREMENTS signature does not verify with the leaf certificate's key.
        public static let signatureInvalid = Code(.signatureInvalid)
        /// An object's digest differs from the digest the TSM reports, or the chain's RootHash
        /// is not the digest of the root certificate it carries.
        public static let digestMismatch = Code(.digestMismatch)
        /// GET_MEASUREMENTS carries another nonce than the one the guest chose (a replay).
        public static let nonceMismatch = Code(.nonceMismatch)
        /// A field names an algorithm the verifier does not support (an SPDM version before 1.2).
        public static let unsupportedAlgorithm = Code(.unsupportedAlgorithm)

        /// The code's name, e.g. `malformed`.
        public var description: String { backing.rawValue }
    }
}
