/// Why a device identity (key, certificate chain, measurement record) could not be made, loaded
/// or decoded.
///
/// Shaped like swift-certificates' errors: an extensible ``code`` plus a ``reason`` that names
/// what failed (the PEM block, the certificate by position, the field). Two errors are equal when
/// their codes are equal, so tests compare codes and new codes do not break clients.
///
/// Source: docs/identity.md ("Errors").
public struct IdentityError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public let code: Code
    /// A sentence naming the input and what is wrong with it.
    public let reason: String

    /// Creates an error with `code` and `reason`.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// Equality compares ``code`` only.
    public static func == (lhs: IdentityError, rhs: IdentityError) -> Bool { lhs.code == rhs.code }

    /// Hashes ``code`` only, consistent with `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// `code: reason`.
    public var description: String { "\(code): \(reason)" }

    /// The kind of an ``IdentityError``: a closed set today, extensible without breaking clients.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Hashable, Sendable {
            case malformedPEM
            case malformedCertificate
            case malformedKey
            case unsupportedKey
            case keyMismatch
            case chainOrder
            case chainTooLarge
            case malformed
            case invalidParameter
            case signingFailed
        }

        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// Text that should hold PEM blocks does not, or holds none of the expected label.
        public static let malformedPEM = Code(.malformedPEM)
        /// A certificate's DER bytes do not decode as an X.509 certificate.
        public static let malformedCertificate = Code(.malformedCertificate)
        /// A private key's PEM does not decode as a P-384 EC key (SEC1 or PKCS#8).
        public static let malformedKey = Code(.malformedKey)
        /// A key (in a certificate or given) is not ECDSA P-384, the one suite of EMU-SPDM-2 that
        /// identities use.
        public static let unsupportedKey = Code(.unsupportedKey)
        /// The private key does not belong to the leaf certificate's public key.
        public static let keyMismatch = Code(.keyMismatch)
        /// The certificates do not form one chain from a self-signed root to a leaf (each
        /// certificate issued by the one before it), in either order.
        public static let chainOrder = Code(.chainOrder)
        /// The SPDM certificate chain would exceed 0xFFFF bytes (its Length is a u16 below
        /// SPDM 1.4, spec §4.5).
        public static let chainTooLarge = Code(.chainTooLarge)
        /// Bytes that should be an SPDM structure (certificate chain, measurement block or
        /// record) are not: truncated, a length that disagrees, a reserved value.
        public static let malformed = Code(.malformed)
        /// A caller-supplied parameter is out of its range (a nonce that is not 32 bytes, a
        /// measurement index 0 or 0xFF, a serial that is not a PrintableString).
        public static let invalidParameter = Code(.invalidParameter)
        /// swift-crypto or swift-certificates refused to sign or serialize.
        public static let signingFailed = Code(.signingFailed)

        /// The code's name, e.g. `malformed`.
        public var description: String { backing.rawValue }
    }
}
