import Testing
@testable import PCI

/// Random and truncated input, from fixed seeds: every decoder returns a model or a typed
/// error, never traps.
@Suite("Fuzz: random and truncated input never traps")
struct FuzzTests {
    /// Decodes `bytes` and, when that works, builds a topology with a bounded VF count.
    @discardableResult
    func exercise(_ bytes: [UInt8], seed: UInt64) -> Bool {
        do {
            let config = try ConfigSpace(bytes: bytes)
            let function = PCIFunction(bdf: BDF(routingID: UInt16(truncatingIfNeeded: seed)), config: config)
            _ = function.canBeDSM
            _ = (config.express?.maxPayloadSize, config.msix?.pbaByteCount, config.ide?.selectiveStreams.count)
            let topology = try? PCITopology(functions: [function], vfs: .exactly(min(Int(config.sriov?.totalVFs ?? 0), 64)))
            if let topology {
                _ = topology.dsmWalk(from: function.bdf)
                _ = topology.dsmWalkReverse(from: function.bdf)
                _ = topology.findDSM(for: function.bdf)
            }
            return true
        } catch {
            return false
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 0xdead_beef])
    func randomImages(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        for round in 0..<100 {
            let size = round.isMultiple(of: 2) ? 256 : 4096
            let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            exercise(bytes, seed: seed)
        }
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func mutatedRealImages(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        let originals = [Fixtures.bytes(Fixtures.teeIO), Fixtures.bytes(Fixtures.doe)]
        var decoded = 0
        for round in 0..<300 {
            var bytes = originals[round % 2]
            for _ in 0..<Int.random(in: 1...8, using: &generator) {
                // Mostly in the places that steer the walks: pointers, headers, counts.
                let hot = [0x06, 0x0e, 0x34, 0x41, 0x71, 0x102, 0x103, 0x15c, 0x15e, 0x834, 0x836, 0xe02, 0xe03]
                let index = Bool.random(using: &generator)
                    ? hot[Int.random(in: 0..<hot.count, using: &generator)]
                    : Int.random(in: 0..<bytes.count, using: &generator)
                bytes[index] = UInt8.random(in: 0...255, using: &generator)
            }
            if exercise(bytes, seed: seed) { decoded += 1 }
        }
        #expect(decoded > 0)
    }

    @Test func truncatedImages() {
        let bytes = Fixtures.bytes(Fixtures.teeIO)
        for count in stride(from: 0, through: bytes.count, by: 7) {
            let accepted = exercise(Array(bytes.prefix(count)), seed: UInt64(count))
            if count != 256, count != 4096 { #expect(!accepted) }
        }
        #expect(exercise(Array(bytes.prefix(256)), seed: 0))
    }

    @Test(arguments: [UInt64(21), 22, 23])
    func mutatedDumpText(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        let originals = [Array(Fixtures.teeIO), Array(Fixtures.doe)]
        let alphabet = Array("0123456789abcdefxyz:. \t\n[]=-+KMG")
        for round in 0..<60 {
            var text = originals[round % 2]
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                let index = Int.random(in: 0..<text.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: text[index] = alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]
                case 1: text.remove(at: index)
                default: text.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)], at: index)
                }
            }
            parse(String(text))
        }
    }

    @Test func truncatedDumpText() {
        let text = Array(Fixtures.teeIO)
        for count in stride(from: 0, through: text.count, by: 97) {
            parse(String(text.prefix(count)))
        }
    }

    @Test(arguments: [UInt64(31), 32])
    func randomText(seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        let alphabet = Array("0123456789abcdef: .\n\t[size=]KRegion ")
        for _ in 0..<200 {
            let count = Int.random(in: 0...400, using: &generator)
            parse(String((0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }))
        }
    }

    /// Parses `text` and builds its topology; either may fail with its typed error.
    func parse(_ text: String) {
        do {
            let dump = try LspciDump.parse(text)
            _ = try? PCITopology(dump: dump, vfs: .exactly(0))
        } catch {
            _ = error.description
        }
    }
}
