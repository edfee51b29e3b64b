import Crypto
import Wire

/// Measurements the guest accepted: the MEASUREMENTS record decoded block by block, with the
/// nonces of the exchange.
public struct VerifiedMeasurements: Hashable, Sendable {
    /// One measurement block in the DMTF format (spec §4.7).
    ///
    /// | Offset | Size | Field |
    /// |---|---|---|
    /// | 0 | 1 | Index |
    /// | 1 | 1 | MeasurementSpecification = 0x01 |
    /// | 2 | 2 | MeasurementSize = 3 + n |
    /// | 4 | 1 | DMTFSpecMeasurementValueType (bit 7 raw bit stream) |
    /// | 5 | 2 | DMTFSpecMeasurementValueSize = n |
    /// | 7 | n | value |
    public struct Block: Hashable, Sendable {
        /// Index (1…0xFE).
        public let index: UInt8
        /// Value type, bits 6:0 (0 immutable ROM, 1 mutable firmware, 2 hardware configuration,
        /// 3 firmware configuration, 4 manifest, 5 device mode, 6 version, 7 SVN, …).
        public let valueType: UInt8
        /// Bit 7 of the type byte: the value is the data itself, not a digest.
        public let isRawBitStream: Bool
        /// The value.
        public let value: [UInt8]
    }

    /// SPDMVersion of the exchange (0x12 or 0x13).
    public let spdmVersion: UInt8
    /// The blocks, in record order.
    public let blocks: [Block]
    /// The requester's nonce (from GET_MEASUREMENTS).
    public let requesterNonce: [UInt8]
    /// The responder's nonce (from MEASUREMENTS).
    public let responderNonce: [UInt8]
    /// The MeasurementRecord bytes.
    public let record: [UInt8]

    /// The block with `index`, if any.
    public func block(index: UInt8) -> Block? { blocks.first { $0.index == index } }
}

extension EvidenceVerifier {
    /// Size of an ECDSA P-384 signature in SPDM (r ‖ s).
    public static let p384SignatureSize = 96

    /// Verifies a signed GET_MEASUREMENTS / MEASUREMENTS exchange with the key of a verified
    /// chain (spec §4.7, §4.10; EMU-ID-4 in docs/identity.md).
    ///
    /// The signed message is M = signing context ("dmtf-spdm-v1.X.*" × 4, zero pad,
    /// "responder-measurements signing"; 100 bytes) ‖ SHA-384(L1), with L1 = `vcaTranscript` ‖
    /// `request` ‖ `response` without its 96-byte Signature; the signature is ECDSA P-384 over M
    /// with SHA-384.
    ///
    /// Checks, in order:
    /// 1. `request` is a 37-byte GET_MEASUREMENTS with SignatureRequested; `response` is a
    ///    MEASUREMENTS of the same SPDMVersion whose record holds NumberOfBlocks well-formed DMTF
    ///    blocks (digest blocks `measurementHashSize` bytes), followed by Nonce, OpaqueData and
    ///    exactly 96 signature bytes — else ``EvidenceError/Code/malformed``; an SPDMVersion
    ///    other than 1.2/1.3 → ``EvidenceError/Code/unsupportedAlgorithm``;
    /// 2. `expectedNonce`, when given, is the request's nonce — else
    ///    ``EvidenceError/Code/nonceMismatch``;
    /// 3. the signature verifies with `chain.leafPublicKey` — else
    ///    ``EvidenceError/Code/signatureInvalid``.
    public func verifyMeasurements(
        request: [UInt8], response: [UInt8], vcaTranscript: [UInt8] = [],
        expectedNonce: [UInt8]? = nil, measurementHashSize: Int = 48,
        chain: VerifiedCertificateChain
    ) throws(EvidenceError) -> VerifiedMeasurements {
        try Self.verifyMeasurements(
            request: request, response: response, vcaTranscript: vcaTranscript,
            expectedNonce: expectedNonce, measurementHashSize: measurementHashSize,
            publicKey: chain.leafPublicKey)
    }

