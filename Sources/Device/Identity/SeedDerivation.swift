import Crypto

/// Deterministic derivation of identity material (P-384 private keys, certificate serial numbers,
/// measurement values, nonces) from a seed, so that keys, names and measurement records are the
/// same in every run (EMU-ID-1, docs/identity.md).
///
/// Every output is HKDF-SHA384 (RFC 5869) with
/// - IKM = the seed (any length, empty allowed),
/// - salt = the 24 ASCII bytes `"TSMKit device identity 1"`,
/// - info = an ASCII label naming the output (e.g. `"root CA key"`), then one counter byte,
/// - L = the output size.
public enum SeedDerivation {
    /// The HKDF salt of every derivation: ASCII `"TSMKit device identity 1"`.
    public static let salt: [UInt8] = Array("TSMKit device identity 1".utf8)

    /// The order n of the P-384 group (SEC 2 §2.5.1 / FIPS 186-4 D.1.2.4), big-endian, 48 bytes.
    public static let p384Order: [UInt8] = [
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        0xC7, 0x63, 0x4D, 0x81, 0xF4, 0x37, 0x2D, 0xDF, 0x58, 0x1A, 0x0D, 0xB2,
        0x48, 0xB0, 0xA7, 0x7A, 0xEC, 0xEC, 0x19, 0x6A, 0xCC, 0xC5, 0x29, 0x73,
    ]

    /// The most HKDF-SHA384 can produce: 255 × 48 bytes (RFC 5869 §2.3).
    public static let maximumCount = 255 * 48

    /// `count` bytes of HKDF-SHA384(IKM = `seed`, salt = ``salt``, info = `label` ‖ `counter`).
    /// `count` is clamped to 0…``maximumCount``.
    public static func bytes(seed: [UInt8], label: String, counter: UInt8 = 0, count: Int) -> [UInt8] {
        let info = Array(label.utf8) + [counter]
        let key = HKDF<SHA384>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: seed), salt: salt, info: info,
            outputByteCount: min(max(0, count), maximumCount))
        return key.withUnsafeBytes { Array($0) }
    }

    /// A P-384 private key whose scalar d is the first 48-byte HKDF output (counter 0, 1, …)
    /// that satisfies 1 ≤ d ≤ n − 1, read big-endian (rejection sampling: a candidate is
    /// refused with probability about 2⁻¹⁹⁰, so counter 0 is used in practice).
    ///
    /// Throws ``IdentityError/Code/signingFailed`` only if swift-crypto refuses a scalar in range,
    /// or if 256 candidates in a row are out of range (not expected to happen).
    public static func p384PrivateKey(seed: [UInt8], label: String) throws(IdentityError) -> P384.Signing.PrivateKey {
        for counter in UInt8.min...UInt8.max {
            let candidate = bytes(seed: seed, label: label, counter: counter, count: 48)
            guard isValidP384Scalar(candidate) else { continue }
            do {
                return try P384.Signing.PrivateKey(rawRepresentation: candidate)
            } catch {
                throw IdentityError(.signingFailed, "swift-crypto refused the P-384 scalar derived for \"\(label)\": \(error)")
            }
        }
        throw IdentityError(.signingFailed, "no P-384 scalar in range for \"\(label)\" after 256 candidates")
    }

    /// True when the 48 big-endian bytes `scalar` encode d with 1 ≤ d ≤ n − 1 (n = ``p384Order``).
    public static func isValidP384Scalar(_ scalar: [UInt8]) -> Bool {
        guard scalar.count == p384Order.count, scalar.contains(where: { $0 != 0 }) else { return false }
        for (byte, limit) in zip(scalar, p384Order) where byte != limit {
            return byte < limit
        }
        return false  // d == n
    }

    /// A positive certificate serial number of 16 bytes derived from `label`: the first byte has
    /// bit 7 clear (positive INTEGER) and bit 6 set (no leading zero octet), so the DER INTEGER
    /// is exactly 16 octets, within RFC 5280 §4.1.2.2's limit of 20.
    public static func serialNumber(seed: [UInt8], label: String) -> [UInt8] {
        var serial = bytes(seed: seed, label: label, count: 16)
        serial[0] = (serial[0] & 0x7F) | 0x40
        return serial
    }
}
