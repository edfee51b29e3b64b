import Crypto
import Wire

/// A signed GET_MEASUREMENTS / MEASUREMENTS exchange at SPDM 1.2 (spec §4.7, §4.10): the request
/// as the requester sent it, the response the device returns, and what was signed.
///
/// GET_MEASUREMENTS (37 bytes):
///
/// | Offset | Size | Field |
/// |---|---|---|
/// | 0 | 1 | SPDMVersion = 0x12 |
/// | 1 | 1 | RequestResponseCode = 0xE0 |
/// | 2 | 1 | Param1 = 0x01 (SignatureRequested) |
/// | 3 | 1 | Param2 = 0xFF (all measurements) |
/// | 4 | 32 | Nonce (requester's) |
/// | 36 | 1 | SlotIDParam = 0 |
///
/// MEASUREMENTS (8 + L + 32 + 2 + 96 bytes, L = MeasurementRecordLength):
///
/// | Offset | Size | Field |
/// |---|---|---|
/// | 0 | 1 | SPDMVersion = 0x12 |
/// | 1 | 1 | RequestResponseCode = 0x60 |
/// | 2 | 1 | Param1 = 0 (reserved when Param2 of the request ≠ 0) |
/// | 3 | 1 | Param2 = 0: SlotID 0 (bits 3:0), content change not detected (bits 5:4 = 00) |
/// | 4 | 1 | NumberOfBlocks |
/// | 5 | 3 | MeasurementRecordLength (u24) |
/// | 8 | L | MeasurementRecord (``MeasurementRecord``) |
/// | 8+L | 32 | Nonce (responder's) |
/// | 40+L | 2 | OpaqueDataLength = 0 |
/// | 42+L | 96 | Signature: ECDSA P-384 r ‖ s, each 48 bytes big-endian |
///
/// What is signed (EMU-ID-4): the transcript L1 = `vcaTranscript` ‖ GET_MEASUREMENTS ‖
/// MEASUREMENTS without its Signature; the message M = ``signingContext`` (100 bytes) ‖
/// SHA-384(L1); the signature is ECDSA P-384 with SHA-384 over M (swift-crypto hashes M once
/// more, as libspdm's `libspdm_asym_sign` does for ECDSA). SPDM 1.2 puts the VCA messages
/// (GET_VERSION … ALGORITHMS) first in L1; TSMKit has no SPDM layer yet, so callers pass no
/// VCA and L1 starts at GET_MEASUREMENTS — the one simplification.
public struct SignedMeasurements: Hashable, Sendable {
    /// SPDMVersion of both messages: 0x12 (SPDM 1.2, the first version with signing contexts).
    public static let spdmVersion: UInt8 = 0x12
    /// GET_MEASUREMENTS request code.
    public static let getMeasurementsCode: UInt8 = 0xE0
    /// MEASUREMENTS response code.
    public static let measurementsCode: UInt8 = 0x60
    /// Size of an ECDSA P-384 signature in SPDM (r ‖ s): 96 bytes.
    public static let signatureSize = 96
    /// Size of each nonce: 32 bytes.
    public static let nonceSize = 32

    /// The GET_MEASUREMENTS request (37 bytes).
    public let request: [UInt8]
    /// The whole MEASUREMENTS response, Signature last.
    public let response: [UInt8]
    /// The VCA messages that open L1 (empty in TSMKit today, EMU-ID-4).
    public let vcaTranscript: [UInt8]

    /// The measurements as one evidence object, libspdm's "standard all-measurements report"
    /// (libspdm doc/standard_measurement_report.md): `vcaTranscript` ‖ GET_MEASUREMENTS ‖
    /// MEASUREMENTS (signature included). This is what a TSM hands the guest as "the
    /// measurements" and digests for it; the guest splits it with the VCA length it knows.
    public var report: [UInt8] { vcaTranscript + request + response }

