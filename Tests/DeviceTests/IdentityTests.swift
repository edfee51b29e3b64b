import Crypto
import Foundation
import SwiftASN1
import Testing
import Wire
import X509

@testable import Device

/// A fixed seed: the bytes 0x00…0x1F.
let identitySeed: [UInt8] = Array(0...31)

@Suite("Seed derivation (EMU-ID-1)")
struct SeedDerivationTests {
    @Test("HKDF-SHA384 output is RFC 5869 HKDF with the documented salt and info")
    func hkdfMatchesSwiftCrypto() {
        // Recompute HKDF-Extract/Expand by hand with HMAC-SHA384 (RFC 5869 §2.2, §2.3, one block).
        let prk = Array(HMAC<SHA384>.authenticationCode(for: identitySeed, using: SymmetricKey(data: Array("TSMKit device identity 1".utf8))))
        let t1 = Array(HMAC<SHA384>.authenticationCode(for: Array("device key".utf8) + [0x00, 0x01], using: SymmetricKey(data: prk)))
        #expect(SeedDerivation.bytes(seed: identitySeed, label: "device key", count: 48) == t1)
    }

    @Test("the same seed gives the same keys; another seed or label gives others")
    func keysAreDeterministic() throws {
        let a = try SeedDerivation.p384PrivateKey(seed: identitySeed, label: "device key")
        let b = try SeedDerivation.p384PrivateKey(seed: identitySeed, label: "device key")
        let c = try SeedDerivation.p384PrivateKey(seed: identitySeed + [0], label: "device key")
        let d = try SeedDerivation.p384PrivateKey(seed: identitySeed, label: "root CA key")
        #expect(a.rawRepresentation == b.rawRepresentation)
        #expect(a.rawRepresentation != c.rawRepresentation)
        #expect(a.rawRepresentation != d.rawRepresentation)
        #expect(Array(a.rawRepresentation) == SeedDerivation.bytes(seed: identitySeed, label: "device key", count: 48))
    }

    @Test("P-384 scalar range: 0 and n are refused, 1 and n-1 accepted")
    func scalarRange() {
        let n = SeedDerivation.p384Order
        var nMinus1 = n
        nMinus1[47] -= 1
        #expect(!SeedDerivation.isValidP384Scalar([UInt8](repeating: 0, count: 48)))
        #expect(!SeedDerivation.isValidP384Scalar(n))
        #expect(!SeedDerivation.isValidP384Scalar([UInt8](repeating: 0xFF, count: 48)))
        #expect(SeedDerivation.isValidP384Scalar([UInt8](repeating: 0, count: 47) + [1]))
        #expect(SeedDerivation.isValidP384Scalar(nMinus1))
        #expect(!SeedDerivation.isValidP384Scalar([1]))
    }

    @Test("serial numbers are 16 bytes, positive, no leading zero octet")
    func serialShape() {
        let serial = SeedDerivation.serialNumber(seed: identitySeed, label: "device serial")
        #expect(serial.count == 16)
        #expect(serial[0] & 0x80 == 0)
        #expect(serial[0] & 0x40 != 0)
    }
}

@Suite("Generated certificate chain (EMU-ID-2)")
struct GeneratedChainTests {
    let identity: DeviceIdentity

    init() throws {
        identity = try DeviceIdentity.make(seed: identitySeed, vendorID: 0x8086, deviceID: 0x0B25, serial: "TSMKIT-0001")
    }

    @Test("three P-384 certificates, root first, each issued by the one before")
    func shape() throws {
        let certificates = identity.chain.certificates
        try #require(certificates.count == 3)
        for certificate in certificates {
            #expect(P384.Signing.PublicKey(certificate.publicKey) != nil)
            #expect(certificate.signatureAlgorithm == .ecdsaWithSHA384)
            #expect(certificate.version == .v3)
            #expect(certificate.notValidBefore == Date(timeIntervalSince1970: 1_704_067_200))
            #expect(certificate.notValidAfter == Date(timeIntervalSince1970: 253_402_300_799))
        }
        #expect(certificates[0].issuer == certificates[0].subject)
        #expect(certificates[1].issuer == certificates[0].subject)
        #expect(certificates[2].issuer == certificates[1].subject)
        #expect(certificates[0].publicKey.isValidSignature(certificates[0].signature, for: certificates[0]))
        #expect(certificates[0].publicKey.isValidSignature(certificates[1].signature, for: certificates[1]))
        #expect(certificates[1].publicKey.isValidSignature(certificates[2].signature, for: certificates[2]))
        #expect(identity.privateKey.publicKey.rawRepresentation == P384.Signing.PublicKey(certificates[2].publicKey)?.rawRepresentation)
    }