    /// Verifies a measurements report as one object — VCA ‖ GET_MEASUREMENTS (37 bytes) ‖
    /// MEASUREMENTS, libspdm's "standard all-measurements report" — whose first `vcaLength`
    /// bytes are the VCA messages (0 in TSMKit today, EMU-ID-4).
    ///
    /// Throws ``EvidenceError/Code/malformed`` when the report is shorter than `vcaLength` + 37,
    /// then as ``verifyMeasurements(request:response:vcaTranscript:expectedNonce:measurementHashSize:chain:)``.
    public func verifyMeasurements(
        report: [UInt8], vcaLength: Int = 0, expectedNonce: [UInt8]? = nil,
        measurementHashSize: Int = 48, chain: VerifiedCertificateChain
    ) throws(EvidenceError) -> VerifiedMeasurements {
        guard vcaLength >= 0, vcaLength <= report.count - 37 else {
            throw EvidenceError(.malformed, "measurements: a report of \(report.count) bytes cannot hold \(vcaLength) VCA bytes and a 37-byte GET_MEASUREMENTS")
        }
        let requestEnd = vcaLength + 37
        return try verifyMeasurements(
            request: Array(report[vcaLength..<requestEnd]), response: Array(report[requestEnd...]),
            vcaTranscript: Array(report[..<vcaLength]), expectedNonce: expectedNonce,
            measurementHashSize: measurementHashSize, chain: chain)
    }

    /// The check of ``verifyMeasurements(request:response:vcaTranscript:expectedNonce:measurementHashSize:chain:)``
    /// with a bare public key.
    public static func verifyMeasurements(
        request: [UInt8], response: [UInt8], vcaTranscript: [UInt8] = [],
        expectedNonce: [UInt8]? = nil, measurementHashSize: Int = 48,
        publicKey: P384.Signing.PublicKey
    ) throws(EvidenceError) -> VerifiedMeasurements {
        let (version, requesterNonce) = try decodeRequest(request)
        let (measurements, signatureOffset) = try decodeResponse(
            response, version: version, requesterNonce: requesterNonce, measurementHashSize: measurementHashSize)
        if let expectedNonce, expectedNonce != requesterNonce {
            throw EvidenceError(.nonceMismatch, "measurements: GET_MEASUREMENTS carries nonce \(Hex.encode(requesterNonce)), the guest chose \(Hex.encode(expectedNonce))")
        }
        let transcript = vcaTranscript + request + response[..<signatureOffset]
        let message = signingContext(version: version) + Array(SHA384.hash(data: transcript))
        let signatureBytes = Array(response[signatureOffset...])
        guard let signature = try? P384.Signing.ECDSASignature(rawRepresentation: signatureBytes),
              publicKey.isValidSignature(signature, for: message)
        else {
            throw EvidenceError(.signatureInvalid, "measurements: the MEASUREMENTS signature does not verify with the device certificate's key over SHA-384 of the \(transcript.count)-byte transcript")
        }
        return measurements
    }

    /// The SPDM 1.2+ signing context of MEASUREMENTS for `version` (0x12 → "dmtf-spdm-v1.2.*").
    public static func signingContext(version: UInt8) -> [UInt8] {
        let prefix = Array("dmtf-spdm-v\(version >> 4).\(version & 0x0F).*".utf8)
        let context = Array("responder-measurements signing".utf8)
        return Array([[UInt8]](repeating: prefix, count: 4).joined()) + [UInt8](repeating: 0, count: 36 - context.count) + context
    }

    private static func decodeRequest(_ request: [UInt8]) throws(EvidenceError) -> (version: UInt8, nonce: [UInt8]) {
        var reader = ByteReader(request)
        let version: UInt8, code: UInt8, param1: UInt8, nonce: [UInt8]
        do {
            version = try reader.u8()
            code = try reader.u8()
            param1 = try reader.u8()
            _ = try reader.u8()
            nonce = try reader.bytes(32)
            _ = try reader.u8()
            try reader.expectEnd()
        } catch {
            throw EvidenceError(.malformed, "measurements: GET_MEASUREMENTS (\(request.count) bytes, 37 expected): \(error)")
        }
        guard code == 0xE0 else {
            throw EvidenceError(.malformed, "measurements: request code 0x\(String(code, radix: 16)) is not GET_MEASUREMENTS (0xe0)")
        }
        guard version == 0x12 || version == 0x13 else {
            throw EvidenceError(.unsupportedAlgorithm, "measurements: SPDMVersion 0x\(String(version, radix: 16)); signatures are verified for SPDM 1.2 and 1.3 only")
        }
        guard param1 & 0x01 != 0 else {
            throw EvidenceError(.malformed, "measurements: GET_MEASUREMENTS did not request a signature (Param1 bit 0 clear)")
        }
        return (version, nonce)
    }

