import Crypto
import SwiftASN1
import Wire
import X509

/// The guest's (TVM's) evidence checks, built on one trust anchor: the root CA certificate the
/// guest trusts for the device.
///
/// Objects that reach the guest through the host are untrusted; the verifier
/// 1. validates the device's SPDM certificate chain to the anchor with swift-certificates'
///    `Verifier` (``verifyCertificateChain(_:hashAlgorithm:)``),
/// 2. verifies the MEASUREMENTS signature with the leaf's key using swift-crypto
///    (``verifyMeasurements(request:response:vcaTranscript:expectedNonce:chain:)``),
/// 3. compares each object's digest with the digest the TSM reports
///    (``checkDigest(of:_:reported:algorithm:)``).
///
/// Each refusal throws an ``EvidenceError`` whose code says which check failed. The verifier is
/// a value with no state; a ``VerifiedCertificateChain`` may be kept and reused for every TDI of
/// the same DSM (issue 6 allows a chain to be verified once per DSM).
public struct EvidenceVerifier: Sendable {
    /// The trust anchor.
    public let trustAnchor: Certificate
    /// The anchor's DER bytes (RootHash is the digest of these).
    public let trustAnchorDER: [UInt8]

    /// Creates a verifier from the anchor's DER. Throws ``EvidenceError/Code/malformed`` when the
    /// bytes are not an X.509 certificate.
    public init(trustAnchorDER der: [UInt8]) throws(EvidenceError) {
        do {
            trustAnchor = try Certificate(derEncoded: der)
        } catch {
            throw EvidenceError(.malformed, "the trust anchor (\(der.count) bytes) is not an X.509 certificate: \(error)")
        }
        trustAnchorDER = der
    }

