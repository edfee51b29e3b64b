import Crypto
import SwiftASN1
import Wire
import X509

/// A device certificate chain: a self-signed root CA first, then each certificate issued by the
/// one before it, the device (leaf) certificate last — the order SPDM transfers (spec §4.5).
///
/// Keeps each certificate's DER bytes exactly as made or loaded, so the SPDM encoding and its
/// digests are byte-stable for a given chain.
public struct CertificateChain: Hashable, Sendable {
    /// The certificates, root first, leaf last (at least one).
    public let certificates: [Certificate]
    /// The DER encoding of each certificate, same order.
    public let derCertificates: [[UInt8]]

    /// The root CA certificate (self-issued).
    public var root: Certificate { certificates[0] }
    /// The device (leaf) certificate.
    public var leaf: Certificate { certificates[certificates.count - 1] }

    /// Creates a chain from DER certificates given root first or leaf first (a PEM bundle as TLS
    /// tools write it is leaf first); the chain is stored root first.
    ///
    /// Throws ``IdentityError/Code/malformedCertificate`` naming the position of a certificate
    /// that does not decode, and ``IdentityError/Code/chainOrder`` when the list is empty, the
    /// end that should be the root is not self-issued (subject = issuer), or a certificate's
    /// issuer is not the subject of the one before it.
    public init(derCertificates: [[UInt8]]) throws(IdentityError) {
        guard !derCertificates.isEmpty else { throw IdentityError(.chainOrder, "the certificate chain is empty") }
        var parsed: [Certificate] = []
        for (position, der) in derCertificates.enumerated() {
            do {
                parsed.append(try Certificate(derEncoded: der))
            } catch {
                throw IdentityError(.malformedCertificate, "certificate \(position) of the chain (\(der.count) bytes) is not an X.509 certificate: \(error)")
            }
        }
        var ders = derCertificates
        if parsed.count > 1, !Self.isSelfIssued(parsed[0]), Self.isSelfIssued(parsed[parsed.count - 1]) {
            parsed.reverse()
            ders.reverse()
        }
        guard Self.isSelfIssued(parsed[0]) else {
            throw IdentityError(.chainOrder, "neither end of the chain is a self-issued root certificate (first subject: \(parsed[0].subject), issuer: \(parsed[0].issuer)); the root must be included")
        }
        for position in parsed.indices.dropFirst() where parsed[position].issuer != parsed[position - 1].subject {
            throw IdentityError(.chainOrder, "certificate \(position) (root first) is issued by \(parsed[position].issuer), not by the certificate before it (\(parsed[position - 1].subject))")
        }
        self.certificates = parsed
        self.derCertificates = ders
    }

    /// Creates a chain from certificates made in this process (root first or leaf first).
    /// Errors as ``init(derCertificates:)``, plus ``IdentityError/Code/signingFailed`` if a
    /// certificate cannot be serialized.
    public init(certificates: [Certificate]) throws(IdentityError) {
        var ders: [[UInt8]] = []
        for certificate in certificates {
            do {
                var serializer = DER.Serializer()
                try serializer.serialize(certificate)
                ders.append(serializer.serializedBytes)
            } catch {
                throw IdentityError(.signingFailed, "cannot DER-encode certificate \(certificate.subject): \(error)")
            }
        }
        try self.init(derCertificates: ders)
    }