    @Test("subject names carry the vendor ID, device ID and serial")
    func names() throws {
        #expect("\(identity.chain.root.subject)" == "CN=TSMKit Root CA 8086,O=TSMKit Vendor 8086")
        #expect("\(identity.chain.certificates[1].subject)" == "CN=TSMKit Device CA 8086,O=TSMKit Vendor 8086")
        let leafName = "\(identity.chain.leaf.subject)"
        #expect(leafName.contains("CN=TSMKit Device 8086:0b25"))
        #expect(leafName.contains("OU=PCI 8086:0b25"))
        #expect(leafName.contains("TSMKIT-0001"))
    }

    @Test("CA and leaf extensions as a device-identity chain has them")
    func extensions() throws {
        let root = identity.chain.root.extensions
        let intermediate = identity.chain.certificates[1].extensions
        let leaf = identity.chain.leaf.extensions
        #expect(try root.basicConstraints == .isCertificateAuthority(maxPathLength: nil))
        #expect(try intermediate.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(try leaf.basicConstraints == .notCertificateAuthority)
        #expect(try root.keyUsage == KeyUsage(keyCertSign: true, cRLSign: true))
        #expect(try intermediate.keyUsage == KeyUsage(keyCertSign: true, cRLSign: true))
        #expect(try leaf.keyUsage == KeyUsage(digitalSignature: true))
        #expect(root[oid: .X509ExtensionID.basicConstraints]?.critical == true)
        #expect(leaf[oid: .X509ExtensionID.keyUsage]?.critical == true)
        let eku = try #require(try leaf.extendedKeyUsage)
        #expect(Array(eku) == [ExtendedKeyUsage.Usage(oid: [1, 3, 6, 1, 4, 1, 412, 274, 3])])
        #expect(try leaf.authorityKeyIdentifier?.keyIdentifier == intermediate.subjectKeyIdentifier?.keyIdentifier)
        #expect(try intermediate.authorityKeyIdentifier?.keyIdentifier == root.subjectKeyIdentifier?.keyIdentifier)
    }

    @Test("everything but the signatures is the same in a second run (EMU-ID-5)")
    func deterministicExceptSignatures() throws {
        let again = try DeviceIdentity.make(seed: identitySeed, vendorID: 0x8086, deviceID: 0x0B25, serial: "TSMKIT-0001")
        for (first, second) in zip(identity.chain.certificates, again.chain.certificates) {
            #expect(first.tbsCertificateBytes == second.tbsCertificateBytes)
            #expect(first.serialNumber == second.serialNumber)
        }
        #expect(identity.privateKey.rawRepresentation == again.privateKey.rawRepresentation)
        #expect(identity.measurements == again.measurements)
        // ECDSA nonces are random: the second run's signatures verify under the same keys.
        let certificates = again.chain.certificates
        #expect(certificates[0].publicKey.isValidSignature(certificates[1].signature, for: certificates[1]))
        #expect(identity.chain.certificates[1].publicKey.isValidSignature(certificates[2].signature, for: certificates[2]))
    }

    @Test("another seed gives other keys and serial numbers")
    func otherSeed() throws {
        let other = try DeviceIdentity.make(seed: [0xAA], vendorID: 0x8086, deviceID: 0x0B25, serial: "TSMKIT-0001")
        #expect(other.privateKey.rawRepresentation != identity.privateKey.rawRepresentation)
        #expect(other.chain.root.serialNumber != identity.chain.root.serialNumber)
    }

