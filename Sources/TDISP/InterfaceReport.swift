import Wire

/// INTERFACE_INFO, the first u16 of the DEVICE_INTERFACE_REPORT.
///
/// | Bit | Meaning |
/// |---|---|
/// | 0 | firmware updates NOT permitted while CONFIG_LOCKED or RUN |
/// | 1 | the TDI generates DMA requests without PASID |
/// | 2 | the TDI generates DMA requests with PASID |
/// | 3 | ATS supported and enabled |
/// | 4 | PRS supported and enabled |
/// | 15:5 | reserved |
///
/// Source: docs/spec/tdisp-spdm.md §2.9.
public struct InterfaceInfo: OptionSet, Hashable, Sendable {
    /// The raw value as on the wire.
    public var rawValue: UInt16
    /// Wraps a raw value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Bit 0: NO_FW_UPDATE (firmware updates not permitted while locked / INTERFACE_INFO: not permitted).
    public static let noFirmwareUpdate = Self(rawValue: 1 << 0)
    /// Bit 1: the TDI generates DMA without PASID.
    public static let dmaWithoutPASID = Self(rawValue: 1 << 1)
    /// Bit 2: the TDI generates DMA with PASID.
    public static let dmaWithPASID = Self(rawValue: 1 << 2)
    /// Bit 3: ATS supported and enabled.
    public static let atsEnabled = Self(rawValue: 1 << 3)
    /// Bit 4: PRS supported and enabled.
    public static let prsEnabled = Self(rawValue: 1 << 4)
}

/// RANGE_ATTRIBUTES of an MMIO_RANGE (u16).
///
/// | Bit | Meaning |
/// |---|---|
/// | 0 | the range maps the MSI-X table (only when locked) |
/// | 1 | the range maps the MSI-X PBA (only when locked) |
/// | 2 | IS_NON_TEE_MEM |
/// | 3 | IS_MEM_ATTR_UPDATABLE (SET_MMIO_ATTRIBUTE may change it) |
/// | 15:4 | reserved |
///
/// Source: docs/spec/tdisp-spdm.md §2.9.
public struct MMIORangeAttributes: OptionSet, Hashable, Sendable {
    /// The raw value as on the wire.
    public var rawValue: UInt16
    /// Wraps a raw value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Bit 0: the range maps the MSI-X table.
    public static let msixTable = Self(rawValue: 1 << 0)
    /// Bit 1: the range maps the MSI-X PBA.
    public static let msixPBA = Self(rawValue: 1 << 1)
    /// Bit 2: IS_NON_TEE_MEM.
    public static let nonTEEMemory = Self(rawValue: 1 << 2)
    /// Bit 3: IS_MEM_ATTR_UPDATABLE.
    public static let memoryAttributeUpdatable = Self(rawValue: 1 << 3)
}

/// One MMIO_RANGE of the interface report (16 bytes); also the body of SET_MMIO_ATTRIBUTE_REQUEST.
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 0 | 8 | FIRST_PAGE: first 4 KiB page number, MMIO_REPORTING_OFFSET included (EMU-TDISP-6) |
/// | 8 | 4 | NUMBER_OF_PAGES: count of 4 KiB pages |
/// | 12 | 2 | RANGE_ATTRIBUTES (``MMIORangeAttributes``) |
/// | 14 | 2 | RANGE_ID |
///
/// Source: docs/spec/tdisp-spdm.md §2.9 (libspdm `pci_tdisp.h`, Linux `tsm.h`).
public struct MMIORange: Hashable, Sendable {
    /// Size on the wire, in bytes.
    public static let size = 16
    /// Page size the range counts in, in bytes.
    public static let pageSize: UInt64 = 4096

    /// FIRST_PAGE (a page number: byte address >> 12).
    public var firstPage: UInt64
    /// NUMBER_OF_PAGES.
    public var numberOfPages: UInt32
    /// RANGE_ATTRIBUTES.
    public var attributes: MMIORangeAttributes
    /// RANGE_ID.
    public var rangeID: UInt16

    /// Creates a range (FIRST_PAGE is a 4 KiB page number).
    public init(firstPage: UInt64, numberOfPages: UInt32, attributes: MMIORangeAttributes, rangeID: UInt16) {
        self.firstPage = firstPage
        self.numberOfPages = numberOfPages
        self.attributes = attributes
        self.rangeID = rangeID
    }

    /// Reads 16 bytes.
    public init(from reader: inout ByteReader) throws(WireError) {
        firstPage = try reader.u64()
        numberOfPages = try reader.u32()
        attributes = MMIORangeAttributes(rawValue: try reader.u16())
        rangeID = try reader.u16()
    }

