/// Why a configuration space image was rejected.
///
/// Thrown by ``ConfigSpace/init(bytes:barSizes:romSize:vfBARSizes:)``. Every case names the byte
/// offset in configuration space where the fault is; equality compares the case and its values.
/// Faults in the *extended* capability list are not errors: the sound part is kept and the rest
/// is reported as a ``ConfigSpaceWarning``.
public enum ConfigSpaceError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The image is neither 256 bytes (conventional space, `lspci -xxx`) nor 4096 bytes
    /// (extended space, `lspci -xxxx`).
    case invalidSize(Int)
    /// The capability pointer register at `at` (0x34, 0x14 for CardBus, or a capability's Next
    /// Pointer byte) holds `target`, which is inside the 64-byte header (below 0x40) or leaves no
    /// room for a capability header before 0x100 (PCI Local Bus 3.0 §6.7).
    case capabilityPointerOutOfRange(at: Int, target: Int)
    /// The capability pointer register at `at` points back to `target`, already visited.
    case capabilityLoop(at: Int, target: Int)
    /// The capability with ID `id` at `offset` needs `needed` bytes, which pass the end of the
    /// conventional space (0x100).
    case capabilityTruncated(offset: Int, id: UInt8, needed: Int)

    /// One line naming the offset and the fault.
    public var description: String {
        switch self {
        case let .invalidSize(count):
            return "configuration space of \(count) bytes (expected 256 or 4096)"
        case let .capabilityPointerOutOfRange(at, target):
            return "capability pointer at offset \(hex(at)) points to \(hex(target)), outside 0x40-0xfc"
        case let .capabilityLoop(at, target):
            return "capability pointer at offset \(hex(at)) loops back to \(hex(target))"
        case let .capabilityTruncated(offset, id, needed):
            return "capability \(hex(id)) at offset \(hex(offset)) needs \(needed) bytes, past the end of the 256-byte space"
        }
    }
}

/// Something in a configuration space image that was dropped or ignored while the rest was kept.
///
/// Recorded in ``ConfigSpace/warnings``; each case names where (offsets in configuration space)
/// and, through ``description``, what was dropped.
public enum ConfigSpaceWarning: Hashable, Sendable, CustomStringConvertible {
    /// The Next Capability Offset of the extended capability at `at` is `target`, which is below
    /// 0x100, not DWORD-aligned or past 0xffc; the rest of the extended list was dropped.
    case extendedPointerOutOfRange(at: Int, target: Int)
    /// The extended capability at `at` points back to `target`, already visited; the rest of the
    /// list was dropped.
    case extendedCapabilityLoop(at: Int, target: Int)
    /// The extended capability list reached an all-ones header at `offset` (no function
    /// answers there); the list ends at the previous capability.
    case extendedHeaderInvalid(offset: Int, header: UInt32)
    /// The extended capability `id` at `offset` needs `needed` bytes, past 0x1000; its header is
    /// kept but its registers are not decoded.
    case extendedCapabilityTruncated(offset: Int, id: UInt16, needed: Int)
    /// The IDE capability at `offset` announces `announced` stream register blocks but only
    /// `kept` fit in the space; the others were dropped.
    case ideStreamBlocksTruncated(offset: Int, announced: Int, kept: Int)
    /// The BAR register at `offset` is marked 64-bit but is the last BAR register; it was
    /// decoded as a 32-bit BAR.
    case bar64WithoutUpperHalf(offset: Int)
    /// The BAR register at `offset` has the reserved memory type 0b11; it was skipped.
    case barReservedType(offset: Int)
    /// The SR-IOV VF BAR register at `offset` claims I/O space, which VF BARs may not use
    /// (PCIe Base 6.x §9.3.3.14); it was skipped.
    case vfBARIsIO(offset: Int)
    /// The header type (bits 6:0 of offset 0x0e) is `type`, not 0, 1 or 2: no BARs or
    /// capabilities were decoded.
    case unknownHeaderType(UInt8)

    /// One line naming the offsets and what was dropped.
    public var description: String {
        switch self {
        case let .extendedPointerOutOfRange(at, target):
            return "extended capability at \(hex(at)) points to \(hex(target)), outside 0x100-0xffc; rest of the list dropped"
        case let .extendedCapabilityLoop(at, target):
            return "extended capability at \(hex(at)) loops back to \(hex(target)); rest of the list dropped"
        case let .extendedHeaderInvalid(offset, header):
            return "extended capability list reaches header \(hex(header)) at \(hex(offset)); rest of the list dropped"
        case let .extendedCapabilityTruncated(offset, id, needed):
            return "extended capability \(hex(id)) at \(hex(offset)) needs \(needed) bytes, past 0x1000; registers not decoded"
        case let .ideStreamBlocksTruncated(offset, announced, kept):
            return "IDE capability at \(hex(offset)) announces \(announced) stream blocks, only \(kept) fit; \(announced - kept) dropped"
        case let .bar64WithoutUpperHalf(offset):
            return "64-bit BAR at \(hex(offset)) has no upper half; decoded as 32-bit"
        case let .barReservedType(offset):
            return "BAR at \(hex(offset)) has the reserved memory type; skipped"
        case let .vfBARIsIO(offset):
            return "VF BAR at \(hex(offset)) claims I/O space; skipped"
        case let .unknownHeaderType(type):
            return "unknown header type \(hex(type)); BARs and capabilities not decoded"
        }
    }
}

