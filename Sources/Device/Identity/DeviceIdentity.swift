import Crypto
import Foundation
import SwiftASN1
import X509

/// An emulated device's identity: its P-384 key pair, its certificate chain (root CA,
/// intermediate CA, device leaf) and its measurement record. It answers GET_MEASUREMENTS with a
/// signed MEASUREMENTS (``signMeasurements(requesterNonce:responderNonce:vcaTranscript:)``) and
/// hands out its SPDM certificate chain (``spdmCertificateChain``).
///
/// Made deterministically from a seed (``make(seed:vendorID:deviceID:serial:hardwareConfiguration:)``,
/// EMU-ID-1/2/3) or from a chain and key a user supplies (``init(chain:privateKey:measurements:)``,
/// ``load(chainPEM:privateKeyPEM:measurements:)``). Format details: docs/identity.md.
public struct DeviceIdentity: Sendable {
    /// The certificate chain, root first, leaf last.
    public let chain: CertificateChain
    /// The device's private key; its public key is the leaf certificate's.
    public let privateKey: P384.Signing.PrivateKey
    /// The measurement record MEASUREMENTS reports.
    public let measurements: MeasurementRecord
    /// The SPDM encoding of ``chain`` with a SHA-384 RootHash (spec §4.5), computed once.
    public let spdmCertificateChain: [UInt8]

    /// Creates an identity from a chain, the leaf's private key and a measurement record.
    ///
    /// Throws ``IdentityError/Code/unsupportedKey`` when the leaf's public key is not P-384,
    /// ``IdentityError/Code/keyMismatch`` when `privateKey` is not the leaf's key, and
    /// ``IdentityError/Code/chainTooLarge`` when the SPDM chain exceeds 0xFFFF bytes.
    public init(chain: CertificateChain, privateKey: P384.Signing.PrivateKey, measurements: MeasurementRecord) throws(IdentityError) {
        guard let leafKey = P384.Signing.PublicKey(chain.leaf.publicKey) else {
            throw IdentityError(.unsupportedKey, "the leaf certificate (\(chain.leaf.subject)) holds a \(chain.leaf.publicKey) key, not ECDSA P-384")
        }
        guard leafKey.rawRepresentation == privateKey.publicKey.rawRepresentation else {
            throw IdentityError(.keyMismatch, "the private key does not belong to the leaf certificate (\(chain.leaf.subject))")
        }
        self.chain = chain
        self.privateKey = privateKey
        self.measurements = measurements
        self.spdmCertificateChain = try chain.spdmEncoded(hashAlgorithm: .sha384)
    }

    /// Loads a user's identity: a PEM chain (root first or leaf first, root included) and the
    /// leaf's P-384 private key as PEM (`EC PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
    ///
    /// Throws ``IdentityError/Code/malformedPEM`` / ``IdentityError/Code/malformedCertificate`` /
    /// ``IdentityError/Code/chainOrder`` for the chain (see ``CertificateChain/init(pemEncoded:)``),
    /// ``IdentityError/Code/malformedKey`` when the key text is not a P-384 private key, then as
    /// ``init(chain:privateKey:measurements:)``.
    public static func load(chainPEM: String, privateKeyPEM: String, measurements: MeasurementRecord) throws(IdentityError) -> DeviceIdentity {
        let chain = try CertificateChain(pemEncoded: chainPEM)
        return try DeviceIdentity(chain: chain, privateKey: loadPrivateKey(pem: privateKeyPEM), measurements: measurements)
    }

    /// Parses a P-384 private key from PEM (`EC PRIVATE KEY` SEC1 or `PRIVATE KEY` PKCS#8).
    /// Throws ``IdentityError/Code/malformedKey`` naming the PEM label found when it is not one.
    public static func loadPrivateKey(pem: String) throws(IdentityError) -> P384.Signing.PrivateKey {
        do {
            return try P384.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            let label = (try? PEMDocument(pemString: pem))?.discriminator
            let found = label.map { "a PEM \"\($0)\" block" } ?? "no single PEM block"
            throw IdentityError(.malformedKey, "the private key is not a P-384 EC private key (found \(found)): \(error)")
        }
    }

    /// SHA-384 of ``spdmCertificateChain``: the digest DIGESTS reports for slot 0 and the
    /// certificate digest a TSM reports to the guest.
    public var certificateChainDigest: [UInt8] { Array(SHA384.hash(data: spdmCertificateChain)) }
}

// MARK: - Generation from a seed

