import Wire

/// One function's configuration space, decoded from its raw bytes.
///
/// Everything here comes from the bytes (PCI Local Bus 3.0 §6.1, PCIe Base 6.x §7.5); the only
/// facts taken from `lspci`'s text are BAR sizes, which a dump cannot hold (sizing a BAR needs a
/// write of all-ones). See ``BAR/sizeSource``.
///
/// Header layout read here (little-endian):
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0x00 | 2 | Vendor ID |
/// | 0x02 | 2 | Device ID |
/// | 0x04 | 2 | Command |
/// | 0x06 | 2 | Status (bit 4: Capabilities List) |
/// | 0x08 | 1 | Revision ID |
/// | 0x09 | 3 | Class Code (prog-if, sub-class, base class) |
/// | 0x0e | 1 | Header Type (bits 6:0 layout, bit 7 multi-function) |
/// | 0x10 | 24 / 8 | BAR 0-5 (type 0) / BAR 0-1 (type 1) |
/// | 0x18 | 3 | type 1: primary, secondary, subordinate bus numbers |
/// | 0x2c | 4 | type 0: Subsystem Vendor ID, Subsystem ID |
/// | 0x30 / 0x38 | 4 | Expansion ROM base (type 0 / type 1) |
/// | 0x34 / 0x14 | 1 | Capabilities Pointer (type 0 and 1 / type 2) |
/// | 0x100 | … | first extended capability (4096-byte images only) |
///
/// Errors: ``ConfigSpaceError`` for an image of the wrong size and for a conventional capability
/// list that loops, points outside 0x40-0xfc or holds a capability that runs past 0x100.
/// Faults in the extended list are recorded in ``warnings`` and the sound part is kept.
public struct ConfigSpace: Sendable, Hashable {
    /// The raw image: 256 bytes (conventional space) or 4096 bytes (with extended space).
    public let bytes: [UInt8]
    /// Vendor ID (offset 0x00).
    public let vendorID: UInt16
    /// Device ID (offset 0x02).
    public let deviceID: UInt16
    /// Command register (offset 0x04); bit 1 Memory Space Enable, bit 2 Bus Master Enable.
    public let command: UInt16
    /// Status register (offset 0x06); bit 4 says a capability list exists.
    public let status: UInt16
    /// Revision ID (offset 0x08).
    public let revisionID: UInt8
    /// Class code, 24 bits: base class << 16 | sub-class << 8 | programming interface.
    public let classCode: UInt32
    /// Layout of the header (bits 6:0 of offset 0x0e).
    public let headerType: HeaderType
    /// Bit 7 of offset 0x0e: the device has more than one function.
    public let isMultiFunction: Bool
    /// Subsystem Vendor ID (offset 0x2c), type 0 headers only.
    public let subsystemVendorID: UInt16?
    /// Subsystem ID (offset 0x2e), type 0 headers only.
    public let subsystemID: UInt16?
    /// Bus numbers of a type 1 (bridge) header; nil otherwise.
    public let bridgeBuses: BridgeBuses?
    /// The implemented BARs, in index order; a 64-bit BAR takes two register slots and appears
    /// once, at its lower index.
    public let bars: [BAR]
    /// The Expansion ROM base register, when it holds an address or the dump gave its size.
    public let expansionROM: ExpansionROM?
    /// The conventional capability list (offsets 0x40-0xff), in list order.
    public let capabilities: [Capability]
    /// The extended capability list (offsets 0x100-0xfff), in list order; empty for a 256-byte
    /// image.
    public let extendedCapabilities: [ExtendedCapability]
    /// What was dropped or ignored while decoding (damaged extended list, odd BARs).
    public let warnings: [ConfigSpaceWarning]