    /// Creates a verifier from PEM text holding exactly one `CERTIFICATE` block. Throws
    /// ``EvidenceError/Code/malformed`` otherwise.
    public init(trustAnchorPEM pem: String) throws(EvidenceError) {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw EvidenceError(.malformed, "the trust anchor text is not PEM: \(error)")
        }
        guard documents.count == 1, let document = documents.first, document.discriminator == "CERTIFICATE" else {
            throw EvidenceError(.malformed, "the trust anchor text must hold one PEM CERTIFICATE block (found \(documents.map(\.discriminator)))")
        }
        try self.init(trustAnchorDER: document.derBytes)
    }

    /// Creates a verifier from a certificate. Throws ``EvidenceError/Code/malformed`` if it
    /// cannot be DER-encoded.
    public init(trustAnchor certificate: Certificate) throws(EvidenceError) {
        do {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            try self.init(trustAnchorDER: serializer.serializedBytes)
        } catch let error as EvidenceError {
            throw error
        } catch {
            throw EvidenceError(.malformed, "cannot DER-encode the trust anchor: \(error)")
        }
    }

    // MARK: - Certificate chain

    /// Verifies an SPDM certificate chain (spec §4.5: Length u16, Reserved u16, RootHash H,
    /// DER certificates root first, leaf last) against the trust anchor.
    ///
    /// Checks, in this order (the first failure wins):
    /// 1. the header and every certificate decode — else ``EvidenceError/Code/malformed``;
    /// 2. when the chain starts with a self-issued root, RootHash is that certificate's digest —
    ///    else ``EvidenceError/Code/digestMismatch``;
    /// 3. RootHash is the digest of the trust anchor — else ``EvidenceError/Code/chainUntrusted``;
    /// 4. swift-certificates' `Verifier` finds a path from the leaf through the chain's
    ///    certificates to the anchor that meets `RFC5280Policy` (validity now, basic
    ///    constraints, name constraints) and ``DeviceChainPolicy`` (P-384 keys, leaf key usage
    ///    digitalSignature, not a CA, SPDM EKU rule) — else ``EvidenceError/Code/chainUntrusted``
    ///    with the policy failures in the reason;
    /// 5. that path is exactly the chain's certificates, leaf to root (plus the anchor when the
    ///    chain starts below the root) — else ``EvidenceError/Code/chainUntrusted``.
    public func verifyCertificateChain(
        _ spdmChain: [UInt8], hashAlgorithm: EvidenceDigestAlgorithm = .sha384
    ) async throws(EvidenceError) -> VerifiedCertificateChain {
        let (rootHash, ders, certificates) = try Self.decodeChain(spdmChain, hashAlgorithm: hashAlgorithm)
        if let first = certificates.first, first.subject == first.issuer, hashAlgorithm.digest(ders[0]) != rootHash {
            throw EvidenceError(.digestMismatch, "certificate chain: RootHash is not the \(hashAlgorithm) digest of the root certificate the chain carries")
        }
        guard hashAlgorithm.digest(trustAnchorDER) == rootHash else {
            throw EvidenceError(.chainUntrusted, "certificate chain: RootHash names another root than the trust anchor (\(trustAnchor.subject))")
        }
        guard let leaf = certificates.last else {
            throw EvidenceError(.malformed, "certificate chain: no certificate after RootHash")
        }
        var verifier = Verifier(rootCertificates: CertificateStore([trustAnchor])) {
            RFC5280Policy()
            DeviceChainPolicy()
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropLast()))
        switch result {
        case .validCertificate(let path):
            // Every certificate the chain carries must be on the validated path, in order (as
            // libspdm verifies each certificate with the one before it): a damaged extra
            // certificate must not ride along unnoticed.
            let carriesRoot = hashAlgorithm.digest(ders[0]) == rootHash
            let expected = Array(certificates.reversed()) + (carriesRoot ? [] : [trustAnchor])
            guard Array(path) == expected else {
                throw EvidenceError(.chainUntrusted, "certificate chain: the validated path (\(path.count) certificates to the trust anchor) does not use every certificate the chain carries (\(certificates.count)) in order")
            }
        case .couldNotValidate(let failures):
            let reasons = failures.map { "\($0.policyFailureReason)" }
            let detail = reasons.isEmpty ? "no path from the leaf (\(leaf.subject)) to the trust anchor with valid signatures" : reasons.joined(separator: "; ")
            throw EvidenceError(.chainUntrusted, "certificate chain: \(detail)")
        }
        guard let leafKey = P384.Signing.PublicKey(leaf.publicKey) else {
            throw EvidenceError(.chainUntrusted, "certificate chain: the leaf key is not ECDSA P-384")
        }
        return VerifiedCertificateChain(
            spdmChain: spdmChain, hashAlgorithm: hashAlgorithm, certificates: certificates, leafPublicKey: leafKey)
    }

    /// Splits an SPDM certificate chain into RootHash, the certificates' DER and the decoded
    /// certificates. Throws ``EvidenceError/Code/malformed`` naming the offset or position.
    static func decodeChain(
        _ bytes: [UInt8], hashAlgorithm: EvidenceDigestAlgorithm
    ) throws(EvidenceError) -> (rootHash: [UInt8], ders: [[UInt8]], certificates: [Certificate]) {
        var reader = ByteReader(bytes)
        let length: UInt16, reserved: UInt16, rootHash: [UInt8]
        do {
            length = try reader.u16()
            reserved = try reader.u16()
            rootHash = try reader.bytes(hashAlgorithm.digestSize)
        } catch {
            throw EvidenceError(.malformed, "certificate chain header: \(error)")
        }
        guard Int(length) == bytes.count else {
            throw EvidenceError(.malformed, "certificate chain: Length \(length) is not the object's size \(bytes.count)")
        }
        guard reserved == 0 else {
            throw EvidenceError(.malformed, "certificate chain: Reserved is 0x\(String(reserved, radix: 16)), not 0")
        }
        var ders: [[UInt8]] = []
        var certificates: [Certificate] = []
        var offset = reader.offset
        while offset < bytes.count {
            guard bytes[offset] == 0x30, let size = derElementSize(bytes, at: offset) else {
                throw EvidenceError(.malformed, "certificate chain: bytes at offset \(offset) are not a DER certificate")
            }
            let der = Array(bytes[offset..<offset + size])
            do {
                certificates.append(try Certificate(derEncoded: der))
            } catch let error as ASN1Error {
                throw EvidenceError(.malformed, "certificate chain: certificate \(ders.count) at offset \(offset) is not a valid X.509 certificate (\(error))")
            } catch {
                // swift-certificates parses the structure, then hands the subject public key to
                // swift-crypto: a key that is not a point on its curve fails there.
                throw EvidenceError(.malformed, "certificate chain: certificate \(ders.count) at offset \(offset) carries a public key that is not a valid key (swift-crypto: \(error))")
            }
            ders.append(der)
            offset += size
        }
        guard !certificates.isEmpty else {
            throw EvidenceError(.malformed, "certificate chain: no certificate after RootHash")
        }
        return (rootHash, ders, certificates)
    }

    /// Total size of the definite-length DER element at `offset`, or nil if it does not fit.
    private static func derElementSize(_ bytes: [UInt8], at offset: Int) -> Int? {
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

    // MARK: - Digests

    /// Checks that `reported` (the digest the TSM reports for `object`) is `algorithm`'s digest
    /// of `bytes` (the object as it came through the host).
    ///
    /// Throws ``EvidenceError/Code/malformed`` when `reported` is not `algorithm.digestSize`
    /// bytes, and ``EvidenceError/Code/digestMismatch`` when the digests differ.
    public func checkDigest(
        of bytes: [UInt8], _ object: EvidenceObject, reported: [UInt8], algorithm: EvidenceDigestAlgorithm
    ) throws(EvidenceError) {
        try Self.checkDigest(of: bytes, object, reported: reported, algorithm: algorithm)
    }

    /// The same check as ``checkDigest(of:_:reported:algorithm:)``, without a verifier.
    public static func checkDigest(
        of bytes: [UInt8], _ object: EvidenceObject, reported: [UInt8], algorithm: EvidenceDigestAlgorithm
    ) throws(EvidenceError) {
        guard reported.count == algorithm.digestSize else {
            throw EvidenceError(.malformed, "\(object): the reported \(algorithm) digest is \(reported.count) bytes, not \(algorithm.digestSize)")
        }
        let actual = algorithm.digest(bytes)
        var difference: UInt8 = 0
        for (left, right) in zip(actual, reported) { difference |= left ^ right }
        guard difference == 0 else {
            throw EvidenceError(.digestMismatch, "\(object): the \(algorithm) digest of the \(bytes.count) bytes received (\(Hex.encode(actual))) is not the digest the TSM reports (\(Hex.encode(reported)))")
        }
    }
}

