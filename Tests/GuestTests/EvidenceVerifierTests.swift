import Crypto
import Device
import Foundation
import Guest
import SwiftASN1
import Testing
import Wire
import X509

/// The device under test and its evidence, made once per test from fixed seeds.
struct EvidenceFixture {
    static let seed: [UInt8] = Array("guest evidence fixture".utf8)
    let identity: DeviceIdentity
    let verifier: EvidenceVerifier
    let nonce: [UInt8] = Array(0xA0..<0xC0)
    let signed: SignedMeasurements

    init() throws {
        identity = try DeviceIdentity.make(seed: Self.seed, vendorID: 0x8086, deviceID: 0x0B25, serial: "TSMKIT-0042")
        verifier = try EvidenceVerifier(trustAnchorDER: identity.chain.derCertificates[0])
        signed = try identity.signMeasurements(requesterNonce: nonce)
    }

    /// The offset in the SPDM chain where certificate `position` starts.
    func certificateOffset(_ position: Int) -> Int {
        4 + 48 + identity.chain.derCertificates.prefix(position).reduce(0) { $0 + $1.count }
    }

    /// Offset of the first occurrence of `needle` in `haystack` at or after `from`.
    static func offset(of needle: [UInt8], in haystack: [UInt8], from: Int = 0) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        for start in from...(haystack.count - needle.count) where Array(haystack[start..<start + needle.count]) == needle {
            return start
        }
        return nil
    }
}