    /// Decodes `bytes`.
    ///
    /// - Parameters:
    ///   - bytes: 256 or 4096 bytes of configuration space.
    ///   - barSizes: BAR sizes in bytes by BAR index, from `lspci`'s `[size=...]`.
    ///   - romSize: the Expansion ROM size from `lspci`'s text, if printed.
    ///   - vfBARSizes: per-VF sizes of the SR-IOV VF BARs by index, if known.
    /// - Throws: ``ConfigSpaceError`` (see the type).
    public init(
        bytes: [UInt8], barSizes: [Int: UInt64] = [:], romSize: UInt64? = nil, vfBARSizes: [Int: UInt64] = [:]
    ) throws(ConfigSpaceError) {
        guard bytes.count == 256 || bytes.count == 4096 else { throw .invalidSize(bytes.count) }
        let space = Space(bytes: bytes)
        self.bytes = bytes
        vendorID = space.u16(0x00)
        deviceID = space.u16(0x02)
        command = space.u16(0x04)
        status = space.u16(0x06)
        revisionID = space.u8(0x08)
        classCode = space.u32(0x08) >> 8
        let rawType = space.u8(0x0e)
        isMultiFunction = rawType & 0x80 != 0
        headerType = HeaderType(rawValue: rawType & 0x7f)

        var warnings: [ConfigSpaceWarning] = []
        let barCount: Int
        let romRegister: Int?
        let capabilityPointer: Int?
        switch headerType {
        case .type0:
            (barCount, romRegister, capabilityPointer) = (6, 0x30, 0x34)
            subsystemVendorID = space.u16(0x2c)
            subsystemID = space.u16(0x2e)
            bridgeBuses = nil
        case .type1:
            (barCount, romRegister, capabilityPointer) = (2, 0x38, 0x34)
            subsystemVendorID = nil
            subsystemID = nil
            bridgeBuses = BridgeBuses(primary: space.u8(0x18), secondary: space.u8(0x19), subordinate: space.u8(0x1a))
        case .type2:
            (barCount, romRegister, capabilityPointer) = (0, nil, 0x14)
            subsystemVendorID = nil
            subsystemID = nil
            bridgeBuses = nil
        case .other(let type):
            (barCount, romRegister, capabilityPointer) = (0, nil, nil)
            subsystemVendorID = nil
            subsystemID = nil
            bridgeBuses = nil
            warnings.append(.unknownHeaderType(type))
        }

        bars = BAR.decode(space: space, firstRegister: 0x10, count: barCount, sizes: barSizes,
                          isVF: false, warnings: &warnings)
        if let romRegister {
            let raw = space.u32(romRegister)
            let address = UInt64(raw & 0xFFFF_F800)
            if address != 0 || romSize != nil {
                let size = romSize ?? naturalAlignment(of: address)
                expansionROM = ExpansionROM(
                    registerOffset: romRegister, address: address, isEnabled: raw & 1 != 0, size: size,
                    sizeSource: size == nil ? nil : (romSize != nil ? .dumpText : .derivedFromAlignment))
            } else {
                expansionROM = nil
            }
        } else {
            expansionROM = nil
        }

        if let capabilityPointer, status & 0x10 != 0 {
            capabilities = try Self.walkCapabilities(space: space, pointerRegister: capabilityPointer)
        } else {
            capabilities = []
        }
        extendedCapabilities = Self.walkExtendedCapabilities(space: space, vfBARSizes: vfBARSizes, warnings: &warnings)
        self.warnings = warnings
    }

    /// `bytes.count == 4096`: the image includes the PCIe extended configuration space.
    public var hasExtendedSpace: Bool { bytes.count == 4096 }

    // MARK: Capability lists

    /// Walks the conventional list from the pointer at `pointerRegister`. A pointer's two low bits
    /// are reserved and masked off, as Linux's `__pci_find_next_cap_ttl()` does.
    private static func walkCapabilities(space: Space, pointerRegister: Int) throws(ConfigSpaceError) -> [Capability] {
        var result: [Capability] = []
        var visited = Set<Int>()
        var at = pointerRegister
        var target = Int(space.u8(pointerRegister) & 0xFC)
        while target != 0 {
            guard target >= 0x40, target <= 0xFC else { throw .capabilityPointerOutOfRange(at: at, target: target) }
            guard visited.insert(target).inserted else { throw .capabilityLoop(at: at, target: target) }
            let id = space.u8(target)
            let next = Int(space.u8(target + 1) & 0xFC)
            let body = try Capability.decodeBody(id: id, offset: target, space: space)
            result.append(Capability(offset: target, id: id, next: next, body: body))
            at = target + 1
            target = next
        }
        return result
    }

    /// Walks the extended list from 0x100 (PCIe Base 6.x §7.6.3). The header is a DWORD:
    /// bits 15:0 ID, 19:16 version, 31:20 next offset (two low bits masked off).
    private static func walkExtendedCapabilities(
        space: Space, vfBARSizes: [Int: UInt64], warnings: inout [ConfigSpaceWarning]
    ) -> [ExtendedCapability] {
        guard space.bytes.count == 4096 else { return [] }
        var header = space.u32(0x100)
        guard header != 0, header != 0xFFFF_FFFF else { return [] }
        var result: [ExtendedCapability] = []
        var visited: Set<Int> = [0x100]
        var offset = 0x100
        while true {
            let id = UInt16(truncatingIfNeeded: header)
            let version = UInt8(truncatingIfNeeded: header >> 16) & 0xF
            let next = Int(header >> 20) & 0xFFC
            let body = ExtendedCapability.decodeBody(id: id, offset: offset, space: space,
                                                     vfBARSizes: vfBARSizes, warnings: &warnings)
            result.append(ExtendedCapability(offset: offset, id: id, version: version, next: next, body: body))
            if next == 0 { break }
            guard next >= 0x100 else {
                warnings.append(.extendedPointerOutOfRange(at: offset, target: next))
                break
            }
            guard visited.insert(next).inserted else {
                warnings.append(.extendedCapabilityLoop(at: offset, target: next))
                break
            }
            header = space.u32(next)
            guard header != 0, header != 0xFFFF_FFFF else {
                warnings.append(.extendedHeaderInvalid(offset: next, header: header))
                break
            }
            offset = next
        }
        return result
    }
}