/// Why a dump (the text `lspci -vvv -xxxx` or `lspci -xxx` prints) was rejected.
///
/// Thrown by ``LspciDump/parse(_:)`` and ``PCITopology/init(lspci:vfs:)``. Line numbers count
/// from 1; columns count characters from 1. Equality compares the case and its values.
public enum PCIDumpError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// No configuration space hex block in the input.
    case noDevices
    /// The character at `line`, `column` of a hex row is not a hex digit.
    case invalidHex(line: Int, column: Int)
    /// A hex row holds `byteCount` bytes; `lspci` prints 16 per row.
    case malformedHexRow(line: Int, byteCount: Int)
    /// A hex row starts at offset `found` where `expected` was due (a gap, a repeat or a
    /// block that does not start at 00).
    case unexpectedRowOffset(line: Int, expected: Int, found: Int)
    /// The hex block ending at `line` holds `byteCount` bytes, neither 256 nor 4096.
    case truncatedHexBlock(line: Int, byteCount: Int)
    /// The device header at `line` has no hex block (the dump was taken without `-xxx`).
    case missingHexBlock(line: Int, bdf: BDF)
    /// The device header at `line` starts with `text`, which looks like but is not a valid
    /// `[dddd:]bb:dd.f` address.
    case invalidAddress(line: Int, text: String)
    /// The `[size=...]` annotation at `line` cannot be read as a size.
    case invalidSizeAnnotation(line: Int)
    /// Two devices at `line` and before share the address `bdf`.
    case duplicateDevice(line: Int, bdf: BDF)
    /// The hex block of the device whose header is at `line` is not a sound configuration space.
    case configSpace(line: Int, bdf: BDF, ConfigSpaceError)
    /// The functions could be read but not assembled into a topology.
    case topology(TopologyError)

    /// One line naming the line (and column) or offset, for the CLI's stderr.
    public var description: String {
        switch self {
        case .noDevices:
            return "no configuration space hex block found"
        case let .invalidHex(line, column):
            return "line \(line), column \(column): not a hex byte"
        case let .malformedHexRow(line, count):
            return "line \(line): hex row has \(count) bytes, expected 16"
        case let .unexpectedRowOffset(line, expected, found):
            return "line \(line): hex row at offset \(hex(found)), expected \(hex(expected))"
        case let .truncatedHexBlock(line, count):
            return "line \(line): hex block ends after \(count) bytes (expected 256 or 4096)"
        case let .missingHexBlock(line, bdf):
            return "line \(line): device \(bdf) has no configuration space hex block"
        case let .invalidAddress(line, text):
            return "line \(line): '\(text)' is not a valid PCI address"
        case let .invalidSizeAnnotation(line):
            return "line \(line): unreadable [size=...]"
        case let .duplicateDevice(line, bdf):
            return "line \(line): device \(bdf) appears twice"
        case let .configSpace(line, bdf, error):
            return "device \(bdf) (line \(line)): \(error)"
        case let .topology(error):
            return error.description
        }
    }
}

/// Why functions could not be assembled into a ``PCITopology``.
public enum TopologyError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// Two functions have the same address.
    case duplicateFunction(BDF)
    /// VF `vf` (1-based) of `pf` would have a routing ID past 0xffff (PF RID + First VF Offset +
    /// (vf-1) × VF Stride, PCIe Base 6.x §9.3.3.10/11); the SR-IOV capability is at `sriovOffset`.
    case vfRoutingIDOutOfRange(pf: BDF, vf: Int, sriovOffset: Int)
    /// VF `vf` of `pf` would land on `bdf`, already taken (a First VF Offset of 0, a stride of 0
    /// with several VFs, or overlap with another function).
    case vfRoutingIDCollision(pf: BDF, vf: Int, bdf: BDF)
    /// `requested` VFs were asked of `pf`, whose TotalVFs is `total`.
    case vfCountExceedsTotal(pf: BDF, requested: Int, total: Int)
    /// The slice of VF BAR `index` for VF `vf` of `pf` passes the end of the 64-bit space.
    case vfBAROverflow(pf: BDF, vf: Int, index: Int)

    /// One line naming the PF, the VF and the fault.
    public var description: String {
        switch self {
        case let .duplicateFunction(bdf):
            return "function \(bdf) appears twice"
        case let .vfRoutingIDOutOfRange(pf, vf, offset):
            return "\(pf): VF \(vf) routing ID passes 0xffff (SR-IOV capability at \(hex(offset)))"
        case let .vfRoutingIDCollision(pf, vf, bdf):
            return "\(pf): VF \(vf) would be \(bdf), already taken"
        case let .vfCountExceedsTotal(pf, requested, total):
            return "\(pf): \(requested) VFs requested, TotalVFs is \(total)"
        case let .vfBAROverflow(pf, vf, index):
            return "\(pf): VF \(vf) slice of VF BAR \(index) passes the end of the address space"
        }
    }
}
