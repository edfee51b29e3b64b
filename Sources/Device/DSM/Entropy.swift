/// Where a ``DSM`` gets its START_INTERFACE_NONCE bytes (docs/spec/tdisp-spdm.md §2.6).
public enum DSMEntropy: Hashable, Sendable {
    /// The system's cryptographically secure generator.
    case system
    /// A deterministic SplitMix64 stream from `seed`, for tests and reproducible traces.
    case seeded(UInt64)
    /// An RNG that always fails: LOCK answers INSUFFICIENT_ENTROPY.
    case unavailable
}

/// The generator behind ``DSMEntropy``; lives inside the DSM's lock.
struct EntropyState {
    var source: DSMEntropy
    var counter: UInt64

    init(_ source: DSMEntropy) {
        self.source = source
        if case let .seeded(seed) = source { counter = seed } else { counter = 0 }
    }

    /// 32 fresh bytes, or nil when the source fails.
    mutating func nonceBytes() -> [UInt8]? {
        switch source {
        case .unavailable:
            return nil
        case .system:
            var generator = SystemRandomNumberGenerator()
            return (0..<4).flatMap { _ in littleEndian(generator.next()) }
        case .seeded:
            return (0..<4).flatMap { _ in littleEndian(splitMix()) }
        }
    }

    private mutating func splitMix() -> UInt64 {
        counter &+= 0x9E37_79B9_7F4A_7C15
        var z = counter
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private func littleEndian(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}