@Suite("Guest evidence: certificate chain")
struct ChainVerificationTests {
    @Test("a generated chain verifies to its root; the leaf key is the device's")
    func accepts() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        #expect(chain.leafPublicKey.rawRepresentation == fixture.identity.privateKey.publicKey.rawRepresentation)
        #expect(chain.certificates.count == 3)
        #expect(chain.digest() == fixture.identity.certificateChainDigest)
    }

    @Test("a chain that starts below the root (RootHash = the anchor's digest) verifies")
    func withoutRoot() async throws {
        let fixture = try EvidenceFixture()
        let ders = fixture.identity.chain.derCertificates
        var chain = [UInt8](repeating: 0, count: 4) + Array(SHA384.hash(data: ders[0])) + ders[1] + ders[2]
        chain[0] = UInt8(truncatingIfNeeded: chain.count)
        chain[1] = UInt8(truncatingIfNeeded: chain.count >> 8)
        let verified = try await fixture.verifier.verifyCertificateChain(chain)
        #expect(verified.certificates.count == 2)
        #expect(verified.leafPublicKey.rawRepresentation == fixture.identity.privateKey.publicKey.rawRepresentation)
    }

    @Test("a SHA-256 RootHash chain verifies with hashAlgorithm .sha256 and is malformed as SHA-384")
    func sha256Chain() async throws {
        let fixture = try EvidenceFixture()
        let chain = try fixture.identity.chain.spdmEncoded(hashAlgorithm: .sha256)
        let verified = try await fixture.verifier.verifyCertificateChain(chain, hashAlgorithm: .sha256)
        #expect(verified.digest(.sha256) == Array(SHA256.hash(data: chain)))
        await #expect(throws: EvidenceError(.malformed, "")) {
            try await fixture.verifier.verifyCertificateChain(chain, hashAlgorithm: .sha384)
        }
    }

    @Test("the anchor loads from PEM and from a Certificate")
    func anchorForms() async throws {
        let fixture = try EvidenceFixture()
        let pem = PEMDocument(type: "CERTIFICATE", derBytes: fixture.identity.chain.derCertificates[0]).pemString
        let fromPEM = try EvidenceVerifier(trustAnchorPEM: pem)
        let fromCertificate = try EvidenceVerifier(trustAnchor: fixture.identity.chain.root)
        #expect(fromPEM.trustAnchorDER == fixture.identity.chain.derCertificates[0])
        #expect(fromCertificate.trustAnchorDER == fixture.identity.chain.derCertificates[0])
        _ = try await fromPEM.verifyCertificateChain(fixture.identity.spdmCertificateChain)
    }

    @Test("bad anchors are refused with .malformed")
    func badAnchors() throws {
        #expect(throws: EvidenceError(.malformed, "")) { try EvidenceVerifier(trustAnchorDER: [0x30, 0x00]) }
        #expect(throws: EvidenceError(.malformed, "")) { try EvidenceVerifier(trustAnchorPEM: "no pem here") }
        let fixture = try EvidenceFixture()
        let two = fixture.identity.chain.pemEncoded()
        #expect(throws: EvidenceError(.malformed, "")) { try EvidenceVerifier(trustAnchorPEM: two) }
    }

    @Test("a different root (another vendor's anchor) is refused with .chainUntrusted")
    func differentRoot() async throws {
        let fixture = try EvidenceFixture()
        let other = try DeviceCertificateAuthority.make(seed: [0xEE], vendorID: 0x8086)
        let otherDER = try CertificateChain(certificates: [other.root]).derCertificates[0]
        let verifier = try EvidenceVerifier(trustAnchorDER: otherDER)
        await #expect(throws: EvidenceError(.chainUntrusted, "")) {
            try await verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        }
    }

    @Test("a chain re-rooted under another root with a fixed-up RootHash is refused with .chainUntrusted")
    func rerooted() async throws {
        let fixture = try EvidenceFixture()
        // Same device and intermediate names, but an attacker's CA: RootHash matches its own root.
        let attacker = try DeviceIdentity.make(seed: [0x66], vendorID: 0x8086, deviceID: 0x0B25, serial: "TSMKIT-0042")
        await #expect(throws: EvidenceError(.chainUntrusted, "")) {
            try await fixture.verifier.verifyCertificateChain(attacker.spdmCertificateChain)
        }
        // And with RootHash rewritten to name the trusted anchor, the path still fails.
        var forged = attacker.spdmCertificateChain
        forged.replaceSubrange(4..<52, with: Array(SHA384.hash(data: fixture.identity.chain.derCertificates[0])))
        await #expect(throws: EvidenceError(.digestMismatch, "")) {
            try await fixture.verifier.verifyCertificateChain(forged)
        }
        // Dropping the attacker's root from the chain leaves no root to compare: path validation refuses.
        let withoutRoot = [UInt8](forged[0..<52]) + attacker.chain.derCertificates[1] + attacker.chain.derCertificates[2]
        var patched = withoutRoot
        patched[0] = UInt8(truncatingIfNeeded: withoutRoot.count)
        patched[1] = UInt8(truncatingIfNeeded: withoutRoot.count >> 8)
        await #expect(throws: EvidenceError(.chainUntrusted, "")) {
            try await fixture.verifier.verifyCertificateChain(patched)
        }
    }

    @Test("a flipped byte in the leaf's signed part is refused with .chainUntrusted")
    func flippedLeafByte() async throws {
        let fixture = try EvidenceFixture()
        var chain = fixture.identity.spdmCertificateChain
        let serial = try #require(EvidenceFixture.offset(of: Array("TSMKIT-0042".utf8), in: chain, from: fixture.certificateOffset(2)))
        chain[serial] ^= 0x01  // "TSMKIT" → "USMKIT": still a PrintableString, the DER still decodes
        await #expect(throws: EvidenceError(.chainUntrusted, "")) {
            try await fixture.verifier.verifyCertificateChain(chain)
        }
    }

    @Test("a flipped byte in the intermediate's signature is refused with .chainUntrusted")
    func flippedIntermediateSignature() async throws {
        let fixture = try EvidenceFixture()
        var chain = fixture.identity.spdmCertificateChain
        // The last byte of a DER ECDSA signature is the last byte of s.
        chain[fixture.certificateOffset(2) - 1] ^= 0x01
        await #expect(throws: EvidenceError(.chainUntrusted, "")) {
            try await fixture.verifier.verifyCertificateChain(chain)
        }
    }

    @Test("a flipped byte in the carried root's serial is refused with .digestMismatch (RootHash no longer matches)")
    func flippedRootSerial() async throws {
        let fixture = try EvidenceFixture()
        var chain = fixture.identity.spdmCertificateChain
        // Root DER: 30 82 LL LL 30 82 LL LL a0 03 02 01 02 02 10 <serial>: the serial starts at +15.
        let serial = fixture.certificateOffset(0) + 15
        #expect(Array(chain[serial - 2..<serial]) == [0x02, 0x10])
        chain[serial] ^= 0x01
        await #expect(throws: EvidenceError(.digestMismatch, "")) {
            try await fixture.verifier.verifyCertificateChain(chain)
        }
    }

    @Test("a flipped byte in the carried root's issuer (no longer self-issued) is refused with .chainUntrusted")
    func flippedRootIssuer() async throws {
        let fixture = try EvidenceFixture()
        var chain = fixture.identity.spdmCertificateChain
        let name = try #require(EvidenceFixture.offset(of: Array("TSMKit Root CA".utf8), in: chain, from: fixture.certificateOffset(0)))
        chain[name] ^= 0x01
        await #expect(throws: EvidenceError(.chainUntrusted, "")) {
            try await fixture.verifier.verifyCertificateChain(chain)
        }
    }

    @Test("an extra certificate that is not on the path is refused with .chainUntrusted")
    func extraCertificate() async throws {
        let fixture = try EvidenceFixture()
        let stranger = try DeviceIdentity.make(seed: [0x77], vendorID: 0x1AF4, deviceID: 1, serial: "S")
        let ders = fixture.identity.chain.derCertificates
        let body = ders[0] + ders[1] + stranger.chain.derCertificates[1] + ders[2]
        var chain = [UInt8](repeating: 0, count: 4) + Array(SHA384.hash(data: ders[0])) + body
        chain[0] = UInt8(truncatingIfNeeded: chain.count)
        chain[1] = UInt8(truncatingIfNeeded: chain.count >> 8)
        await #expect(throws: EvidenceError(.chainUntrusted, "")) {
            try await fixture.verifier.verifyCertificateChain(chain)
        }
    }

    @Test("a flipped RootHash byte is refused (the carried root no longer matches it)")
    func flippedRootHash() async throws {
        let fixture = try EvidenceFixture()
        var chain = fixture.identity.spdmCertificateChain
        chain[20] ^= 0x80
        await #expect(throws: EvidenceError(.digestMismatch, "")) {
            try await fixture.verifier.verifyCertificateChain(chain)
        }
    }

    @Test("structural damage is refused with .malformed")
    func malformedChains() async throws {
        let fixture = try EvidenceFixture()
        let good = fixture.identity.spdmCertificateChain
        var length = good
        length[0] ^= 0x04
        var reserved = good
        reserved[3] = 0x01
        var tag = good
        tag[fixture.certificateOffset(1)] = 0x31
        let cases: [[UInt8]] = [[], Array(good.prefix(4)), Array(good.prefix(52)), length, reserved, tag, Array(good.dropLast())]
        for bytes in cases {
            await #expect(throws: EvidenceError(.malformed, "")) {
                try await fixture.verifier.verifyCertificateChain(bytes)
            }
        }
    }

    @Test("a leaf whose public key is off the curve, or a certificate whose DER inside is damaged, is .malformed with a reason that says which")
    func malformedCertificateReasons() async throws {
        let fixture = try EvidenceFixture()
        let good = fixture.identity.spdmCertificateChain
        // The leaf's subject public key: 0x04 ‖ X (48) ‖ Y (48). Flipping a byte of X leaves a
        // point that is (overwhelmingly likely) not on P-384: swift-crypto refuses it.
        let point = Array(fixture.identity.privateKey.publicKey.x963Representation)
        let at = try #require(EvidenceFixture.offset(of: point, in: good, from: fixture.certificateOffset(2)))
        var offCurve = good
        offCurve[at + 10] ^= 0x01
        do {
            _ = try await fixture.verifier.verifyCertificateChain(offCurve)
            Issue.record("an off-curve leaf key was accepted")
        } catch {
            #expect(error.code == .malformed)
            #expect(error.reason.contains("certificate 2 at offset \(fixture.certificateOffset(2)) carries a public key that is not a valid key"), "\(error.reason)")
        }
        // The intermediate's version field: [0] EXPLICIT INTEGER 2 at +8 (30 82 LL LL 30 82 LL LL a0 03 02 01 02).
        var badVersion = good
        let version = fixture.certificateOffset(1) + 8
        #expect(Array(good[version..<version + 5]) == [0xA0, 0x03, 0x02, 0x01, 0x02])
        badVersion[version + 2] = 0x04  // INTEGER → OCTET STRING
        do {
            _ = try await fixture.verifier.verifyCertificateChain(badVersion)
            Issue.record("a damaged certificate was accepted")
        } catch {
            #expect(error.code == .malformed)
            #expect(error.reason.contains("certificate 1 at offset \(fixture.certificateOffset(1)) is not a valid X.509 certificate"), "\(error.reason)")
        }
    }

    @Test("a leaf without digitalSignature, or a CA leaf, is refused with .chainUntrusted")
    func leafPolicy() async throws {
        let fixture = try EvidenceFixture()
        let authorityKey = try SeedDerivation.p384PrivateKey(seed: EvidenceFixture.seed, label: "intermediate CA key")
        let intermediate = fixture.identity.chain.certificates[1]
        for extensions in [
            try Certificate.Extensions { Critical(KeyUsage(keyAgreement: true)) },
            try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(digitalSignature: true))
            },
            try Certificate.Extensions {
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([ExtendedKeyUsage.Usage(oid: DeviceChainPolicy.requesterAuthEKU)])
            },
        ] {
            let leaf = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(fixture.identity.privateKey.publicKey),
                notValidBefore: DeviceIdentity.notValidBefore, notValidAfter: DeviceIdentity.notValidAfter,
                issuer: intermediate.subject, subject: try DistinguishedName { CommonName("policy test leaf") },
                signatureAlgorithm: .ecdsaWithSHA384, extensions: extensions, issuerPrivateKey: .init(authorityKey))
            let chain = try CertificateChain(certificates: [fixture.identity.chain.root, intermediate, leaf])
            await #expect(throws: EvidenceError(.chainUntrusted, "")) {
                try await fixture.verifier.verifyCertificateChain(try chain.spdmEncoded())
            }
        }
    }

    @Test("an expired leaf is refused with .chainUntrusted")
    func expiredLeaf() async throws {
        let fixture = try EvidenceFixture()
        let authorityKey = try SeedDerivation.p384PrivateKey(seed: EvidenceFixture.seed, label: "intermediate CA key")
        let intermediate = fixture.identity.chain.certificates[1]
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(fixture.identity.privateKey.publicKey),
            notValidBefore: Date(timeIntervalSince1970: 1_000_000_000), notValidAfter: Date(timeIntervalSince1970: 1_100_000_000),
            issuer: intermediate.subject, subject: try DistinguishedName { CommonName("expired leaf") },
            signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions { Critical(KeyUsage(digitalSignature: true)) },
            issuerPrivateKey: .init(authorityKey))
        let chain = try CertificateChain(certificates: [fixture.identity.chain.root, intermediate, leaf])
        await #expect(throws: EvidenceError(.chainUntrusted, "")) {
            try await fixture.verifier.verifyCertificateChain(try chain.spdmEncoded())
        }
    }

    @Test("random bytes never trap")
    func randomBytes() async throws {
        let fixture = try EvidenceFixture()
        var state: UInt64 = 0xC0FFEE
        for _ in 0..<300 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let count = Int(state >> 56)
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: state >> UInt64($0 % 56)) }
            _ = try? await fixture.verifier.verifyCertificateChain(bytes)
        }
        let good = fixture.identity.spdmCertificateChain
        for length in stride(from: 0, to: good.count, by: 7) {
            _ = try? await fixture.verifier.verifyCertificateChain(Array(good.prefix(length)))
        }
    }
}

