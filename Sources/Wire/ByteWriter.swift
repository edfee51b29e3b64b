/// A little-endian byte writer, the encoding twin of ``ByteReader``.
///
/// Writers never fail: values are truncated to their field width by the caller's choice of method
/// (`u16` takes a `UInt16`, and so on). `u24` keeps the low 24 bits of its argument.
public struct ByteWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Creates an empty writer, reserving `capacity` bytes.
    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Number of bytes written.
    public var count: Int { bytes.count }

    /// Appends one byte.
    public mutating func u8(_ value: UInt8) { bytes.append(value) }

    /// Appends a 16-bit value, little-endian (2 bytes).
    public mutating func u16(_ value: UInt16) { uint(UInt64(value), 2) }

    /// Appends the low 24 bits of `value`, little-endian (3 bytes).
    public mutating func u24(_ value: UInt32) { uint(UInt64(value & 0xFF_FFFF), 3) }

    /// Appends a 32-bit value, little-endian (4 bytes).
    public mutating func u32(_ value: UInt32) { uint(UInt64(value), 4) }

    /// Appends a 64-bit value, little-endian (8 bytes).
    public mutating func u64(_ value: UInt64) { uint(value, 8) }

    /// Appends raw bytes.
    public mutating func bytes<C: Collection>(_ value: C) where C.Element == UInt8 {
        bytes.append(contentsOf: value)
    }

    /// Appends `count` zero bytes (reserved fields).
    public mutating func zeros(_ count: Int) {
        if count > 0 { bytes.append(contentsOf: repeatElement(0, count: count)) }
    }

    /// Overwrites a little-endian 32-bit value at `offset`, which must lie inside what was written
    /// (a length patched after its body is known); out-of-range offsets are ignored.
    public mutating func patchU32(_ value: UInt32, at offset: Int) {
        guard offset >= 0, offset + 4 <= bytes.count else { return }
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
    }

    private mutating func uint(_ value: UInt64, _ width: Int) {
        for index in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))) }
    }
}
