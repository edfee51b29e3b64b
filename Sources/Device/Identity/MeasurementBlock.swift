import Wire

/// The DMTFSpecMeasurementValueType of a measurement block, bits 6:0 (spec §4.7; DSP0274
/// "DMTF measurement specification format"). Bit 7 (raw bit stream) is kept apart in
/// ``MeasurementBlock/isRawBitStream``.
public struct MeasurementValueType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 7-bit type value (0…0x7F).
    public let rawValue: UInt8

    /// Keeps the low 7 bits of `rawValue`.
    public init(rawValue: UInt8) { self.rawValue = rawValue & 0x7F }

    /// 0: immutable ROM.
    public static let immutableROM = MeasurementValueType(rawValue: 0)
    /// 1: mutable firmware.
    public static let mutableFirmware = MeasurementValueType(rawValue: 1)
    /// 2: hardware configuration (e.g. fuses, straps, configuration space).
    public static let hardwareConfiguration = MeasurementValueType(rawValue: 2)
    /// 3: firmware configuration.
    public static let firmwareConfiguration = MeasurementValueType(rawValue: 3)
    /// 4: measurement manifest.
    public static let measurementManifest = MeasurementValueType(rawValue: 4)
    /// 5: device mode (raw: 16 bytes, four u32 — see ``MeasurementDeviceMode``).
    public static let deviceMode = MeasurementValueType(rawValue: 5)
    /// 6: version (raw: a version string).
    public static let version = MeasurementValueType(rawValue: 6)
    /// 7: secure version number (raw: u64, little-endian).
    public static let secureVersionNumber = MeasurementValueType(rawValue: 7)
    /// 8: hash-extend measurement.
    public static let hashExtendMeasurement = MeasurementValueType(rawValue: 8)
    /// 9: informational.
    public static let informational = MeasurementValueType(rawValue: 9)
    /// 10: structured measurement manifest.
    public static let structuredManifest = MeasurementValueType(rawValue: 10)

    /// The type's name as DSP0274 gives it.
    public var description: String {
        switch rawValue {
        case 0: return "immutable ROM"
        case 1: return "mutable firmware"
        case 2: return "hardware configuration"
        case 3: return "firmware configuration"
        case 4: return "measurement manifest"
        case 5: return "device mode"
        case 6: return "version"
        case 7: return "secure version number"
        case 8: return "hash-extend measurement"
        case 9: return "informational"
        case 10: return "structured measurement manifest"
        default: return "type 0x\(String(rawValue, radix: 16))"
        }
    }
}

/// One SPDM measurement block in the DMTF measurement specification format (spec §4.7).
///
/// | Offset | Size | Field |
/// |---|---|---|
/// | 0 | 1 | Index (1…0xFE; 0xFD manifest, 0xFE device mode are reserved for those) |
/// | 1 | 1 | MeasurementSpecification = 0x01 (bit 0, DMTF) |
/// | 2 | 2 | MeasurementSize (u16) = 3 + value size |
/// | 4 | 1 | DMTFSpecMeasurementValueType: bits 6:0 type, bit 7 raw bit stream (clear = digest) |
/// | 5 | 2 | DMTFSpecMeasurementValueSize (u16) |
/// | 7 | n | DMTFSpecMeasurementValue |
///
/// A digest block's value is the measurement-hash-algorithm digest (48 bytes for SHA-384, the
/// EMU-SPDM-2 suite); a raw block's value is the data itself.
public struct MeasurementBlock: Hashable, Sendable {
    /// The MeasurementSpecification value of the DMTF format: 0x01.
    public static let dmtfSpecification: UInt8 = 0x01
    /// The size of the block's two headers: 4 (common) + 3 (DMTF).
    public static let headerSize = 7
    /// The largest value that fits: MeasurementSize (u16) must hold 3 + value size.
    public static let maximumValueSize = 0xFFFF - 3

    /// The measurement index (1…0xFE).
    public let index: UInt8
    /// The value type (bits 6:0 of byte 4).
    public let valueType: MeasurementValueType
    /// True for a raw bit stream (bit 7 of byte 4 set), false for a digest.
    public let isRawBitStream: Bool
    /// The DMTFSpecMeasurementValue.
    public let value: [UInt8]

    /// Creates a block. Throws ``IdentityError/Code/invalidParameter`` when `index` is 0 or 0xFF
    /// (not measurement indices: 0 asks for the count, 0xFF for all) or `value` is longer than
    /// ``maximumValueSize``.
    public init(index: UInt8, valueType: MeasurementValueType, isRawBitStream: Bool, value: [UInt8]) throws(IdentityError) {
        guard index != 0, index != 0xFF else {
            throw IdentityError(.invalidParameter, "measurement index 0x\(String(index, radix: 16)) is not a block index (valid: 0x01...0xfe)")
        }
        guard value.count <= Self.maximumValueSize else {
            throw IdentityError(.invalidParameter, "measurement value of \(value.count) bytes exceeds \(Self.maximumValueSize)")
        }
        self.index = index
        self.valueType = valueType
        self.isRawBitStream = isRawBitStream
        self.value = value
    }

