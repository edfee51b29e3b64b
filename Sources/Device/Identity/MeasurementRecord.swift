import Crypto
import Wire

/// The MeasurementRecord of an SPDM MEASUREMENTS response: measurement blocks concatenated in
/// ascending index order, with NumberOfBlocks and MeasurementRecordLength (u24) carried beside it
/// in the response (spec §4.7).
public struct MeasurementRecord: Hashable, Sendable {
    /// The largest record MEASUREMENTS can carry: MeasurementRecordLength is a u24.
    public static let maximumLength = 0xFF_FFFF

    /// The blocks, in ascending index order, indices unique.
    public let blocks: [MeasurementBlock]

    /// Creates a record. Throws ``IdentityError/Code/invalidParameter`` when indices are not
    /// strictly ascending (which also excludes duplicates), there are more than 255 blocks
    /// (NumberOfBlocks is a u8) or the encoding would exceed ``maximumLength``.
    public init(blocks: [MeasurementBlock]) throws(IdentityError) {
        guard blocks.count <= 255 else {
            throw IdentityError(.invalidParameter, "\(blocks.count) measurement blocks exceed NumberOfBlocks (u8) 255")
        }
        for (previous, next) in zip(blocks, blocks.dropFirst()) where previous.index >= next.index {
            throw IdentityError(.invalidParameter, "measurement index 0x\(String(next.index, radix: 16)) follows 0x\(String(previous.index, radix: 16)): indices must ascend without repeats")
        }
        let length = blocks.reduce(0) { $0 + MeasurementBlock.headerSize + $1.value.count }
        guard length <= Self.maximumLength else {
            throw IdentityError(.invalidParameter, "measurement record of \(length) bytes exceeds MeasurementRecordLength (u24)")
        }
        self.blocks = blocks
    }

    /// NumberOfBlocks as MEASUREMENTS sends it.
    public var numberOfBlocks: UInt8 { UInt8(truncatingIfNeeded: blocks.count) }

    /// The encoded record: every block's encoding, in order.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        for block in blocks { block.write(to: &writer) }
        return writer.bytes
    }

    /// The block with `index`, if any.
    public func block(index: UInt8) -> MeasurementBlock? { blocks.first { $0.index == index } }

    /// Decodes a record of `numberOfBlocks` blocks that must fill `bytes` exactly. Throws
    /// ``IdentityError/Code/malformed`` for a truncated block, bytes left over, or indices out of
    /// order.
    public init(decoding bytes: [UInt8], numberOfBlocks: Int) throws(IdentityError) {
        var reader = ByteReader(bytes)
        var blocks: [MeasurementBlock] = []
        for _ in 0..<max(0, numberOfBlocks) {
            blocks.append(try MeasurementBlock.read(from: &reader))
        }
        guard reader.isAtEnd else {
            throw IdentityError(.malformed, "measurement record: \(reader.remaining) byte(s) after \(numberOfBlocks) block(s)")
        }
        do {
            try self.init(blocks: blocks)
        } catch {
            throw IdentityError(.malformed, "measurement record: \(error.reason)")
        }
    }
}

extension MeasurementRecord {
    /// The firmware version string of the standard record (block 4).
    public static let standardFirmwareVersion = "TSMKit-EMU 1.0.0"
    /// The secure version number of the standard record (block 5).
    public static let standardSecureVersionNumber: UInt64 = 1
    /// The device mode of the standard record (block 0xFE): operational modes normal, recovery
    /// and RMA supported (0x1C), normal active (0x04); the four debug bits supported (0x0F),
    /// none active or ever active (0). A production device, not in debug.
    public static let standardDeviceMode = MeasurementDeviceMode(
        operationalModeCapabilities: 0x1C, operationalModeState: MeasurementDeviceMode.normalMode,
        deviceModeCapabilities: 0x0F, deviceModeState: 0)

    /// The measurement set every emulated device reports (EMU-ID-3, docs/identity.md), six blocks,
    /// 226 bytes with the default version string:
    ///
    /// | Index | Type byte | Form | Value |
    /// |---|---|---|---|
    /// | 1 | 0x00 immutable ROM | SHA-384 digest | HKDF(seed, "measurement immutable ROM"), 48 bytes: stands for the ROM image's digest |
    /// | 2 | 0x01 mutable firmware | SHA-384 digest | SHA-384(HKDF(seed, "measurement mutable firmware"), 48 bytes ‖ `firmwareVersion`) |
    /// | 3 | 0x02 hardware configuration | SHA-384 digest | SHA-384(`hardwareConfiguration`), e.g. the function's configuration space |
    /// | 4 | 0x86 version, raw | ASCII | `firmwareVersion` |
    /// | 5 | 0x87 secure version number, raw | u64 LE | `secureVersionNumber` |
    /// | 0xFE | 0x85 device mode, raw | 16 bytes | ``standardDeviceMode`` |
    ///
    /// Throws ``IdentityError/Code/invalidParameter`` only for a `firmwareVersion` longer than
    /// ``MeasurementBlock/maximumValueSize``.
    public static func standard(
        seed: [UInt8], hardwareConfiguration: [UInt8],
        firmwareVersion: String = standardFirmwareVersion,
        secureVersionNumber: UInt64 = standardSecureVersionNumber
    ) throws(IdentityError) -> MeasurementRecord {
        let version = Array(firmwareVersion.utf8)
        let rom = SeedDerivation.bytes(seed: seed, label: "measurement immutable ROM", count: 48)
        let firmwareImage = SeedDerivation.bytes(seed: seed, label: "measurement mutable firmware", count: 48) + version
        var svn = ByteWriter(capacity: 8)
        svn.u64(secureVersionNumber)
        return try MeasurementRecord(blocks: [
            MeasurementBlock(index: 1, valueType: .immutableROM, isRawBitStream: false, value: rom),
            MeasurementBlock(index: 2, valueType: .mutableFirmware, isRawBitStream: false,
                             value: Array(SHA384.hash(data: firmwareImage))),
            MeasurementBlock(index: 3, valueType: .hardwareConfiguration, isRawBitStream: false,
                             value: Array(SHA384.hash(data: hardwareConfiguration))),
            MeasurementBlock(index: 4, valueType: .version, isRawBitStream: true, value: version),
            MeasurementBlock(index: 5, valueType: .secureVersionNumber, isRawBitStream: true, value: svn.bytes),
            MeasurementBlock(index: 0xFE, valueType: .deviceMode, isRawBitStream: true, value: standardDeviceMode.encoded()),
        ])
    }
}