    /// The response without its Signature.
    public var responseWithoutSignature: [UInt8] { Array(response.dropLast(Self.signatureSize)) }
    /// The Signature field (96 bytes).
    public var signature: [UInt8] { Array(response.suffix(Self.signatureSize)) }
    /// L1 = VCA ‖ GET_MEASUREMENTS ‖ MEASUREMENTS without Signature.
    public var transcript: [UInt8] { vcaTranscript + request + responseWithoutSignature }
    /// M = signing context ‖ SHA-384(L1): the bytes ECDSA signs.
    public var signedMessage: [UInt8] { Self.signingContext + Array(SHA384.hash(data: transcript)) }

    /// The SPDM 1.2 signing context of MEASUREMENTS (spec §4.10, 100 bytes):
    /// `"dmtf-spdm-v1.2.*"` four times (64 bytes), 6 zero bytes, then the 30 ASCII bytes
    /// `"responder-measurements signing"`.
    public static let signingContext: [UInt8] = {
        let prefix = Array(String(repeating: "dmtf-spdm-v1.2.*", count: 4).utf8)
        let context = Array("responder-measurements signing".utf8)
        return prefix + [UInt8](repeating: 0, count: 36 - context.count) + context
    }()

    /// The GET_MEASUREMENTS request of the layout table for `nonce`.
    public static func request(nonce: [UInt8]) -> [UInt8] {
        var writer = ByteWriter(capacity: 37)
        writer.bytes([spdmVersion, getMeasurementsCode, 0x01, 0xFF])
        writer.bytes(nonce)
        writer.u8(0)
        return writer.bytes
    }

    init(request: [UInt8], response: [UInt8], vcaTranscript: [UInt8]) {
        self.request = request
        self.response = response
        self.vcaTranscript = vcaTranscript
    }
}

extension DeviceIdentity {
    /// Answers GET_MEASUREMENTS (all blocks, signature requested, slot 0) with `requesterNonce`:
    /// builds MEASUREMENTS with ``measurements`` and `responderNonce` and signs it with
    /// ``privateKey`` as ``SignedMeasurements`` describes.
    ///
    /// `responderNonce` defaults to the first 32 bytes of SHA-384(`"TSMKit responder nonce"` ‖
    /// `requesterNonce` ‖ the leaf certificate's DER), so the response bytes before the
    /// Signature are the same in every run for the same inputs; the Signature differs (EMU-ID-5).
    ///
    /// Throws ``IdentityError/Code/invalidParameter`` when a nonce is not 32 bytes, and
    /// ``IdentityError/Code/signingFailed`` if swift-crypto cannot sign.
    public func signMeasurements(
        requesterNonce: [UInt8], responderNonce: [UInt8]? = nil, vcaTranscript: [UInt8] = []
    ) throws(IdentityError) -> SignedMeasurements {
        guard requesterNonce.count == SignedMeasurements.nonceSize else {
            throw IdentityError(.invalidParameter, "requester nonce is \(requesterNonce.count) bytes, not 32")
        }
        let responderNonce = responderNonce
            ?? Array(SHA384.hash(data: Array("TSMKit responder nonce".utf8) + requesterNonce + chain.derCertificates[chain.derCertificates.count - 1]).prefix(32))
        guard responderNonce.count == SignedMeasurements.nonceSize else {
            throw IdentityError(.invalidParameter, "responder nonce is \(responderNonce.count) bytes, not 32")
        }
        let record = measurements.encoded()
        var writer = ByteWriter(capacity: 42 + record.count + SignedMeasurements.signatureSize)
        writer.bytes([SignedMeasurements.spdmVersion, SignedMeasurements.measurementsCode, 0x00, 0x00])
        writer.u8(measurements.numberOfBlocks)
        writer.u24(UInt32(truncatingIfNeeded: record.count))
        writer.bytes(record)
        writer.bytes(responderNonce)
        writer.u16(0)
        let request = SignedMeasurements.request(nonce: requesterNonce)
        let transcript = vcaTranscript + request + writer.bytes
        let message = SignedMeasurements.signingContext + Array(SHA384.hash(data: transcript))
        let signature: P384.Signing.ECDSASignature
        do {
            signature = try privateKey.signature(for: message)
        } catch {
            throw IdentityError(.signingFailed, "signing MEASUREMENTS: \(error)")
        }
        writer.bytes(signature.rawRepresentation)
        return SignedMeasurements(request: request, response: writer.bytes, vcaTranscript: vcaTranscript)
    }
}