extension DeviceIdentity {
    /// The validity start of every generated certificate: 2024-01-01T00:00:00Z (EMU-ID-2).
    public static let notValidBefore = Date(timeIntervalSince1970: 1_704_067_200)
    /// The validity end of every generated certificate: 9999-12-31T23:59:59Z, RFC 5280
    /// §4.1.2.5's "no well-defined expiration date" (EMU-ID-2).
    public static let notValidAfter = Date(timeIntervalSince1970: 253_402_300_799)
    /// The DMTF SPDM responder-authentication extended key usage, id-DMTF-eku-responder-auth
    /// 1.3.6.1.4.1.412.274.3 (DSP0274; libspdm `SPDM_OID_DMTF_EKU_RESPONDER_AUTH`).
    public static let spdmResponderAuthEKU: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 412, 274, 3]
    /// The DMTF SPDM requester-authentication extended key usage, 1.3.6.1.4.1.412.274.4.
    public static let spdmRequesterAuthEKU: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 412, 274, 4]

    /// Makes a device identity deterministically from `seed` (EMU-ID-1/2/3): the vendor's root
    /// and intermediate CA (``DeviceCertificateAuthority/make(seed:vendorID:)``), then the
    /// device key, leaf certificate and standard measurement record from the same seed
    /// (``DeviceCertificateAuthority/issue(seed:vendorID:deviceID:serial:hardwareConfiguration:)``).
    ///
    /// Keys, names, serial numbers, validity and the TBS part of each certificate are the same for
    /// the same inputs in every run; the ECDSA signatures are not (swift-crypto signs with random
    /// nonces, EMU-ID-5), so certificate DER, RootHash and chain digests differ between runs.
    ///
    /// Throws ``IdentityError/Code/invalidParameter`` when `serial` is not a PrintableString.
    public static func make(
        seed: [UInt8], vendorID: UInt16, deviceID: UInt16, serial: String,
        hardwareConfiguration: [UInt8] = []
    ) throws(IdentityError) -> DeviceIdentity {
        try DeviceCertificateAuthority.make(seed: seed, vendorID: vendorID)
            .issue(seed: seed, vendorID: vendorID, deviceID: deviceID, serial: serial, hardwareConfiguration: hardwareConfiguration)
    }
}

/// A device vendor's certificate authority: a self-signed root CA and an intermediate CA that
/// issues device certificates. Made once and reused, it lets many devices share one root and
/// intermediate (one key derivation and one signature per device instead of three).
///
/// Certificate profile (EMU-ID-2): v3, ecdsa-with-SHA384, P-384 keys, validity
/// ``DeviceIdentity/notValidBefore``…``DeviceIdentity/notValidAfter``.
///
/// | Certificate | Subject | Extensions |
/// |---|---|---|
/// | root | O=TSMKit Vendor VVVV, CN=TSMKit Root CA VVVV | basicConstraints CA (critical); keyUsage keyCertSign, cRLSign (critical); SKI |
/// | intermediate | O=TSMKit Vendor VVVV, CN=TSMKit Device CA VVVV | basicConstraints CA, pathLen 0 (critical); keyUsage keyCertSign, cRLSign (critical); SKI; AKI |
/// | leaf | O=TSMKit Vendor VVVV, OU=PCI VVVV:DDDD, CN=TSMKit Device VVVV:DDDD, serialNumber=serial | basicConstraints not CA (critical); keyUsage digitalSignature (critical); extKeyUsage id-DMTF-eku-responder-auth; SKI; AKI |
///
/// VVVV and DDDD are the PCI vendor and device IDs in four lower-case hex digits.
public struct DeviceCertificateAuthority: Sendable {
    /// The vendor ID in the names.
    public let vendorID: UInt16
    /// The root CA certificate (the trust anchor a verifier provisions).
    public let root: Certificate
    /// The intermediate CA certificate.
    public let intermediate: Certificate
    /// The intermediate CA's private key.
    public let intermediateKey: P384.Signing.PrivateKey