/// A certificate chain that ``EvidenceVerifier/verifyCertificateChain(_:hashAlgorithm:)``
/// accepted: keep it to verify every MEASUREMENTS of the same device.
public struct VerifiedCertificateChain: Hashable, Sendable {
    /// The SPDM certificate chain bytes as verified.
    public let spdmChain: [UInt8]
    /// The hash algorithm of its RootHash.
    public let hashAlgorithm: EvidenceDigestAlgorithm
    /// The certificates as the chain carries them (root first, leaf last).
    public let certificates: [Certificate]
    /// The leaf (device) certificate's public key.
    public let leafPublicKey: P384.Signing.PublicKey

    /// The leaf certificate.
    public var leaf: Certificate { certificates[certificates.count - 1] }

    /// `algorithm`'s digest of the SPDM chain (what DIGESTS and a TSM report).
    public func digest(_ algorithm: EvidenceDigestAlgorithm = .sha384) -> [UInt8] { algorithm.digest(spdmChain) }

    /// Equal when the chain bytes and RootHash algorithm are equal.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.spdmChain == rhs.spdmChain && lhs.hashAlgorithm == rhs.hashAlgorithm
    }

    /// Hashes the chain bytes and algorithm, consistent with `==`.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(spdmChain)
        hasher.combine(hashAlgorithm)
    }
}

/// The device-identity rules the guest adds to RFC 5280 path validation (spec §4.5, following
/// libspdm's `libspdm_x509_common_certificate_check` as far as it applies):
/// - every certificate's key is ECDSA P-384 (the EMU-SPDM-2 suite);
/// - the leaf has keyUsage with digitalSignature, and basicConstraints, when present, is not CA;
/// - the leaf's extKeyUsage, when present, does not hold only the SPDM requester-auth EKU
///   (1.3.6.1.4.1.412.274.4) without responder-auth (….3), libspdm's responder rule;
/// - every issuer's keyUsage, when present, has keyCertSign.
///
/// It handles the critical keyUsage and extKeyUsage extensions.
public struct DeviceChainPolicy: VerifierPolicy, Sendable {
    /// id-DMTF-eku-responder-auth, 1.3.6.1.4.1.412.274.3.
    public static let responderAuthEKU: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 412, 274, 3]
    /// id-DMTF-eku-requester-auth, 1.3.6.1.4.1.412.274.4.
    public static let requesterAuthEKU: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 412, 274, 4]

    /// The critical extensions this policy enforces: keyUsage and extKeyUsage.
    public let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage,
    ]

    /// Creates the policy (it has no parameters).
    public init() {}

    /// Applies the rules of the type's list to `chain` (leaf first); the reason of a failure
    /// names the certificate by subject.
    public func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        for (position, certificate) in chain.enumerated() where P384.Signing.PublicKey(certificate.publicKey) == nil {
            return .failsToMeetPolicy(reason: "certificate \(position) from the leaf (\(certificate.subject)) has a \(certificate.publicKey) key, not ECDSA P-384")
        }
        let leaf = chain.leaf
        do {
            guard let usage = try leaf.extensions.keyUsage, usage.digitalSignature else {
                return .failsToMeetPolicy(reason: "the leaf (\(leaf.subject)) lacks keyUsage digitalSignature")
            }
            if let constraints = try leaf.extensions.basicConstraints, case .isCertificateAuthority = constraints {
                return .failsToMeetPolicy(reason: "the leaf (\(leaf.subject)) is a CA certificate")
            }
            if let eku = try leaf.extensions.extendedKeyUsage {
                let responder = eku.contains(ExtendedKeyUsage.Usage(oid: Self.responderAuthEKU))
                let requester = eku.contains(ExtendedKeyUsage.Usage(oid: Self.requesterAuthEKU))
                if requester && !responder {
                    return .failsToMeetPolicy(reason: "the leaf (\(leaf.subject)) is an SPDM requester certificate (EKU requester-auth only)")
                }
            }
            for certificate in chain.dropFirst() {
                if let usage = try certificate.extensions.keyUsage, !usage.keyCertSign {
                    return .failsToMeetPolicy(reason: "issuer \(certificate.subject) lacks keyUsage keyCertSign")
                }
            }
        } catch {
            return .failsToMeetPolicy(reason: "an extension of the chain does not decode: \(error)")
        }
        return .meetsPolicy
    }
}