@Suite("Guest evidence: measurements")
struct MeasurementVerificationTests {
    @Test("a signed MEASUREMENTS verifies and decodes to the device's blocks")
    func accepts() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        let measurements = try fixture.verifier.verifyMeasurements(
            request: fixture.signed.request, response: fixture.signed.response, expectedNonce: fixture.nonce, chain: chain)
        #expect(measurements.blocks.map(\.index) == [1, 2, 3, 4, 5, 0xFE])
        #expect(measurements.block(index: 4)?.value == Array("TSMKit-EMU 1.0.0".utf8))
        #expect(measurements.block(index: 4)?.valueType == 6)
        #expect(measurements.block(index: 4)?.isRawBitStream == true)
        #expect(measurements.record == fixture.identity.measurements.encoded())
        #expect(measurements.requesterNonce == fixture.nonce)
        #expect(measurements.spdmVersion == 0x12)
    }

    @Test("the one-object report (VCA ‖ GET_MEASUREMENTS ‖ MEASUREMENTS) verifies; a cut or tampered one does not")
    func report() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        let vca: [UInt8] = [0x10, 0x84, 0x00, 0x00]
        let signed = try fixture.identity.signMeasurements(requesterNonce: fixture.nonce, vcaTranscript: vca)
        #expect(signed.report == vca + signed.request + signed.response)
        let accepted = try fixture.verifier.verifyMeasurements(report: signed.report, vcaLength: 4, expectedNonce: fixture.nonce, chain: chain)
        #expect(accepted.blocks.count == 6)
        #expect(throws: EvidenceError(.malformed, "")) {
            try fixture.verifier.verifyMeasurements(report: Array(signed.report.prefix(40)), vcaLength: 4, chain: chain)
        }
        for vcaLength in [-1, Int.max, signed.report.count] {
            #expect(throws: EvidenceError(.malformed, "")) {
                try fixture.verifier.verifyMeasurements(report: signed.report, vcaLength: vcaLength, chain: chain)
            }
        }
        var tampered = signed.report
        tampered[1] ^= 0x01  // inside the VCA
        #expect(throws: EvidenceError(.signatureInvalid, "")) {
            try fixture.verifier.verifyMeasurements(report: tampered, vcaLength: 4, chain: chain)
        }
    }

    @Test("with a VCA transcript signed in, the verifier must be given the same VCA")
    func vcaTranscript() async throws {
        let fixture = try EvidenceFixture()
        let vca: [UInt8] = [0x10, 0x84, 0x00, 0x00, 0x10, 0x04, 0x00, 0x00]
        let signed = try fixture.identity.signMeasurements(requesterNonce: fixture.nonce, vcaTranscript: vca)
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        _ = try fixture.verifier.verifyMeasurements(request: signed.request, response: signed.response, vcaTranscript: vca, chain: chain)
        #expect(throws: EvidenceError(.signatureInvalid, "")) {
            try fixture.verifier.verifyMeasurements(request: signed.request, response: signed.response, chain: chain)
        }
    }

    @Test("a flipped byte in a measurement value is refused with .signatureInvalid")
    func flippedMeasurement() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        for offset in [8 + 7, 8 + 55 + 7 + 47, 8 + 165 + 7, 8 + 226 - 1] {  // ROM digest, firmware digest, version, device mode
            var response = fixture.signed.response
            response[offset] ^= 0x01
            #expect(throws: EvidenceError(.signatureInvalid, "")) {
                try fixture.verifier.verifyMeasurements(request: fixture.signed.request, response: response, chain: chain)
            }
        }
    }

    @Test("a flipped byte in the signature, or the responder nonce, is refused with .signatureInvalid")
    func flippedSignatureOrNonce() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        for offset in [fixture.signed.response.count - 1, fixture.signed.response.count - 96, 8 + 226 + 5] {
            var response = fixture.signed.response
            response[offset] ^= 0x01
            #expect(throws: EvidenceError(.signatureInvalid, "")) {
                try fixture.verifier.verifyMeasurements(request: fixture.signed.request, response: response, chain: chain)
            }
        }
        // A zero signature is not an ECDSA signature at all.
        var zero = fixture.signed.response
        zero.replaceSubrange((zero.count - 96)..., with: [UInt8](repeating: 0, count: 96))
        #expect(throws: EvidenceError(.signatureInvalid, "")) {
            try fixture.verifier.verifyMeasurements(request: fixture.signed.request, response: zero, chain: chain)
        }
    }

    @Test("a request with another nonce than the one signed is refused with .signatureInvalid")
    func swappedRequestNonce() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        var request = fixture.signed.request
        request[10] ^= 0x01
        #expect(throws: EvidenceError(.signatureInvalid, "")) {
            try fixture.verifier.verifyMeasurements(request: request, response: fixture.signed.response, chain: chain)
        }
    }

    @Test("a replay (the request's nonce is not the guest's) is refused with .nonceMismatch")
    func replay() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        #expect(throws: EvidenceError(.nonceMismatch, "")) {
            try fixture.verifier.verifyMeasurements(
                request: fixture.signed.request, response: fixture.signed.response,
                expectedNonce: [UInt8](repeating: 0x11, count: 32), chain: chain)
        }
    }

    @Test("measurements signed by another device are refused with .signatureInvalid")
    func otherDevice() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        let other = try DeviceIdentity.make(seed: [0x01], vendorID: 0x8086, deviceID: 0x0B25, serial: "X")
        let signed = try other.signMeasurements(requesterNonce: fixture.nonce)
        #expect(throws: EvidenceError(.signatureInvalid, "")) {
            try fixture.verifier.verifyMeasurements(request: signed.request, response: signed.response, chain: chain)
        }
    }

    @Test("structural damage is refused with .malformed; SPDM 1.1 with .unsupportedAlgorithm")
    func malformed() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        let request = fixture.signed.request
        let response = fixture.signed.response
        func check(_ request: [UInt8], _ response: [UInt8], _ code: EvidenceError.Code) {
            #expect(throws: EvidenceError(code, "")) {
                try fixture.verifier.verifyMeasurements(request: request, response: response, chain: chain)
            }
        }
        var code = request
        code[1] = 0xE1
        var noSignature = request
        noSignature[2] = 0x00
        var version11 = request
        version11[0] = 0x11
        check(Array(request.dropLast()), response, .malformed)
        check(request + [0], response, .malformed)
        check(code, response, .malformed)
        check(noSignature, response, .malformed)
        check(version11, response, .unsupportedAlgorithm)

        var responseCode = response
        responseCode[1] = 0x61
        var responseVersion = response
        responseVersion[0] = 0x13
        var blocks = response
        blocks[4] = 5
        var recordLength = response
        recordLength[5] = 0xE1
        var spec = response
        spec[8 + 1] = 0x02
        var opaque = response
        opaque[8 + 226 + 32] = 0x01
        check(request, responseCode, .malformed)
        check(request, responseVersion, .malformed)
        check(request, blocks, .malformed)
        check(request, recordLength, .malformed)
        check(request, spec, .malformed)
        check(request, opaque, .malformed)
        check(request, Array(response.dropLast()), .malformed)
        check(request, response + [0], .malformed)
        check(request, [], .malformed)
    }

    @Test("truncations and random responses never trap")
    func fuzz() async throws {
        let fixture = try EvidenceFixture()
        let chain = try await fixture.verifier.verifyCertificateChain(fixture.identity.spdmCertificateChain)
        let response = fixture.signed.response
        for length in 0..<response.count {
            #expect(throws: EvidenceError.self) {
                try fixture.verifier.verifyMeasurements(request: fixture.signed.request, response: Array(response.prefix(length)), chain: chain)
            }
        }
        var state: UInt64 = 42
        for _ in 0..<500 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            var bytes = response
            let position = Int(state >> 33) % bytes.count
            bytes[position] = UInt8(truncatingIfNeeded: state >> 8)
            _ = try? fixture.verifier.verifyMeasurements(request: fixture.signed.request, response: bytes, chain: chain)
        }
    }
}

