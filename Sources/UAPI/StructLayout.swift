import Wire

/// Which way a struct field's value travels across the ioctl.
public enum FieldDirection: String, Sendable, Codable, Hashable {
    /// Written by user space, read by the kernel (including `size` and reserved fields).
    case `in`
    /// Written by the kernel on success (`out_*` IDs, `tsm_code`); user input is ignored.
    case out
    /// Read by the kernel and written back by it.
    case `inout`
}

/// What a field means, so a generic tool (the `tsmctl script` runner, `tsmctl decode`) can treat
/// it sensibly without knowing the command.
public enum FieldRole: String, Sendable, Codable, Hashable {
    /// The leading `size` (iommufd) or `argsz` (VFIO) word of a size-extensible struct.
    case size
    /// An iommufd object ID (input `*_id`, or output `out_*_id`).
    case objectID
    /// A user-space address (`*_uptr`, `*_ptr`).
    case userPointer
    /// A reserved field the kernel requires to be zero (`__reserved*`).
    case reserved
    /// Any other value (flags, types, lengths, codes).
    case value
}

/// The C type of a field. Only the types the iommufd uAPI uses on this path.
public enum FieldType: String, Sendable, Codable, Hashable {
    /// `__u32`: 4 bytes, 4-aligned, unsigned.
    case u32
    /// `__s32`: 4 bytes, 4-aligned, signed (two's complement).
    case s32
    /// `__aligned_u64`: 8 bytes, 8-aligned, unsigned.
    case alignedU64

    /// Size in bytes.
    public var size: Int { self == .alignedU64 ? 8 : 4 }
    /// Alignment in bytes.
    public var alignment: Int { size }
    /// True for `__s32`.
    public var isSigned: Bool { self == .s32 }
}

/// One field of a uAPI struct: name (kernel spelling), offset and size in bytes, direction.
///
/// Offsets are computed by ``StructLayout/init(name:cName:fields:)`` with the C rules of natural
/// alignment; the tests compare every offset, size and signedness with the C compiler's `offsetof`
/// and `sizeof` on the `CIOMMUFD` header.
public struct FieldLayout: Sendable, Hashable, Codable {
    /// The field's name as the kernel header spells it (`vdevice_id`, `__reserved`).
    public let name: String
    /// Byte offset from the start of the struct.
    public let offset: Int
    /// Size in bytes (4 or 8).
    public let size: Int
    /// The C type.
    public let type: FieldType
    /// Which way the value travels.
    public let direction: FieldDirection
    /// What the field means.
    public let role: FieldRole

    /// True for signed fields (`__s32`): read them with ``decodeSigned(from:)``.
    public var isSigned: Bool { type.isSigned }
    /// `offset + size`: the kernel's `offsetofend`.
    public var end: Int { offset + size }

    /// Reads the field from `bytes` (little-endian), zero-extended.
    ///
    /// Throws ``LayoutError/bufferTooShort(field:needed:available:)`` if `bytes` ends before
    /// ``end``.
    public func decode(from bytes: [UInt8]) throws(LayoutError) -> UInt64 {
        guard end <= bytes.count else {
            throw .bufferTooShort(field: name, needed: end, available: bytes.count)
        }
        var reader = ByteReader(bytes, offset: offset)
        do {
            return size == 8 ? try reader.u64() : UInt64(try reader.u32())
        } catch {
            throw .bufferTooShort(field: name, needed: end, available: bytes.count)
        }
    }

    /// Reads the field from `bytes`, sign-extended for signed fields (an unsigned field's value is
    /// returned as its bit pattern).
    public func decodeSigned(from bytes: [UInt8]) throws(LayoutError) -> Int64 {
        let raw = try decode(from: bytes)
        if size == 4 && isSigned { return Int64(Int32(truncatingIfNeeded: raw)) }
        return Int64(bitPattern: raw)
    }

    /// Writes an unsigned value (or bit pattern) into `bytes` at ``offset``.
    ///
    /// Throws ``LayoutError/valueOutOfRange(field:value:)`` if the value does not fit in ``size``
    /// bytes, ``LayoutError/bufferTooShort(field:needed:available:)`` if `bytes` is too short;
    /// `bytes` is unchanged on error.
    public func encode(_ value: UInt64, into bytes: inout [UInt8]) throws(LayoutError) {
        guard size == 8 || value <= UInt64(UInt32.max) else {
            throw .valueOutOfRange(field: name, value: String(value))
        }
        try store(value, into: &bytes)
    }

    /// Writes a possibly negative value. Signed fields take `Int32.min...Int32.max`; unsigned
    /// fields take `0...max` of their width. Otherwise throws
    /// ``LayoutError/valueOutOfRange(field:value:)``; `bytes` is unchanged on error.
    public func encode(signed value: Int64, into bytes: inout [UInt8]) throws(LayoutError) {
        if isSigned {
            guard value >= Int64(Int32.min), value <= Int64(Int32.max) else {
                throw .valueOutOfRange(field: name, value: String(value))
            }
            try store(UInt64(UInt32(bitPattern: Int32(truncatingIfNeeded: value))), into: &bytes)
        } else {
            guard value >= 0 else { throw .valueOutOfRange(field: name, value: String(value)) }
            try encode(UInt64(value), into: &bytes)
        }
    }

    private func store(_ value: UInt64, into bytes: inout [UInt8]) throws(LayoutError) {
        guard end <= bytes.count else {
            throw .bufferTooShort(field: name, needed: end, available: bytes.count)
        }
        for index in 0..<size {
            bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))
        }
    }
}