extension ConfigSpace: CapabilityLists {}

/// Layout of the configuration header (bits 6:0 of offset 0x0e).
public enum HeaderType: Hashable, Sendable, CustomStringConvertible {
    /// Type 0: an endpoint function, six BARs.
    case type0
    /// Type 1: a PCI-to-PCI bridge (root or switch port), two BARs and bus numbers.
    case type1
    /// Type 2: a CardBus bridge; no BARs are decoded.
    case type2
    /// Any other value; nothing past the common header is decoded.
    case other(UInt8)

    /// Maps the 7-bit field.
    public init(rawValue: UInt8) {
        switch rawValue {
        case 0: self = .type0
        case 1: self = .type1
        case 2: self = .type2
        default: self = .other(rawValue)
        }
    }

    /// The 7-bit field value.
    public var rawValue: UInt8 {
        switch self {
        case .type0: 0
        case .type1: 1
        case .type2: 2
        case .other(let value): value
        }
    }

    /// "type 0 (endpoint)", "type 1 (PCI bridge)", …
    public var description: String {
        switch self {
        case .type0: "type 0 (endpoint)"
        case .type1: "type 1 (PCI bridge)"
        case .type2: "type 2 (CardBus bridge)"
        case .other(let value): "unknown type \(hex(value))"
        }
    }
}

/// Bus numbers of a type 1 header (offsets 0x18, 0x19, 0x1a).
public struct BridgeBuses: Hashable, Sendable {
    /// Bus the bridge sits on.
    public let primary: UInt8
    /// Bus directly below the bridge.
    public let secondary: UInt8
    /// Highest bus number below the bridge.
    public let subordinate: UInt8

    /// Creates the triple.
    public init(primary: UInt8, secondary: UInt8, subordinate: UInt8) {
        self.primary = primary
        self.secondary = secondary
        self.subordinate = subordinate
    }
}

/// Where a size came from.
public enum SizeSource: Hashable, Sendable, CustomStringConvertible {
    /// `lspci` printed it (`[size=...]`): the kernel's resource size.
    case dumpText
    /// Not printed: an **upper bound** derived from the natural alignment of the address (a BAR's
    /// address is aligned to its power-of-two size, so the size is at most the address's lowest
    /// set bit). The real size may be smaller.
    case derivedFromAlignment

    /// "from dump text" or "upper bound from alignment".
    public var description: String {
        switch self {
        case .dumpText: "from dump text"
        case .derivedFromAlignment: "upper bound from alignment"
        }
    }
}

/// A Base Address Register (PCI Local Bus 3.0 §6.2.5.1), or an SR-IOV VF BAR
/// (PCIe Base 6.x §9.3.3.14), or one VF's slice of a VF BAR.
///
/// Register layout (memory): bit 0 = 0, bits 2:1 type (00 32-bit, 01 below 1 MiB, 10 64-bit),
/// bit 3 prefetchable, bits 31:4 address; a 64-bit BAR takes the next register as bits 63:32.
/// I/O: bit 0 = 1, bits 31:2 address.
public struct BAR: Hashable, Sendable {
    /// Address space and width of a BAR.
    public enum Space: Hashable, Sendable, CustomStringConvertible {
        /// I/O space.
        case io
        /// 32-bit memory.
        case memory32
        /// Memory below 1 MiB (type 01, legacy).
        case memoryBelow1M
        /// 64-bit memory (two registers).
        case memory64

        /// "I/O", "32-bit memory", "memory below 1M" or "64-bit memory".
        public var description: String {
            switch self {
            case .io: "I/O"
            case .memory32: "32-bit memory"
            case .memoryBelow1M: "memory below 1M"
            case .memory64: "64-bit memory"
            }
        }
    }

    /// BAR index, 0-5 (for VF BARs, the VF BAR index).
    public let index: Int
    /// Offset of the (lower) register in configuration space.
    public let registerOffset: Int
    /// Space and width.
    public let space: Space
    /// Bit 3 of a memory BAR.
    public let isPrefetchable: Bool
    /// Base address (bus address); 0 when unassigned.
    public let address: UInt64
    /// Size in bytes, when known; see ``sizeSource``.
    public let size: UInt64?
    /// Where ``size`` came from; nil when the size is unknown (address 0 and no text).
    public let sizeSource: SizeSource?

