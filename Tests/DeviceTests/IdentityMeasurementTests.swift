import Crypto
import Testing
import Wire

@testable import Device

@Suite("DMTF measurement blocks (spec §4.7, EMU-ID-3)")
struct MeasurementBlockTests {
    @Test("a digest block: Index, spec 0x01, MeasurementSize = 3 + 48, type 0x00, ValueSize 48")
    func digestBlockLayout() throws {
        let value = [UInt8](repeating: 0xAB, count: 48)
        let block = try MeasurementBlock(index: 1, valueType: .immutableROM, isRawBitStream: false, value: value)
        #expect(block.encoded() == [0x01, 0x01, 0x33, 0x00, 0x00, 0x30, 0x00] + value)
    }

    @Test("a raw block sets bit 7 of the type byte")
    func rawBlockLayout() throws {
        let block = try MeasurementBlock(index: 4, valueType: .version, isRawBitStream: true, value: Array("1.0".utf8))
        #expect(block.encoded() == [0x04, 0x01, 0x06, 0x00, 0x86, 0x03, 0x00, 0x31, 0x2E, 0x30])
    }

    @Test("the standard record: six blocks, 226 bytes, values as documented")
    func standardRecord() throws {
        let config: [UInt8] = [0x86, 0x80, 0x25, 0x0B]
        let record = try MeasurementRecord.standard(seed: identitySeed, hardwareConfiguration: config)
        #expect(record.blocks.map(\.index) == [1, 2, 3, 4, 5, 0xFE])
        #expect(record.blocks.map(\.valueTypeByte) == [0x00, 0x01, 0x02, 0x86, 0x87, 0x85])
        #expect(record.numberOfBlocks == 6)
        let bytes = record.encoded()
        #expect(bytes.count == 226)
        #expect(record.block(index: 3)?.value == Array(SHA384.hash(data: config)))
        #expect(record.block(index: 4)?.value == Array("TSMKit-EMU 1.0.0".utf8))
        #expect(record.block(index: 5)?.value == [1, 0, 0, 0, 0, 0, 0, 0])
        // Device mode: normal|recovery|RMA supported, normal active; debug bits supported, none active.
        #expect(record.block(index: 0xFE)?.value == [0x1C, 0, 0, 0, 0x04, 0, 0, 0, 0x0F, 0, 0, 0, 0, 0, 0, 0])
        #expect(record.block(index: 1)?.value == SeedDerivation.bytes(seed: identitySeed, label: "measurement immutable ROM", count: 48))
        // The device-mode block is last: index FE, spec 01, size 19, type 85, value size 16.
        #expect(Array(bytes[203..<210]) == [0xFE, 0x01, 0x13, 0x00, 0x85, 0x10, 0x00])
        #expect(try MeasurementRecord(decoding: bytes, numberOfBlocks: 6) == record)
    }

    @Test("index 0 and 0xFF are not block indices", arguments: [UInt8(0), 0xFF])
    func badIndex(index: UInt8) {
        #expect(throws: IdentityError(.invalidParameter, "")) {
            try MeasurementBlock(index: index, valueType: .version, isRawBitStream: true, value: [])
        }
    }

    @Test("a value longer than 0xFFFC bytes is refused")
    func valueTooLong() {
        #expect(throws: IdentityError(.invalidParameter, "")) {
            try MeasurementBlock(index: 1, valueType: .informational, isRawBitStream: true, value: [UInt8](repeating: 0, count: 0xFFFD))
        }
    }

    @Test("indices must ascend without repeats")
    func order() throws {
        let one = try MeasurementBlock(index: 1, valueType: .version, isRawBitStream: true, value: [])
        let two = try MeasurementBlock(index: 2, valueType: .version, isRawBitStream: true, value: [])
        #expect(throws: IdentityError(.invalidParameter, "")) { try MeasurementRecord(blocks: [two, one]) }
        #expect(throws: IdentityError(.invalidParameter, "")) { try MeasurementRecord(blocks: [one, one]) }
    }

    @Test("damaged records are refused with .malformed")
    func damagedRecords() throws {
        let good = try MeasurementRecord.standard(seed: identitySeed, hardwareConfiguration: []).encoded()
        var spec = good
        spec[1] = 0x02
        var size = good
        size[2] = 0x34
        var index = good
        index[0] = 0
        for (bytes, count) in [(spec, 6), (size, 6), (index, 6), (Array(good.dropLast()), 6), (good, 5), (good, 7)] {
            #expect(throws: IdentityError(.malformed, "")) { try MeasurementRecord(decoding: bytes, numberOfBlocks: count) }
        }
    }

    @Test("random and truncated bytes never trap")
    func randomBytes() {
        var generator = IdentityTestRandom(seed: 0x5EED)
        let good = (try? MeasurementRecord.standard(seed: identitySeed, hardwareConfiguration: []).encoded()) ?? []
        for length in 0..<good.count {
            _ = try? MeasurementRecord(decoding: Array(good.prefix(length)), numberOfBlocks: 6)
        }
        for _ in 0..<2000 {
            let count = Int(generator.next() % 64)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            _ = try? MeasurementRecord(decoding: bytes, numberOfBlocks: Int(generator.next() % 4))
            _ = try? CertificateChain(spdmEncoded: bytes)
            _ = try? CertificateChain(derBundle: bytes)
        }
    }
}

