import Crypto

/// The digest algorithms a TSM uses to report evidence digests to the guest: SHA-384 (SEV-TIO
/// TDI_INFO's 48-byte digests, the EMU-SPDM-2 suite), SHA-256 and SHA-512 (CCA RSI_VDEV_GET_INFO
/// carries 64-byte digest fields and a hash_algo; spec arch-backends §1).
public enum EvidenceDigestAlgorithm: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// SHA-256: 32 bytes.
    case sha256
    /// SHA-384: 48 bytes.
    case sha384
    /// SHA-512: 64 bytes.
    case sha512

    /// The digest size in bytes.
    public var digestSize: Int {
        switch self {
        case .sha256: return 32
        case .sha384: return 48
        case .sha512: return 64
        }
    }

    /// The digest of `bytes`.
    public func digest(_ bytes: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: return Array(SHA256.hash(data: bytes))
        case .sha384: return Array(SHA384.hash(data: bytes))
        case .sha512: return Array(SHA512.hash(data: bytes))
        }
    }

    /// "SHA-256", "SHA-384" or "SHA-512".
    public var description: String {
        switch self {
        case .sha256: return "SHA-256"
        case .sha384: return "SHA-384"
        case .sha512: return "SHA-512"
        }
    }
}

/// The evidence objects a guest learns through the (untrusted) host, named in errors and used to
/// label digest checks.
public struct EvidenceObject: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The object's name as errors print it.
    public let rawValue: String
    /// An object named `rawValue`.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The SPDM certificate chain (spec §4.5).
    public static let certificateChain = EvidenceObject(rawValue: "certificate chain")
    /// The measurements (GET_MEASUREMENTS / MEASUREMENTS, spec §4.7).
    public static let measurements = EvidenceObject(rawValue: "measurements")
    /// The TDISP DEVICE_INTERFACE_REPORT (spec §2.9).
    public static let interfaceReport = EvidenceObject(rawValue: "interface report")
    /// The SPDM VCA transcript.
    public static let vca = EvidenceObject(rawValue: "VCA")
    /// The device's public key.
    public static let publicKey = EvidenceObject(rawValue: "public key")

    /// The object's name.
    public var description: String { rawValue }
}