    /// Creates a BAR value.
    public init(index: Int, registerOffset: Int, space: Space, isPrefetchable: Bool, address: UInt64,
                size: UInt64?, sizeSource: SizeSource?) {
        self.index = index
        self.registerOffset = registerOffset
        self.space = space
        self.isPrefetchable = isPrefetchable
        self.address = address
        self.size = size
        self.sizeSource = sizeSource
    }

    /// True for the three memory spaces.
    public var isMemory: Bool { space != .io }
    /// True for a 64-bit memory BAR.
    public var is64Bit: Bool { space == .memory64 }
    /// The last byte's address (`address + size - 1`), when the size is known and the range does
    /// not wrap.
    public var lastAddress: UInt64? {
        guard let size, size > 0 else { return nil }
        let (end, overflow) = address.addingReportingOverflow(size - 1)
        return overflow ? nil : end
    }
    /// True when `address` lies in the BAR.
    public func contains(_ address: UInt64) -> Bool {
        guard let last = lastAddress else { return false }
        return address >= self.address && address <= last
    }

    /// Decodes `count` BAR registers from `firstRegister`. Registers that hold 0 are left out
    /// (unimplemented, or unassigned and unsizable) unless `sizes` names them.
    static func decode(space: ConfigSpace.Space, firstRegister: Int, count: Int, sizes: [Int: UInt64],
                       isVF: Bool, warnings: inout [ConfigSpaceWarning]) -> [BAR] {
        var bars: [BAR] = []
        var index = 0
        while index < count {
            let offset = firstRegister + 4 * index
            let raw = space.u32(offset)
            var used = 1
            defer { index += used }
            let barSpace: Space
            var address: UInt64
            if raw & 1 == 1 {
                if isVF {
                    warnings.append(.vfBARIsIO(offset: offset))
                    continue
                }
                barSpace = .io
                address = UInt64(raw & 0xFFFF_FFFC)
            } else {
                address = UInt64(raw & 0xFFFF_FFF0)
                switch (raw >> 1) & 3 {
                case 0: barSpace = .memory32
                case 1: barSpace = .memoryBelow1M
                case 2:
                    if index + 1 < count {
                        barSpace = .memory64
                        address |= UInt64(space.u32(offset + 4)) << 32
                        used = 2
                    } else {
                        warnings.append(.bar64WithoutUpperHalf(offset: offset))
                        barSpace = .memory32
                    }
                default:
                    warnings.append(.barReservedType(offset: offset))
                    continue
                }
            }
            let textSize = sizes[index]
            guard raw != 0 || textSize != nil else { continue }
            let size = textSize ?? naturalAlignment(of: address)
            bars.append(BAR(
                index: index, registerOffset: offset, space: barSpace,
                isPrefetchable: barSpace != .io && raw & 0x8 != 0, address: address, size: size,
                sizeSource: size == nil ? nil : (textSize != nil ? .dumpText : .derivedFromAlignment)))
        }
        return bars
    }
}

/// The Expansion ROM Base Address register (0x30 in type 0, 0x38 in type 1): bit 0 enable,
/// bits 31:11 address.
public struct ExpansionROM: Hashable, Sendable {
    /// Offset of the register.
    public let registerOffset: Int
    /// Base address; 0 when unassigned.
    public let address: UInt64
    /// Bit 0: ROM address decoding enabled.
    public let isEnabled: Bool
    /// Size in bytes when known.
    public let size: UInt64?
    /// Where ``size`` came from.
    public let sizeSource: SizeSource?
}

/// The lowest set bit of `address` (its natural alignment), or nil for 0.
func naturalAlignment(of address: UInt64) -> UInt64? {
    address == 0 ? nil : address & (~address &+ 1)
}

extension ConfigSpace {
    /// Bounds-checked little-endian access to the image through `Wire.ByteReader`; reads outside
    /// the image return 0 (callers check sizes first where it matters).
    struct Space: Sendable {
        let bytes: [UInt8]

        /// True when `count` bytes at `offset` lie inside the image.
        func fits(_ offset: Int, _ count: Int) -> Bool {
            offset >= 0 && count >= 0 && offset <= bytes.count && count <= bytes.count - offset
        }

        func u8(_ offset: Int) -> UInt8 { read(offset) { (reader: inout ByteReader) throws(WireError) in try reader.u8() } ?? 0 }
        func u16(_ offset: Int) -> UInt16 { read(offset) { (reader: inout ByteReader) throws(WireError) in try reader.u16() } ?? 0 }
        func u32(_ offset: Int) -> UInt32 { read(offset) { (reader: inout ByteReader) throws(WireError) in try reader.u32() } ?? 0 }

        private func read<T>(_ offset: Int, _ body: (inout ByteReader) throws(WireError) -> T) -> T? {
            guard offset >= 0, offset <= bytes.count else { return nil }
            var reader = ByteReader(bytes, offset: offset)
            return try? body(&reader)
        }
    }
}