    @Test("one authority issues many devices under the same root and intermediate")
    func authorityReuse() throws {
        let authority = try DeviceCertificateAuthority.make(seed: identitySeed, vendorID: 0x15B3)
        let first = try authority.issue(seed: [1], deviceID: 0x1021, serial: "A1")
        let second = try authority.issue(seed: [2], deviceID: 0x1021, serial: "A2")
        #expect(first.chain.derCertificates[0] == second.chain.derCertificates[0])
        #expect(first.chain.derCertificates[1] == second.chain.derCertificates[1])
        #expect(first.privateKey.rawRepresentation != second.privateKey.rawRepresentation)
        #expect("\(first.chain.leaf.subject)".contains("PCI 15b3:1021"))
    }

    @Test("a serial that is not a PrintableString is refused", arguments: ["", "serial_with_underscore", "é", String(repeating: "9", count: 65)])
    func badSerial(serial: String) {
        #expect(throws: IdentityError(.invalidParameter, "")) {
            try DeviceIdentity.make(seed: identitySeed, vendorID: 1, deviceID: 2, serial: serial)
        }
    }
}

@Suite("SPDM certificate chain encoding (spec §4.5)")
struct SPDMChainTests {
    let identity: DeviceIdentity

    init() throws {
        identity = try DeviceIdentity.make(seed: identitySeed, vendorID: 0x8086, deviceID: 0x0B25, serial: "TSMKIT-0001")
    }

    @Test("Length, Reserved, RootHash = SHA-384(root DER), then the DER certificates root first")
    func layout() throws {
        let bytes = identity.spdmCertificateChain
        let ders = identity.chain.derCertificates
        #expect(bytes.count == 4 + 48 + ders.reduce(0) { $0 + $1.count })
        #expect(Int(bytes[0]) | Int(bytes[1]) << 8 == bytes.count)
        #expect(bytes[2] == 0 && bytes[3] == 0)
        #expect(Array(bytes[4..<52]) == Array(SHA384.hash(data: ders[0])))
        #expect(Array(bytes[52...]) == ders.flatMap { $0 })
        #expect(ders[0].first == 0x30)
        #expect(identity.certificateChainDigest == Array(SHA384.hash(data: bytes)))
    }

    @Test("SHA-256 RootHash is 32 bytes")
    func sha256RootHash() throws {
        let bytes = try identity.chain.spdmEncoded(hashAlgorithm: .sha256)
        #expect(Array(bytes[4..<36]) == Array(SHA256.hash(data: identity.chain.derCertificates[0])))
        #expect(try CertificateChain(spdmEncoded: bytes, hashAlgorithm: .sha256) == identity.chain)
    }

    @Test("decoding the encoding gives the chain back")
    func roundTrip() throws {
        #expect(try CertificateChain(spdmEncoded: identity.spdmCertificateChain) == identity.chain)
    }

    @Test("damaged SPDM chains are refused with .malformed")
    func damaged() throws {
        let good = identity.spdmCertificateChain
        var wrongLength = good
        wrongLength[0] ^= 0x01
        var reserved = good
        reserved[2] = 1
        var rootHash = good
        rootHash[10] ^= 0xFF
        for bad in [wrongLength, reserved, rootHash, Array(good.prefix(3)), Array(good.prefix(51))] {
            #expect(throws: IdentityError(.malformed, "")) { try CertificateChain(spdmEncoded: bad) }
        }
    }

    @Test("a chain over 0xFFFF bytes cannot be SPDM-encoded")
    func tooLarge() throws {
        // 22 copies of a ~1 KiB CA certificate exceed 64 KiB once the root and header are added;
        // build the chain from the same self-signed root repeated (each issues the next).
        let root = identity.chain.derCertificates[0]
        let chain = try CertificateChain(derCertificates: [[UInt8]](repeating: root, count: 0x10000 / root.count + 1))
        #expect(throws: IdentityError(.chainTooLarge, "")) { try chain.spdmEncoded() }
    }
}

@Suite("Loading a user's chain and key")
struct IdentityLoadingTests {
    let identity: DeviceIdentity

    init() throws {
        identity = try DeviceIdentity.make(seed: identitySeed, vendorID: 0x8086, deviceID: 0x0B25, serial: "TSMKIT-0001")
    }