/// The data description of one uAPI struct: its kernel name, size, alignment and fields.
///
/// A generic tool fills input fields by name and reads output fields by name for any command:
///
/// ```swift
/// let layout = StructLayout.iommuVDeviceTSMReqRevised
/// var bytes = layout.zeroed()                       // 48 zero bytes
/// try layout.set("size", to: 48, in: &bytes)
/// try layout.set("tvm_arch", to: 2, in: &bytes)
/// let code = try layout.get("tsm_code", from: bytes)
/// ```
///
/// ``size`` and ``alignment`` follow C: alignment is the largest field alignment, size is the end
/// of the last field rounded up to it. Source of the field lists: spec kernel-uapi.md 2.3 and 4.1;
/// the C header `ciommufd.h` (checked in the tests).
public struct StructLayout: Sendable, Hashable, Codable {
    /// The kernel's struct name, e.g. `"iommu_vdevice_tsm_req"` (all three TSM_REQ layouts share it).
    public let name: String
    /// The struct's distinct name in the `CIOMMUFD` header, e.g. `"iommu_vdevice_tsm_req_revised"`.
    public let cName: String
    /// `sizeof`, in bytes.
    public let size: Int
    /// `_Alignof`, in bytes.
    public let alignment: Int
    /// The fields in declaration order.
    public let fields: [FieldLayout]

    /// Lays out `fields` (name, C type, direction, role) in order with natural alignment.
    public init(name: String, cName: String, fields: [(String, FieldType, FieldDirection, FieldRole)]) {
        var offset = 0
        var alignment = 1
        var laidOut: [FieldLayout] = []
        for (fieldName, type, direction, role) in fields {
            offset = StructLayout.roundUp(offset, to: type.alignment)
            laidOut.append(FieldLayout(name: fieldName, offset: offset, size: type.size, type: type,
                                       direction: direction, role: role))
            offset += type.size
            alignment = max(alignment, type.alignment)
        }
        self.name = name
        self.cName = cName
        self.alignment = alignment
        self.size = StructLayout.roundUp(offset, to: alignment)
        self.fields = laidOut
    }

    /// The field called `name`, or nil.
    public func field(named name: String) -> FieldLayout? {
        fields.first { $0.name == name }
    }

    /// The field called `name`; throws ``LayoutError/unknownField(structName:field:valid:)`` naming
    /// the valid fields otherwise.
    public func requireField(_ name: String) throws(LayoutError) -> FieldLayout {
        guard let field = field(named: name) else {
            throw .unknownField(structName: self.name, field: name, valid: fields.map(\.name))
        }
        return field
    }

    /// `offsetofend(struct, field)`; throws ``LayoutError/unknownField(structName:field:valid:)``.
    public func offsetOfEnd(_ name: String) throws(LayoutError) -> Int {
        try requireField(name).end
    }

    /// ``size`` zero bytes.
    public func zeroed() -> [UInt8] { [UInt8](repeating: 0, count: size) }

    /// Reads field `name` from `bytes` (zero-extended). Errors: see ``FieldLayout/decode(from:)``
    /// and ``requireField(_:)``.
    public func get(_ name: String, from bytes: [UInt8]) throws(LayoutError) -> UInt64 {
        try requireField(name).decode(from: bytes)
    }

    /// Writes `value` into field `name` of `bytes`. Errors: see ``FieldLayout/encode(_:into:)``
    /// and ``requireField(_:)``; `bytes` is unchanged on error.
    public func set(_ name: String, to value: UInt64, in bytes: inout [UInt8]) throws(LayoutError) {
        try requireField(name).encode(value, into: &bytes)
    }

    /// Writes a possibly negative `value` into field `name`. Errors: see
    /// ``FieldLayout/encode(signed:into:)``.
    public func set(_ name: String, signed value: Int64, in bytes: inout [UInt8]) throws(LayoutError) {
        try requireField(name).encode(signed: value, into: &bytes)
    }

    /// Every field with its value in `bytes`, in declaration order (zero-extended; use
    /// ``FieldLayout/decodeSigned(from:)`` for signed fields). Errors:
    /// ``LayoutError/bufferTooShort(field:needed:available:)`` for the first field past the end.
    public func fieldValues(from bytes: [UInt8]) throws(LayoutError) -> [(field: FieldLayout, value: UInt64)] {
        var values: [(field: FieldLayout, value: UInt64)] = []
        for field in fields { values.append((field: field, value: try field.decode(from: bytes))) }
        return values
    }

    static func roundUp(_ value: Int, to alignment: Int) -> Int {
        (value + alignment - 1) / alignment * alignment
    }
}

/// Why a generic field access failed.
public enum LayoutError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `field` is not a field of `structName`; `valid` lists the fields in order.
    case unknownField(structName: String, field: String, valid: [String])
    /// `value` (decimal text) does not fit in `field`.
    case valueOutOfRange(field: String, value: String)
    /// The buffer has `available` bytes but `field` ends at `needed`.
    case bufferTooShort(field: String, needed: Int, available: Int)

    /// A one-line message naming the struct, field and, for unknown fields, the valid ones.
    public var description: String {
        switch self {
        case let .unknownField(structName, field, valid):
            return "struct \(structName) has no field '\(field)'; valid fields: \(valid.joined(separator: ", "))"
        case let .valueOutOfRange(field, value):
            return "value \(value) does not fit in field '\(field)'"
        case let .bufferTooShort(field, needed, available):
            return "field '\(field)' needs \(needed) bytes, buffer has \(available)"
        }
    }
}