@Suite("Guest evidence: digests the TSM reports")
struct DigestCheckTests {
    @Test("matching digests pass for every algorithm", arguments: EvidenceDigestAlgorithm.allCases)
    func matching(algorithm: EvidenceDigestAlgorithm) throws {
        let fixture = try EvidenceFixture()
        let object = fixture.identity.spdmCertificateChain
        let reported: [UInt8]
        switch algorithm {
        case .sha256: reported = Array(SHA256.hash(data: object))
        case .sha384: reported = Array(SHA384.hash(data: object))
        case .sha512: reported = Array(SHA512.hash(data: object))
        }
        #expect(reported.count == algorithm.digestSize)
        try fixture.verifier.checkDigest(of: object, .certificateChain, reported: reported, algorithm: algorithm)
    }

    @Test("a tampered object is refused with .digestMismatch", arguments: [EvidenceObject.certificateChain, .measurements, .interfaceReport])
    func tampered(object: EvidenceObject) throws {
        let fixture = try EvidenceFixture()
        let bytes = fixture.signed.response
        let reported = Array(SHA384.hash(data: bytes))
        var tampered = bytes
        tampered[100] ^= 0x01
        #expect(throws: EvidenceError(.digestMismatch, "")) {
            try fixture.verifier.checkDigest(of: tampered, object, reported: reported, algorithm: .sha384)
        }
        do {
            try EvidenceVerifier.checkDigest(of: tampered, object, reported: reported, algorithm: .sha384)
            Issue.record("tampered \(object) accepted")
        } catch {
            #expect(error.reason.hasPrefix("\(object):"))
        }
    }

    @Test("the certificate digest the device reports matches its chain (SHA-384 and SHA-256)")
    func deviceDigest() throws {
        let fixture = try EvidenceFixture()
        try EvidenceVerifier.checkDigest(
            of: fixture.identity.spdmCertificateChain, .certificateChain,
            reported: fixture.identity.certificateChainDigest, algorithm: .sha384)
        #expect(throws: EvidenceError(.malformed, "")) {
            try EvidenceVerifier.checkDigest(
                of: fixture.identity.spdmCertificateChain, .certificateChain,
                reported: fixture.identity.certificateChainDigest, algorithm: .sha256)
        }
    }

    @Test("EvidenceError is equal by code only")
    func equalByCode() {
        #expect(EvidenceError(.digestMismatch, "a") == EvidenceError(.digestMismatch, "b"))
        #expect(EvidenceError(.digestMismatch, "a") != EvidenceError(.signatureInvalid, "a"))
        #expect("\(EvidenceError(.chainUntrusted, "x"))" == "chainUntrusted: x")
    }
}
