/// A bounds-checked little-endian reader over a byte buffer.
///
/// Every codec in TSMKit (uAPI structs, TDISP, SPDM, architecture payloads, PCI configuration
/// space) decodes through this type, so that no input — empty, truncated or oversized — can trap.
/// All multi-byte integers on the wire of this project are little-endian: the iommufd uAPI on the
/// architectures Linux supports for it (x86-64, arm64), PCI configuration space (PCIe Base 6.x
/// §7.2), TDISP (PCIe Base 6.x §11.3) and SPDM (DSP0274 §"Endianness").
///
/// Errors: every read that would pass the end throws ``WireError/truncated(offset:needed:available:)``
/// and leaves ``offset`` unchanged.
public struct ByteReader: Sendable {
    /// The bytes being read.
    public let bytes: [UInt8]
    /// The index of the next byte to read, from 0 to `bytes.count`.
    public private(set) var offset: Int

    /// Creates a reader positioned at `offset` (default 0) of `bytes`.
    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = max(0, min(offset, bytes.count))
    }

    /// Number of bytes not read yet.
    public var remaining: Int { bytes.count - offset }

    /// True when every byte has been read.
    public var isAtEnd: Bool { offset >= bytes.count }

    /// Reads one byte. Throws ``WireError/truncated(offset:needed:available:)`` at the end.
    public mutating func u8() throws(WireError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Reads a little-endian 16-bit unsigned integer (2 bytes).
    public mutating func u16() throws(WireError) -> UInt16 {
        UInt16(truncatingIfNeeded: try uint(2))
    }

    /// Reads a little-endian 24-bit unsigned integer (3 bytes), as SPDM and TDISP use for lengths.
    public mutating func u24() throws(WireError) -> UInt32 {
        UInt32(truncatingIfNeeded: try uint(3))
    }

    /// Reads a little-endian 32-bit unsigned integer (4 bytes).
    public mutating func u32() throws(WireError) -> UInt32 {
        UInt32(truncatingIfNeeded: try uint(4))
    }

    /// Reads a little-endian 64-bit unsigned integer (8 bytes).
    public mutating func u64() throws(WireError) -> UInt64 {
        try uint(8)
    }

    /// Reads `count` bytes. `count` must be ≥ 0; a negative count throws
    /// ``WireError/invalidLength(_:)``.
    public mutating func bytes(_ count: Int) throws(WireError) -> [UInt8] {
        guard count >= 0 else { throw .invalidLength(count) }
        try need(count)
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// Skips `count` bytes (reserved fields).
    public mutating func skip(_ count: Int) throws(WireError) {
        guard count >= 0 else { throw .invalidLength(count) }
        try need(count)
        offset += count
    }

    /// Reads every byte not read yet.
    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[offset...])
    }

    /// Throws ``WireError/trailingBytes(offset:count:)`` unless every byte has been read; codecs
    /// with an exact size call it last.
    public func expectEnd() throws(WireError) {
        guard isAtEnd else { throw .trailingBytes(offset: offset, count: remaining) }
    }

    private func need(_ count: Int) throws(WireError) {
        guard count <= remaining else {
            throw .truncated(offset: offset, needed: count, available: remaining)
        }
    }

    private mutating func uint(_ width: Int) throws(WireError) -> UInt64 {
        try need(width)
        var value: UInt64 = 0
        for index in 0..<width {
            value |= UInt64(bytes[offset + index]) << (8 * UInt64(index))
        }
        offset += width
        return value
    }
}

/// Why a byte string could not be decoded.
///
/// Equality compares the case and its values, so tests can assert the exact failure.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A read of `needed` bytes at `offset` found only `available`.
    case truncated(offset: Int, needed: Int, available: Int)
    /// `count` bytes at `offset` follow the end of a fixed-size message.
    case trailingBytes(offset: Int, count: Int)
    /// A length that cannot be a length (negative, or larger than its field).
    case invalidLength(Int)
    /// A field holds a value the format does not allow; `field` names it as the standard does.
    case invalidValue(field: String, value: UInt64)
    /// Text that should be hexadecimal is not; `position` is the character index.
    case invalidHex(position: Int)

    /// A one-line, human-readable statement of the failure with its offsets and counts (bytes).
    public var description: String {
        switch self {
        case let .truncated(offset, needed, available):
            return "truncated: need \(needed) byte(s) at offset \(offset), \(available) left"
        case let .trailingBytes(offset, count):
            return "\(count) unexpected trailing byte(s) at offset \(offset)"
        case let .invalidLength(length):
            return "invalid length \(length)"
        case let .invalidValue(field, value):
            return "invalid \(field) 0x\(String(value, radix: 16))"
        case let .invalidHex(position):
            return "not hexadecimal at character \(position)"
        }
    }
}