    /// Byte 4 as sent: the type with bit 7 set for a raw bit stream.
    public var valueTypeByte: UInt8 { valueType.rawValue | (isRawBitStream ? 0x80 : 0) }

    /// The encoded block (layout in the type's table): 7 + `value.count` bytes.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.headerSize + value.count)
        write(to: &writer)
        return writer.bytes
    }

    /// Appends the encoded block to `writer`.
    public func write(to writer: inout ByteWriter) {
        writer.u8(index)
        writer.u8(Self.dmtfSpecification)
        writer.u16(UInt16(truncatingIfNeeded: 3 + value.count))
        writer.u8(valueTypeByte)
        writer.u16(UInt16(truncatingIfNeeded: value.count))
        writer.bytes(value)
    }

    /// Reads one block at the reader's position. Throws ``IdentityError/Code/malformed`` when the
    /// bytes are truncated, MeasurementSpecification is not 0x01, MeasurementSize ≠ 3 +
    /// ValueSize, or the index is 0 or 0xFF.
    public static func read(from reader: inout ByteReader) throws(IdentityError) -> MeasurementBlock {
        let start = reader.offset
        func malformed(_ what: String) -> IdentityError {
            IdentityError(.malformed, "measurement block at offset \(start): \(what)")
        }
        let index: UInt8, specification: UInt8, measurementSize: UInt16, typeByte: UInt8, valueSize: UInt16
        let value: [UInt8]
        do {
            index = try reader.u8()
            specification = try reader.u8()
            measurementSize = try reader.u16()
            typeByte = try reader.u8()
            valueSize = try reader.u16()
            value = try reader.bytes(Int(valueSize))
        } catch {
            throw malformed("\(error)")
        }
        guard specification == dmtfSpecification else {
            throw malformed("MeasurementSpecification 0x\(String(specification, radix: 16)) is not DMTF (0x01)")
        }
        guard Int(measurementSize) == 3 + Int(valueSize) else {
            throw malformed("MeasurementSize \(measurementSize) is not 3 + DMTFSpecMeasurementValueSize \(valueSize)")
        }
        do {
            return try MeasurementBlock(
                index: index, valueType: MeasurementValueType(rawValue: typeByte),
                isRawBitStream: typeByte & 0x80 != 0, value: value)
        } catch {
            throw malformed(error.reason)
        }
    }
}

/// The 16-byte value of a device-mode measurement (type 5, raw), four u32 little-endian
/// (DSP0274 1.2 "Device mode field of a measurement block"; libspdm `spdm_measurements_device_mode_t`).
///
/// | Offset | Size | Field |
/// |---|---|---|
/// | 0 | 4 | OperationalModeCapabilities |
/// | 4 | 4 | OperationalModeState |
/// | 8 | 4 | DeviceModeCapabilities |
/// | 12 | 4 | DeviceModeState |
///
/// Operational mode bits: 0 manufacturing, 1 validation, 2 normal, 3 recovery, 4 RMA,
/// 5 decommissioned. Device mode bits: 0 non-invasive debug active, 1 invasive debug active,
/// 2 non-invasive debug has been active, 3 invasive debug has been active, 4 invasive debug has
/// been active since manufacturing.
public struct MeasurementDeviceMode: Hashable, Sendable {
    /// Operational modes the device supports (offset 0).
    public var operationalModeCapabilities: UInt32
    /// The operational mode the device is in (offset 4).
    public var operationalModeState: UInt32
    /// Debug modes the device supports (offset 8).
    public var deviceModeCapabilities: UInt32
    /// Debug modes active or once active (offset 12).
    public var deviceModeState: UInt32

    /// Operational mode bit 2: normal operational mode.
    public static let normalMode: UInt32 = 1 << 2

    /// Creates a device mode from its four fields.
    public init(operationalModeCapabilities: UInt32, operationalModeState: UInt32,
                deviceModeCapabilities: UInt32, deviceModeState: UInt32) {
        self.operationalModeCapabilities = operationalModeCapabilities
        self.operationalModeState = operationalModeState
        self.deviceModeCapabilities = deviceModeCapabilities
        self.deviceModeState = deviceModeState
    }

    /// The 16 encoded bytes.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 16)
        writer.u32(operationalModeCapabilities)
        writer.u32(operationalModeState)
        writer.u32(deviceModeCapabilities)
        writer.u32(deviceModeState)
        return writer.bytes
    }
}