    /// Appends 16 bytes.
    public func encode(to writer: inout ByteWriter) {
        writer.u64(firstPage)
        writer.u32(numberOfPages)
        writer.u16(attributes.rawValue)
        writer.u16(rangeID)
    }
}

/// The DEVICE_INTERFACE_REPORT (the "TDI report") a DSM builds when a TDI is locked.
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 0 | 2 | INTERFACE_INFO (``InterfaceInfo``) |
/// | 2 | 2 | Reserved |
/// | 4 | 2 | MSI_X_MESSAGE_CONTROL |
/// | 6 | 2 | LNR_CONTROL |
/// | 8 | 4 | TPH_CONTROL |
/// | 12 | 4 | MMIO_RANGE_COUNT = N |
/// | 16 | 16·N | MMIO_RANGE[N] (``MMIORange``) |
/// | 16+16N | 4 | DEVICE_SPECIFIC_INFO_LEN = L |
/// | 20+16N | L | DEVICE_SPECIFIC_INFO |
///
/// Size: 20 + 16·N + L bytes; at most 65 535 (OFFSET/LENGTH/REMAINDER are u16, §2.10).
/// Decoding requires the exact size (no trailing bytes); counts that promise more bytes than
/// present throw ``WireError/truncated(offset:needed:available:)`` before anything is allocated.
/// Source: docs/spec/tdisp-spdm.md §2.9.
public struct DeviceInterfaceReport: Hashable, Sendable {
    /// The largest report TDISP can carry, in bytes (u16 OFFSET/REMAINDER).
    public static let maximumSize = 0xFFFF

    /// INTERFACE_INFO.
    public var interfaceInfo: InterfaceInfo
    /// The reserved u16 at offset 2 (0 when well formed; kept for round trips).
    public var reserved: UInt16
    /// MSI_X_MESSAGE_CONTROL.
    public var msixMessageControl: UInt16
    /// LNR_CONTROL.
    public var lnrControl: UInt16
    /// TPH_CONTROL.
    public var tphControl: UInt32
    /// MMIO_RANGE[].
    public var mmioRanges: [MMIORange]
    /// DEVICE_SPECIFIC_INFO.
    public var deviceSpecificInfo: [UInt8]

    /// Creates a report; the reserved u16 and the control registers default to 0.
    public init(interfaceInfo: InterfaceInfo, reserved: UInt16 = 0, msixMessageControl: UInt16 = 0,
                lnrControl: UInt16 = 0, tphControl: UInt32 = 0, mmioRanges: [MMIORange],
                deviceSpecificInfo: [UInt8] = []) {
        self.interfaceInfo = interfaceInfo
        self.reserved = reserved
        self.msixMessageControl = msixMessageControl
        self.lnrControl = lnrControl
        self.tphControl = tphControl
        self.mmioRanges = mmioRanges
        self.deviceSpecificInfo = deviceSpecificInfo
    }

    /// Decodes a whole report (exact size).
    public init(decoding bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        interfaceInfo = InterfaceInfo(rawValue: try reader.u16())
        reserved = try reader.u16()
        msixMessageControl = try reader.u16()
        lnrControl = try reader.u16()
        tphControl = try reader.u32()
        let count = try reader.u32()
        // Each range is 16 bytes: refuse a count the remaining bytes cannot hold before looping.
        guard UInt64(count) * UInt64(MMIORange.size) <= UInt64(reader.remaining) else {
            throw .truncated(offset: reader.offset, needed: Int(clamping: UInt64(count) * UInt64(MMIORange.size)),
                             available: reader.remaining)
        }
        var ranges = [MMIORange]()
        ranges.reserveCapacity(Int(count))
        for _ in 0..<count { ranges.append(try MMIORange(from: &reader)) }
        mmioRanges = ranges
        let length = try reader.u32()
        guard UInt64(length) <= UInt64(reader.remaining) else {
            throw .truncated(offset: reader.offset, needed: Int(clamping: UInt64(length)),
                             available: reader.remaining)
        }
        deviceSpecificInfo = try reader.bytes(Int(length))
        try reader.expectEnd()
    }

    /// Size of the encoding, in bytes: 20 + 16·N + L.
    public var encodedSize: Int { 20 + MMIORange.size * mmioRanges.count + deviceSpecificInfo.count }

    /// The report's bytes.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: encodedSize)
        writer.u16(interfaceInfo.rawValue)
        writer.u16(reserved)
        writer.u16(msixMessageControl)
        writer.u16(lnrControl)
        writer.u32(tphControl)
        writer.u32(UInt32(truncatingIfNeeded: mmioRanges.count))
        for range in mmioRanges { range.encode(to: &writer) }
        writer.u32(UInt32(truncatingIfNeeded: deviceSpecificInfo.count))
        writer.bytes(deviceSpecificInfo)
        return writer.bytes
    }
}