    @Test("PEM chain (root first or leaf first) and PEM key load back to the same identity")
    func pemRoundTrip() throws {
        let keyPEM = identity.privateKey.pemRepresentation
        let rootFirst = identity.chain.pemEncoded()
        let leafFirst = identity.chain.derCertificates.reversed()
            .map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString }.joined(separator: "\n")
        for text in [rootFirst, leafFirst] {
            let loaded = try DeviceIdentity.load(chainPEM: text, privateKeyPEM: keyPEM, measurements: identity.measurements)
            #expect(loaded.spdmCertificateChain == identity.spdmCertificateChain)
            #expect(loaded.privateKey.rawRepresentation == identity.privateKey.rawRepresentation)
        }
    }

    @Test("PKCS#8 key PEM loads too")
    func pkcs8() throws {
        let pkcs8 = PEMDocument(type: "PRIVATE KEY", derBytes: Array(identity.privateKey.derRepresentation)).pemString
        #expect(try DeviceIdentity.loadPrivateKey(pem: pkcs8).rawRepresentation == identity.privateKey.rawRepresentation)
    }

    @Test("DER bundle (certificates back to back) loads")
    func derBundle() throws {
        #expect(try CertificateChain(derBundle: identity.chain.derCertificates.flatMap { $0 }) == identity.chain)
    }

    @Test("a key that is not the leaf's is refused with .keyMismatch")
    func keyMismatch() throws {
        let other = try SeedDerivation.p384PrivateKey(seed: [9], label: "device key")
        #expect(throws: IdentityError(.keyMismatch, "")) {
            try DeviceIdentity.load(chainPEM: identity.chain.pemEncoded(), privateKeyPEM: other.pemRepresentation, measurements: identity.measurements)
        }
    }

    @Test("a P-256 key is refused with .malformedKey")
    func wrongCurveKey() {
        let p256 = P256.Signing.PrivateKey().pemRepresentation
        #expect(throws: IdentityError(.malformedKey, "")) { try DeviceIdentity.loadPrivateKey(pem: p256) }
        #expect(throws: IdentityError(.malformedKey, "")) { try DeviceIdentity.loadPrivateKey(pem: "not a key") }
    }

    @Test("a P-256 leaf is refused with .unsupportedKey")
    func wrongCurveLeaf() throws {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("P-256 device") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: DeviceIdentity.notValidBefore, notValidAfter: DeviceIdentity.notValidAfter,
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions(), issuerPrivateKey: .init(key))
        let chain = try CertificateChain(certificates: [certificate])
        #expect(throws: IdentityError(.unsupportedKey, "")) {
            try DeviceIdentity(chain: chain, privateKey: identity.privateKey, measurements: identity.measurements)
        }
    }

    @Test("chain text errors: no PEM, another label, bad DER, broken order")
    func chainErrors() throws {
        #expect(throws: IdentityError(.malformedPEM, "")) { try CertificateChain(pemEncoded: "hello") }
        #expect(throws: IdentityError(.malformedPEM, "")) {
            try CertificateChain(pemEncoded: identity.privateKey.pemRepresentation)
        }
        #expect(throws: IdentityError(.malformedCertificate, "")) {
            try CertificateChain(pemEncoded: PEMDocument(type: "CERTIFICATE", derBytes: [0x30, 0x03, 0x02, 0x01, 0x00]).pemString)
        }
        let ders = identity.chain.derCertificates
        // Root, leaf, intermediate: the leaf is not issued by the root.
        #expect(throws: IdentityError(.chainOrder, "")) { try CertificateChain(derCertificates: [ders[0], ders[2], ders[1]]) }
        // No root at either end.
        #expect(throws: IdentityError(.chainOrder, "")) { try CertificateChain(derCertificates: [ders[1], ders[2]]) }
        #expect(throws: IdentityError(.chainOrder, "")) { try CertificateChain(derCertificates: []) }
        #expect(throws: IdentityError(.malformedCertificate, "")) { try CertificateChain(derBundle: [0x30, 0x82, 0xFF]) }
        #expect(throws: IdentityError(.malformedCertificate, "")) { try CertificateChain(derBundle: [0x04, 0x00]) }
    }

    @Test("IdentityError is equal by code only")
    func equalByCode() {
        #expect(IdentityError(.malformed, "a") == IdentityError(.malformed, "b"))
        #expect(IdentityError(.malformed, "a") != IdentityError(.chainOrder, "a"))
        #expect("\(IdentityError(.keyMismatch, "why"))" == "keyMismatch: why")
    }
}
