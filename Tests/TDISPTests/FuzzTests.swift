import Testing
import TDISP
import Wire

/// Every decoder is fed random, truncated and mutated bytes: it must throw or return a value,
/// never trap. Seeds are fixed so a failure reproduces.
@Suite("TDISP decoders under random input")
struct FuzzTests {
    static let seeds: [UInt64] = [1, 2, 3, 0xDEAD_BEEF]

    @Test("random bytes", arguments: seeds)
    func randomBytes(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var decoded = 0
        for _ in 0..<3000 {
            let length = Int.random(in: 0...80, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Bias toward plausible headers so payload decoders are reached, not only the type check.
            if bytes.count > 1, Bool.random(using: &rng) {
                bytes[1] = UInt8.random(in: 0x80...0x8B, using: &rng) & (Bool.random(using: &rng) ? 0xFF : 0x7F)
            }
            if let request = try? TDISPRequest(decoding: bytes) {
                decoded += 1
                #expect((try? TDISPRequest(decoding: request.encoded())) == request)
            }
            if let response = try? TDISPResponse(decoding: bytes) {
                decoded += 1
                #expect((try? TDISPResponse(decoding: response.encoded())) == response)
            }
            if let report = try? DeviceInterfaceReport(decoding: bytes) {
                #expect(report.encoded() == bytes)
            }
            if let message = try? PCISIGVendorDefinedMessage(decoding: bytes) {
                #expect(message.encoded() == bytes)
            }
        }
        #expect(decoded > 0)  // the bias did reach successful decodes
    }

    @Test("truncations and mutations of valid messages", arguments: seeds)
    func mutations(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        for entry in everyMessage {
            let bytes = entry.message.encoded()
            for cut in mustFailCuts(entry.name, bytes.count) {
                let prefix = Array(bytes.prefix(cut))
                #expect(throws: WireError.self) { try decodeLike(entry.message, prefix) }
                if cut < 16 {
                    #expect(throws: WireError.self) { try TDISPRequest(decoding: prefix) }
                    #expect(throws: WireError.self) { try TDISPResponse(decoding: prefix) }
                }
            }
            for _ in 0..<200 {
                var mutated = bytes
                let index = Int.random(in: 0..<mutated.count, using: &rng)
                mutated[index] = UInt8.random(in: 0...255, using: &rng)
                _ = try? TDISPRequest(decoding: mutated)
                _ = try? TDISPResponse(decoding: mutated)
                _ = try? decodeLike(entry.message, mutated)
                let wrapped = PCISIGVendorDefinedMessage.tdisp(request: mutated).encoded()
                var damaged = wrapped
                damaged[Int.random(in: 0..<damaged.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                _ = try? PCISIGVendorDefinedMessage(decoding: damaged)
            }
        }
    }

    @Test("reports with random counts", arguments: seeds)
    func reports(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<2000 {
            var writer = ByteWriter()
            writer.zeros(12)
            let count = UInt32.random(in: 0...4, using: &rng) | (Bool.random(using: &rng) ? 0 : UInt32.random(in: 0...UInt32.max, using: &rng))
            writer.u32(count)
            let extra = Int.random(in: 0...90, using: &rng)
            writer.bytes((0..<extra).map { _ in UInt8.random(in: 0...255, using: &rng) })
            if let report = try? DeviceInterfaceReport(decoding: writer.bytes) {
                #expect(report.encoded() == writer.bytes)
            }
        }
    }
}