    /// Loads a chain from PEM text holding one or more `CERTIFICATE` blocks (root first or leaf
    /// first). Throws ``IdentityError/Code/malformedPEM`` when the text holds no PEM block, a
    /// block is damaged, or a block has another label; then as ``init(derCertificates:)``.
    public init(pemEncoded text: String) throws(IdentityError) {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw IdentityError(.malformedPEM, "the certificate chain text is not PEM: \(error)")
        }
        guard !documents.isEmpty else { throw IdentityError(.malformedPEM, "the certificate chain text holds no PEM block") }
        var ders: [[UInt8]] = []
        for (position, document) in documents.enumerated() {
            guard document.discriminator == "CERTIFICATE" else {
                throw IdentityError(.malformedPEM, "PEM block \(position) is \"\(document.discriminator)\", expected \"CERTIFICATE\"")
            }
            ders.append(document.derBytes)
        }
        try self.init(derCertificates: ders)
    }

    /// Loads a chain from DER certificates concatenated back to back (as libspdm's
    /// `bundle_responder.certchain.der` is), root first or leaf first. Throws
    /// ``IdentityError/Code/malformedCertificate`` when the bytes do not split into DER
    /// SEQUENCEs; then as ``init(derCertificates:)``.
    public init(derBundle bytes: [UInt8]) throws(IdentityError) {
        try self.init(derCertificates: Self.splitDERSequences(bytes))
    }

    /// Decodes an SPDM certificate chain (layout in ``spdmEncoded(hashAlgorithm:)``) whose
    /// RootHash is `hashAlgorithm` of the first certificate. Throws
    /// ``IdentityError/Code/malformed`` for a short buffer, a Length that is not the buffer's
    /// size, non-zero Reserved, or a RootHash that is not the first certificate's digest; then as
    /// ``init(derBundle:)``.
    public init(spdmEncoded bytes: [UInt8], hashAlgorithm: IdentityHashAlgorithm = .sha384) throws(IdentityError) {
        var reader = ByteReader(bytes)
        let length: UInt16, reserved: UInt16, rootHash: [UInt8]
        do {
            length = try reader.u16()
            reserved = try reader.u16()
            rootHash = try reader.bytes(hashAlgorithm.digestSize)
        } catch {
            throw IdentityError(.malformed, "SPDM certificate chain: \(error)")
        }
        guard Int(length) == bytes.count else {
            throw IdentityError(.malformed, "SPDM certificate chain: Length \(length) is not the chain's size \(bytes.count)")
        }
        guard reserved == 0 else {
            throw IdentityError(.malformed, "SPDM certificate chain: Reserved is 0x\(String(reserved, radix: 16)), not 0")
        }
        try self.init(derCertificates: Self.splitDERSequences(reader.rest()), rootFirstOnly: ())
        guard hashAlgorithm.digest(derCertificates[0]) == rootHash else {
            throw IdentityError(.malformed, "SPDM certificate chain: RootHash is not the \(hashAlgorithm) digest of the first certificate")
        }
    }

    /// As ``init(derCertificates:)``, but refuses a leaf-first list (SPDM sends the root first).
    private init(derCertificates: [[UInt8]], rootFirstOnly: Void) throws(IdentityError) {
        try self.init(derCertificates: derCertificates)
        guard self.derCertificates == derCertificates else {
            throw IdentityError(.chainOrder, "SPDM certificate chain is leaf first; SPDM sends the root first")
        }
    }

    /// The SPDM certificate chain (spec §4.5), what GET_CERTIFICATE transfers and DIGESTS hashes:
    ///
    /// | Offset | Size | Field |
    /// |---|---|---|
    /// | 0 | 2 | Length (u16): total bytes, this header included |
    /// | 2 | 2 | Reserved = 0 |
    /// | 4 | H | RootHash: digest of the root certificate's DER (H = 48 for SHA-384) |
    /// | 4 + H | … | the DER certificates, root first, leaf last |
    ///
    /// Throws ``IdentityError/Code/chainTooLarge`` when the total exceeds 0xFFFF bytes.
    public func spdmEncoded(hashAlgorithm: IdentityHashAlgorithm = .sha384) throws(IdentityError) -> [UInt8] {
        let total = 4 + hashAlgorithm.digestSize + derCertificates.reduce(0) { $0 + $1.count }
        guard total <= 0xFFFF else {
            throw IdentityError(.chainTooLarge, "SPDM certificate chain of \(total) bytes exceeds Length (u16) 0xffff")
        }
        var writer = ByteWriter(capacity: total)
        writer.u16(UInt16(truncatingIfNeeded: total))
        writer.u16(0)
        writer.bytes(hashAlgorithm.digest(derCertificates[0]))
        for der in derCertificates { writer.bytes(der) }
        return writer.bytes
    }

    /// The PEM text of the chain, root first (one `CERTIFICATE` block each).
    public func pemEncoded() -> String {
        derCertificates.map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString }.joined(separator: "\n") + "\n"
    }

    private static func isSelfIssued(_ certificate: Certificate) -> Bool {
        certificate.subject == certificate.issuer
    }

    /// Splits back-to-back DER SEQUENCEs (tag 0x30, definite length).
    static func splitDERSequences(_ bytes: [UInt8]) throws(IdentityError) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            guard let length = derElementLength(bytes, at: offset), bytes[offset] == 0x30 else {
                throw IdentityError(.malformedCertificate, "bytes at offset \(offset) of the certificate list are not a DER SEQUENCE")
            }
            out.append(Array(bytes[offset..<offset + length]))
            offset += length
        }
        return out
    }

    /// The total size (tag + length + contents) of the DER element at `offset`, or nil when it
    /// is not a definite-length element that fits in `bytes`.
    private static func derElementLength(_ bytes: [UInt8], at offset: Int) -> Int? {
        guard offset + 2 <= bytes.count else { return nil }
        let first = bytes[offset + 1]
        var header = 2
        var contents = 0
        if first < 0x80 {
            contents = Int(first)
        } else {
            let count = Int(first & 0x7F)
            guard count >= 1, count <= 3, offset + 2 + count <= bytes.count else { return nil }
            for index in 0..<count { contents = contents << 8 | Int(bytes[offset + 2 + index]) }
            header += count
        }
        guard contents <= bytes.count - offset - header else { return nil }
        return header + contents
    }
}

/// The hash algorithms the identity code uses for RootHash and digests (EMU-SPDM-2: SHA-384
/// first, SHA-256 second).
public enum IdentityHashAlgorithm: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// SHA-256, 32-byte digest (BaseHashAlgo bit 0x01).
    case sha256
    /// SHA-384, 48-byte digest (BaseHashAlgo bit 0x02).
    case sha384

    /// The digest size H in bytes.
    public var digestSize: Int {
        switch self {
        case .sha256: return 32
        case .sha384: return 48
        }
    }

    /// The digest of `bytes`.
    public func digest(_ bytes: [UInt8]) -> [UInt8] {
        switch self {
        case .sha256: return Array(SHA256.hash(data: bytes))
        case .sha384: return Array(SHA384.hash(data: bytes))
        }
    }

    /// "SHA-256" or "SHA-384".
    public var description: String { self == .sha256 ? "SHA-256" : "SHA-384" }
}