@Suite("Signed MEASUREMENTS (spec §4.7, §4.10, EMU-ID-4)")
struct SignedMeasurementsTests {
    let identity: DeviceIdentity
    let nonce: [UInt8] = Array(0x40..<0x60)

    init() throws {
        identity = try DeviceIdentity.make(seed: identitySeed, vendorID: 0x8086, deviceID: 0x0B25, serial: "TSMKIT-0001")
    }

    @Test("the signing context is the 100-byte SPDM 1.2 context of MEASUREMENTS")
    func signingContext() {
        let expected = "dmtf-spdm-v1.2.*dmtf-spdm-v1.2.*dmtf-spdm-v1.2.*dmtf-spdm-v1.2.*"
        #expect(SignedMeasurements.signingContext.count == 100)
        #expect(Array(SignedMeasurements.signingContext.prefix(64)) == Array(expected.utf8))
        #expect(Array(SignedMeasurements.signingContext[64..<70]) == [0, 0, 0, 0, 0, 0])
        #expect(String(decoding: SignedMeasurements.signingContext.suffix(30), as: UTF8.self) == "responder-measurements signing")
    }

    @Test("GET_MEASUREMENTS is 37 bytes: 12 e0 01 ff, nonce, slot 0")
    func request() throws {
        let signed = try identity.signMeasurements(requesterNonce: nonce)
        #expect(signed.request == [0x12, 0xE0, 0x01, 0xFF] + nonce + [0x00])
    }

    @Test("MEASUREMENTS: header, u24 record length, record, nonce, no opaque data, 96-byte signature")
    func responseLayout() throws {
        let responderNonce = [UInt8](repeating: 0x77, count: 32)
        let signed = try identity.signMeasurements(requesterNonce: nonce, responderNonce: responderNonce)
        let record = identity.measurements.encoded()
        #expect(signed.response.count == 8 + 226 + 32 + 2 + 96)
        #expect(Array(signed.response.prefix(8)) == [0x12, 0x60, 0x00, 0x00, 0x06, 0xE2, 0x00, 0x00])
        #expect(Array(signed.response[8..<234]) == record)
        #expect(Array(signed.response[234..<266]) == responderNonce)
        #expect(Array(signed.response[266..<268]) == [0, 0])
        #expect(signed.signature.count == 96)
    }

    @Test("the signature is ECDSA P-384/SHA-384 over context ‖ SHA-384(GET_MEASUREMENTS ‖ MEASUREMENTS without signature)")
    func signatureVerifies() throws {
        let signed = try identity.signMeasurements(requesterNonce: nonce)
        let transcript = signed.request + Array(signed.response.dropLast(96))
        #expect(signed.transcript == transcript)
        let message = SignedMeasurements.signingContext + Array(SHA384.hash(data: transcript))
        let signature = try P384.Signing.ECDSASignature(rawRepresentation: signed.signature)
        #expect(identity.privateKey.publicKey.isValidSignature(signature, for: message))
        // Not over the raw transcript (SPDM 1.1 style), nor with the VCA missing when given.
        #expect(!identity.privateKey.publicKey.isValidSignature(signature, for: transcript))
        let withVCA = try identity.signMeasurements(requesterNonce: nonce, vcaTranscript: [0x10, 0x84, 0, 0])
        let vcaMessage = SignedMeasurements.signingContext + Array(SHA384.hash(data: [0x10, 0x84, 0, 0] + transcript))
        let vcaSignature = try P384.Signing.ECDSASignature(rawRepresentation: withVCA.signature)
        #expect(identity.privateKey.publicKey.isValidSignature(vcaSignature, for: vcaMessage))
        #expect(!identity.privateKey.publicKey.isValidSignature(vcaSignature, for: message))
    }

    @Test("everything but the signature is stable across runs (EMU-ID-5)")
    func stableExceptSignature() throws {
        let first = try identity.signMeasurements(requesterNonce: nonce)
        let second = try identity.signMeasurements(requesterNonce: nonce)
        #expect(first.request == second.request)
        #expect(first.responseWithoutSignature == second.responseWithoutSignature)
    }

    @Test("nonces of another size are refused", arguments: [0, 31, 33])
    func badNonce(size: Int) {
        #expect(throws: IdentityError(.invalidParameter, "")) {
            try identity.signMeasurements(requesterNonce: [UInt8](repeating: 1, count: size))
        }
        #expect(throws: IdentityError(.invalidParameter, "")) {
            try identity.signMeasurements(requesterNonce: nonce, responderNonce: [UInt8](repeating: 1, count: size))
        }
    }
}

/// A small deterministic generator for the random-input tests (IdentityTestRandom).
struct IdentityTestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