    private static func decodeResponse(
        _ response: [UInt8], version: UInt8, requesterNonce: [UInt8], measurementHashSize: Int
    ) throws(EvidenceError) -> (VerifiedMeasurements, signatureOffset: Int) {
        var reader = ByteReader(response)
        let responseVersion: UInt8, code: UInt8, numberOfBlocks: UInt8, record: [UInt8]
        let responderNonce: [UInt8]
        do {
            responseVersion = try reader.u8()
            code = try reader.u8()
            try reader.skip(2)
            numberOfBlocks = try reader.u8()
            let recordLength = try reader.u24()
            record = try reader.bytes(Int(recordLength))
            responderNonce = try reader.bytes(32)
            let opaqueLength = try reader.u16()
            try reader.skip(Int(opaqueLength))
        } catch {
            throw EvidenceError(.malformed, "measurements: MEASUREMENTS (\(response.count) bytes): \(error)")
        }
        guard code == 0x60 else {
            throw EvidenceError(.malformed, "measurements: response code 0x\(String(code, radix: 16)) is not MEASUREMENTS (0x60)")
        }
        guard responseVersion == version else {
            throw EvidenceError(.malformed, "measurements: MEASUREMENTS SPDMVersion 0x\(String(responseVersion, radix: 16)) differs from the request's 0x\(String(version, radix: 16))")
        }
        guard reader.remaining == p384SignatureSize else {
            throw EvidenceError(.malformed, "measurements: \(reader.remaining) byte(s) follow OpaqueData, an ECDSA P-384 signature is \(p384SignatureSize)")
        }
        let blocks = try decodeRecord(record, numberOfBlocks: Int(numberOfBlocks), measurementHashSize: measurementHashSize)
        let measurements = VerifiedMeasurements(
            spdmVersion: version, blocks: blocks, requesterNonce: requesterNonce,
            responderNonce: responderNonce, record: record)
        return (measurements, reader.offset)
    }

    private static func decodeRecord(
        _ record: [UInt8], numberOfBlocks: Int, measurementHashSize: Int
    ) throws(EvidenceError) -> [VerifiedMeasurements.Block] {
        var reader = ByteReader(record)
        var blocks: [VerifiedMeasurements.Block] = []
        for number in 0..<numberOfBlocks {
            let start = reader.offset
            let index: UInt8, specification: UInt8, size: UInt16, type: UInt8, valueSize: UInt16, value: [UInt8]
            do {
                index = try reader.u8()
                specification = try reader.u8()
                size = try reader.u16()
                type = try reader.u8()
                valueSize = try reader.u16()
                value = try reader.bytes(Int(valueSize))
            } catch {
                throw EvidenceError(.malformed, "measurements: block \(number) at record offset \(start): \(error)")
            }
            guard specification == 0x01 else {
                throw EvidenceError(.malformed, "measurements: block \(number) (index \(index)) has MeasurementSpecification 0x\(String(specification, radix: 16)), not DMTF (0x01)")
            }
            guard Int(size) == 3 + Int(valueSize) else {
                throw EvidenceError(.malformed, "measurements: block \(number) (index \(index)) MeasurementSize \(size) is not 3 + \(valueSize)")
            }
            guard index != 0, index != 0xFF else {
                throw EvidenceError(.malformed, "measurements: block \(number) has index 0x\(String(index, radix: 16)), not a block index")
            }
            let raw = type & 0x80 != 0
            guard raw || value.count == measurementHashSize else {
                throw EvidenceError(.malformed, "measurements: digest block \(number) (index \(index)) is \(value.count) bytes, the measurement hash is \(measurementHashSize)")
            }
            blocks.append(.init(index: index, valueType: type & 0x7F, isRawBitStream: raw, value: value))
        }
        guard reader.isAtEnd else {
            throw EvidenceError(.malformed, "measurements: \(reader.remaining) byte(s) of the record follow its \(numberOfBlocks) block(s)")
        }
        return blocks
    }
}