    /// Makes the root and intermediate CA of `vendorID` from `seed`: keys from HKDF labels
    /// `"root CA key"` and `"intermediate CA key"`, serial numbers from `"root CA serial"` and
    /// `"intermediate CA serial"` (``SeedDerivation``).
    public static func make(seed: [UInt8], vendorID: UInt16) throws(IdentityError) -> DeviceCertificateAuthority {
        let vendor = hex4(vendorID)
        let rootKey = try SeedDerivation.p384PrivateKey(seed: seed, label: "root CA key")
        let intermediateKey = try SeedDerivation.p384PrivateKey(seed: seed, label: "intermediate CA key")
        let rootPublic = Certificate.PublicKey(rootKey.publicKey)
        let intermediatePublic = Certificate.PublicKey(intermediateKey.publicKey)
        let rootSKI = SubjectKeyIdentifier(hash: rootPublic)
        return try wrap("making the CA certificates of vendor \(vendor)") {
            let rootName = try DistinguishedName {
                OrganizationName("TSMKit Vendor \(vendor)")
                CommonName("TSMKit Root CA \(vendor)")
            }
            let intermediateName = try DistinguishedName {
                OrganizationName("TSMKit Vendor \(vendor)")
                CommonName("TSMKit Device CA \(vendor)")
            }
            let root = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(bytes: SeedDerivation.serialNumber(seed: seed, label: "root CA serial")),
                publicKey: rootPublic,
                notValidBefore: DeviceIdentity.notValidBefore, notValidAfter: DeviceIdentity.notValidAfter,
                issuer: rootName, subject: rootName,
                signatureAlgorithm: .ecdsaWithSHA384,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    rootSKI
                },
                issuerPrivateKey: Certificate.PrivateKey(rootKey))
            let intermediate = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(bytes: SeedDerivation.serialNumber(seed: seed, label: "intermediate CA serial")),
                publicKey: intermediatePublic,
                notValidBefore: DeviceIdentity.notValidBefore, notValidAfter: DeviceIdentity.notValidAfter,
                issuer: rootName, subject: intermediateName,
                signatureAlgorithm: .ecdsaWithSHA384,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: intermediatePublic)
                    AuthorityKeyIdentifier(keyIdentifier: rootSKI.keyIdentifier)
                },
                issuerPrivateKey: Certificate.PrivateKey(rootKey))
            return DeviceCertificateAuthority(vendorID: vendorID, root: root, intermediate: intermediate, intermediateKey: intermediateKey)
        }
    }

    /// Issues a device identity: the device key from HKDF label `"device key"`, the leaf serial
    /// number from `"device serial"`, the leaf certificate signed by the intermediate, and
    /// ``MeasurementRecord/standard(seed:hardwareConfiguration:firmwareVersion:secureVersionNumber:)``.
    ///
    /// `vendorID` names the device in its leaf; it is usually the authority's. Throws
    /// ``IdentityError/Code/invalidParameter`` when `serial` is empty or not a PrintableString
    /// (A–Z a–z 0–9 space ' ( ) + , - . / : = ?), at most 64 characters (RFC 5280 ub-serial-number).
    public func issue(
        seed: [UInt8], vendorID: UInt16? = nil, deviceID: UInt16, serial: String,
        hardwareConfiguration: [UInt8] = []
    ) throws(IdentityError) -> DeviceIdentity {
        let vendor = Self.hex4(vendorID ?? self.vendorID)
        let device = Self.hex4(deviceID)
        guard !serial.isEmpty, serial.utf8.count <= 64, serial.utf8.allSatisfy(Self.isPrintableStringByte) else {
            throw IdentityError(.invalidParameter, "device serial \"\(serial)\" is not a PrintableString of 1 to 64 characters")
        }
        let deviceKey = try SeedDerivation.p384PrivateKey(seed: seed, label: "device key")
        let devicePublic = Certificate.PublicKey(deviceKey.publicKey)
        let root = self.root
        let intermediate = self.intermediate
        let intermediateKey = self.intermediateKey
        let chain: CertificateChain = try Self.wrap("issuing the certificate of device \(vendor):\(device) serial \(serial)") {
            let subject = DistinguishedName([
                RelativeDistinguishedName(RelativeDistinguishedName.Attribute(type: .RDNAttributeType.organizationName, utf8String: "TSMKit Vendor \(vendor)")),
                RelativeDistinguishedName(RelativeDistinguishedName.Attribute(type: .RDNAttributeType.organizationalUnitName, utf8String: "PCI \(vendor):\(device)")),
                RelativeDistinguishedName(RelativeDistinguishedName.Attribute(type: .RDNAttributeType.commonName, utf8String: "TSMKit Device \(vendor):\(device)")),
                RelativeDistinguishedName(try RelativeDistinguishedName.Attribute(type: Self.serialNumberAttribute, printableString: serial)),
            ])
            let leaf = try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(bytes: SeedDerivation.serialNumber(seed: seed, label: "device serial")),
                publicKey: devicePublic,
                notValidBefore: DeviceIdentity.notValidBefore, notValidAfter: DeviceIdentity.notValidAfter,
                issuer: intermediate.subject, subject: subject,
                signatureAlgorithm: .ecdsaWithSHA384,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([ExtendedKeyUsage.Usage(oid: DeviceIdentity.spdmResponderAuthEKU)])
                    SubjectKeyIdentifier(hash: devicePublic)
                    AuthorityKeyIdentifier(keyIdentifier: try intermediate.extensions.subjectKeyIdentifier?.keyIdentifier)
                },
                issuerPrivateKey: Certificate.PrivateKey(intermediateKey))
            return try CertificateChain(certificates: [root, intermediate, leaf])
        }
        let measurements = try MeasurementRecord.standard(seed: seed, hardwareConfiguration: hardwareConfiguration)
        return try DeviceIdentity(chain: chain, privateKey: deviceKey, measurements: measurements)
    }

    /// id-at-serialNumber, 2.5.4.5 (X.520).
    static let serialNumberAttribute: ASN1ObjectIdentifier = [2, 5, 4, 5]

    static func hex4(_ value: UInt16) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// X.680 PrintableString characters.
    static func isPrintableStringByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return " '()+,-./:=?".utf8.contains(byte)
        }
    }

    /// Runs swift-certificates code, turning its untyped errors into ``IdentityError/Code/signingFailed``
    /// (an ``IdentityError`` passes through).
    static func wrap<T>(_ what: String, _ body: () throws -> T) throws(IdentityError) -> T {
        do {
            return try body()
        } catch let error as IdentityError {
            throw error
        } catch {
            throw IdentityError(.signingFailed, "\(what): \(error)")
        }
    }
}
