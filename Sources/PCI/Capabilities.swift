/// An entry of the conventional capability list (offsets 0x40-0xff).
///
/// Header: byte 0 Capability ID, byte 1 Next Capability Pointer (PCI Local Bus 3.0 §6.7).
public struct Capability: Hashable, Sendable {
    /// What the parser decoded of the registers.
    public enum Body: Hashable, Sendable {
        /// ID 0x10, PCI Express.
        case express(ExpressCapability)
        /// ID 0x11, MSI-X.
        case msix(MSIXCapability)
        /// Any other ID: kept by offset and ID only.
        case other
    }

    /// Offset of the capability in configuration space.
    public let offset: Int
    /// Capability ID (byte 0).
    public let id: UInt8
    /// Next pointer (byte 1, low two bits masked); 0 ends the list.
    public let next: Int
    /// Decoded registers.
    public let body: Body

    /// Creates a list entry.
    public init(offset: Int, id: UInt8, next: Int, body: Body) {
        self.offset = offset
        self.id = id
        self.next = next
        self.body = body
    }

    /// The capability's name as the PCI Code and ID Assignment spec gives it.
    public var name: String { Self.names[id] ?? "Capability \(hex(id))" }

    static let names: [UInt8: String] = [
        0x01: "Power Management", 0x02: "AGP", 0x03: "VPD", 0x04: "Slot Identification", 0x05: "MSI",
        0x06: "CompactPCI Hot Swap", 0x07: "PCI-X", 0x08: "HyperTransport", 0x09: "Vendor Specific",
        0x0a: "Debug Port", 0x0b: "CompactPCI Central Resource Control", 0x0c: "PCI Hot-Plug",
        0x0d: "Bridge Subsystem Vendor ID", 0x0e: "AGP 8x", 0x0f: "Secure Device", 0x10: "PCI Express",
        0x11: "MSI-X", 0x12: "SATA Data/Index Configuration", 0x13: "Advanced Features", 0x14: "Enhanced Allocation",
        0x15: "Flattening Portal Bridge",
    ]

    static func decodeBody(id: UInt8, offset: Int, space: ConfigSpace.Space) throws(ConfigSpaceError) -> Body {
        func need(_ count: Int) throws(ConfigSpaceError) {
            guard offset + count <= 0x100, space.fits(offset, count) else {
                throw .capabilityTruncated(offset: offset, id: id, needed: count)
            }
        }
        switch id {
        case 0x10:
            let version = space.u8(offset + 2) & 0xF
            try need(version >= 2 ? ExpressCapability.sizeV2 : ExpressCapability.sizeV1)
            return .express(ExpressCapability(offset: offset, space: space))
        case 0x11:
            try need(MSIXCapability.size)
            return .msix(MSIXCapability(offset: offset, space: space))
        default:
            try need(2)
            return .other
        }
    }
}

/// An entry of the PCIe extended capability list (offsets 0x100-0xfff).
///
/// Header DWORD (PCIe Base 6.x §7.6.3): bits 15:0 Capability ID, 19:16 Capability Version,
/// 31:20 Next Capability Offset.
public struct ExtendedCapability: Hashable, Sendable {
    /// What the parser decoded of the registers.
    public enum Body: Hashable, Sendable {
        /// ID 0x0010, Single Root I/O Virtualization.
        case sriov(SRIOVCapability)
        /// ID 0x002E, Data Object Exchange.
        case doe(DOECapability)
        /// ID 0x0030, Integrity and Data Encryption.
        case ide(IDECapability)
        /// ID 0x000E, Alternative Routing-ID Interpretation.
        case ari(ARICapability)
        /// ID 0x001B, Process Address Space ID.
        case pasid(PASIDCapability)
        /// ID 0x000F, Address Translation Services.
        case ats(ATSCapability)
        /// Any other ID, or a known one whose registers run past 0x1000 (with a warning).
        case other
    }

    /// Offset of the capability in configuration space.
    public let offset: Int
    /// Extended Capability ID.
    public let id: UInt16
    /// Capability Version.
    public let version: UInt8
    /// Next Capability Offset (low two bits masked); 0 ends the list.
    public let next: Int
    /// Decoded registers.
    public let body: Body

    /// Creates a list entry.
    public init(offset: Int, id: UInt16, version: UInt8, next: Int, body: Body) {
        self.offset = offset
        self.id = id
        self.version = version
        self.next = next
        self.body = body
    }

    /// The capability's name as the PCI Code and ID Assignment spec gives it.
    public var name: String { Self.names[id] ?? "Extended Capability \(hex(id))" }

    static let names: [UInt16: String] = [
        0x0001: "Advanced Error Reporting", 0x0002: "Virtual Channel", 0x0003: "Device Serial Number",
        0x0004: "Power Budgeting", 0x0005: "Root Complex Link Declaration", 0x0006: "Root Complex Internal Link Control",
        0x0007: "Root Complex Event Collector Endpoint Association", 0x0008: "Multi-Function Virtual Channel",
        0x0009: "Virtual Channel (MFVC)", 0x000a: "RCRB Header", 0x000b: "Vendor Specific",
        0x000c: "Configuration Access Correlation", 0x000d: "Access Control Services",
        0x000e: "Alternative Routing-ID Interpretation (ARI)", 0x000f: "Address Translation Services (ATS)",
        0x0010: "Single Root I/O Virtualization (SR-IOV)", 0x0011: "Multi-Root I/O Virtualization", 0x0012: "Multicast",
        0x0013: "Page Request Interface (PRI)", 0x0015: "Resizable BAR", 0x0016: "Dynamic Power Allocation",
        0x0017: "TPH Requester", 0x0018: "Latency Tolerance Reporting", 0x0019: "Secondary PCI Express",
        0x001a: "Protocol Multiplexing", 0x001b: "Process Address Space ID (PASID)", 0x001c: "LN Requester",
        0x001d: "Downstream Port Containment", 0x001e: "L1 PM Substates", 0x001f: "Precision Time Measurement",
        0x0020: "PCI Express over M-PHY", 0x0021: "FRS Queueing", 0x0022: "Readiness Time Reporting",
        0x0023: "Designated Vendor-Specific", 0x0024: "VF Resizable BAR", 0x0025: "Data Link Feature",
        0x0026: "Physical Layer 16.0 GT/s", 0x0027: "Lane Margining at the Receiver", 0x0028: "Hierarchy ID",
        0x0029: "Native PCIe Enclosure Management", 0x002a: "Physical Layer 32.0 GT/s", 0x002b: "Alternate Protocol",
        0x002c: "System Firmware Intermediary", 0x002d: "Shadow Functions", 0x002e: "Data Object Exchange",
        0x002f: "Device 3", 0x0030: "Integrity and Data Encryption (IDE)", 0x0031: "Physical Layer 64.0 GT/s",
        0x0032: "Flit Logging", 0x0033: "Flit Performance Measurement", 0x0034: "Flit Error Injection",
    ]

    static func decodeBody(id: UInt16, offset: Int, space: ConfigSpace.Space, vfBARSizes: [Int: UInt64],
                           warnings: inout [ConfigSpaceWarning]) -> Body {
        func fits(_ count: Int) -> Bool {
            if space.fits(offset, count) { return true }
            warnings.append(.extendedCapabilityTruncated(offset: offset, id: id, needed: count))
            return false
        }
        switch id {
        case 0x0010:
            guard fits(SRIOVCapability.size) else { return .other }
            return .sriov(SRIOVCapability(offset: offset, space: space, vfBARSizes: vfBARSizes, warnings: &warnings))
        case 0x002E:
            guard fits(DOECapability.size) else { return .other }
            return .doe(DOECapability(offset: offset, space: space))
        case 0x0030:
            guard fits(IDECapability.minimumSize) else { return .other }
            return .ide(IDECapability(offset: offset, space: space, warnings: &warnings))
        case 0x000E:
            guard fits(ARICapability.size) else { return .other }
            return .ari(ARICapability(offset: offset, space: space))
        case 0x001B:
            guard fits(PASIDCapability.size) else { return .other }
            return .pasid(PASIDCapability(offset: offset, space: space))
        case 0x000F:
            guard fits(ATSCapability.size) else { return .other }
            return .ats(ATSCapability(offset: offset, space: space))
        default:
            return .other
        }
    }
}

// MARK: - PCI Express

/// The PCI Express capability (ID 0x10; PCIe Base 6.x §7.5.3; Linux `PCI_EXP_*` in
/// include/uapi/linux/pci_regs.h).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0x02 | 2 | PCI Express Capabilities: bits 3:0 version, 7:4 Device/Port Type, 8 Slot Implemented, 13:9 Interrupt Message Number |
/// | 0x04 | 4 | Device Capabilities (DevCap): bits 2:0 Max_Payload_Size Supported, 15 Role-Based Error Reporting, 28 FLR, **30 TEE-IO Supported** |
/// | 0x08 | 2 | Device Control |
/// | 0x0a | 2 | Device Status |
/// | 0x0c | 4 | Link Capabilities: bits 3:0 Max Link Speed, 9:4 Max Link Width, 31:24 Port Number |
/// | 0x10 | 2 | Link Control |
/// | 0x12 | 2 | Link Status |
/// | 0x24 | 4 | Device Capabilities 2 (version 2 only) |
///
/// Bytes that must lie below 0x100: ``sizeV1`` (version 1) or ``sizeV2`` (version 2).
public struct ExpressCapability: Hashable, Sendable {
    /// Bytes of a version 1 capability that are read (through Link Status): 0x14
    /// (Linux `PCI_CAP_EXP_ENDPOINT_SIZEOF_V1`).
    public static let sizeV1 = 0x14
    /// Bytes of a version 2 capability that are read (through Device Capabilities 2): 0x28.
    public static let sizeV2 = 0x28

    /// Device/Port Type (bits 7:4 of the PCI Express Capabilities register).
    public struct PortType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The 4-bit field.
        public let rawValue: UInt8
        /// Creates a value from the 4-bit field.
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// 0b0000 PCI Express Endpoint (`PCI_EXP_TYPE_ENDPOINT`).
        public static let endpoint = PortType(rawValue: 0x0)
        /// 0b0001 Legacy PCI Express Endpoint.
        public static let legacyEndpoint = PortType(rawValue: 0x1)
        /// 0b0100 Root Port of a Root Complex.
        public static let rootPort = PortType(rawValue: 0x4)
        /// 0b0101 Upstream Port of a switch (`PCI_EXP_TYPE_UPSTREAM`).
        public static let upstreamPort = PortType(rawValue: 0x5)
        /// 0b0110 Downstream Port of a switch.
        public static let downstreamPort = PortType(rawValue: 0x6)
        /// 0b0111 PCI Express to PCI/PCI-X bridge.
        public static let pcieToPCIBridge = PortType(rawValue: 0x7)
        /// 0b1000 PCI/PCI-X to PCI Express bridge.
        public static let pciToPCIeBridge = PortType(rawValue: 0x8)
        /// 0b1001 Root Complex Integrated Endpoint (`PCI_EXP_TYPE_RC_END`).
        public static let rcIntegratedEndpoint = PortType(rawValue: 0x9)
        /// 0b1010 Root Complex Event Collector.
        public static let rcEventCollector = PortType(rawValue: 0xA)

    /// The type as PCIe Base 6.x §7.5.3.2 names it ("Endpoint", "Upstream Port", …).
        public var description: String {
            switch rawValue {
            case 0x0: "Endpoint"
            case 0x1: "Legacy Endpoint"
            case 0x4: "Root Port"
            case 0x5: "Upstream Port"
            case 0x6: "Downstream Port"
            case 0x7: "PCIe to PCI/PCI-X Bridge"
            case 0x8: "PCI/PCI-X to PCIe Bridge"
            case 0x9: "Root Complex Integrated Endpoint"
            case 0xA: "Root Complex Event Collector"
            default: "Unknown type \(hex(rawValue))"
            }
        }
    }

    /// Offset of the capability.
    public let offset: Int
    /// The PCI Express Capabilities register (offset +0x02).
    public let capabilitiesRegister: UInt16
    /// Device Capabilities (offset +0x04).
    public let deviceCapabilities: UInt32
    /// Device Control (offset +0x08).
    public let deviceControl: UInt16
    /// Device Status (offset +0x0a).
    public let deviceStatus: UInt16
    /// Link Capabilities (offset +0x0c).
    public let linkCapabilities: UInt32
    /// Link Status (offset +0x12).
    public let linkStatus: UInt16
    /// Device Capabilities 2 (offset +0x24), version 2 capabilities only.
    public let deviceCapabilities2: UInt32?

    /// Reads the registers; the caller checked that ``sizeV1``/``sizeV2`` bytes fit.
    init(offset: Int, space: ConfigSpace.Space) {
        self.offset = offset
        capabilitiesRegister = space.u16(offset + 0x02)
        deviceCapabilities = space.u32(offset + 0x04)
        deviceControl = space.u16(offset + 0x08)
        deviceStatus = space.u16(offset + 0x0a)
        linkCapabilities = space.u32(offset + 0x0c)
        linkStatus = space.u16(offset + 0x12)
        deviceCapabilities2 = capabilitiesRegister & 0xF >= 2 ? space.u32(offset + 0x24) : nil
    }

    /// Capability version (bits 3:0).
    public var version: UInt8 { UInt8(capabilitiesRegister & 0xF) }
    /// Device/Port Type (bits 7:4).
    public var portType: PortType { PortType(rawValue: UInt8((capabilitiesRegister >> 4) & 0xF)) }
    /// Interrupt Message Number (bits 13:9).
    public var interruptMessageNumber: UInt8 { UInt8((capabilitiesRegister >> 9) & 0x1F) }
    /// DevCap bit 30, TEE-IO Supported (PCIe Base 6.x §7.5.3.3; Linux `PCI_EXP_DEVCAP_TEE`
    /// 0x40000000): the function implements the TEE Device Interface Security Protocol.
    public var teeIOSupported: Bool { deviceCapabilities & 0x4000_0000 != 0 }
    /// DevCap bit 28, Function Level Reset Capability (`PCI_EXP_DEVCAP_FLR`).
    public var flrSupported: Bool { deviceCapabilities & 0x1000_0000 != 0 }
    /// DevCap bits 2:0 as bytes: 128 << field.
    public var maxPayloadSize: Int { 128 << Int(deviceCapabilities & 0x7) }
    /// Link Capabilities bits 3:0, Max Link Speed (1 = 2.5 GT/s … 6 = 64 GT/s).
    public var maxLinkSpeed: UInt8 { UInt8(linkCapabilities & 0xF) }
    /// Link Capabilities bits 9:4, Max Link Width (lanes).
    public var maxLinkWidth: UInt8 { UInt8((linkCapabilities >> 4) & 0x3F) }
    /// Link Capabilities bits 31:24, Port Number.
    public var portNumber: UInt8 { UInt8(linkCapabilities >> 24) }
    /// Max Link Speed in GT/s as text ("2.5", "5", "8", "16", "32", "64"), nil when reserved.
    public var maxLinkSpeedText: String? {
        switch maxLinkSpeed {
        case 1: "2.5"
        case 2: "5"
        case 3: "8"
        case 4: "16"
        case 5: "32"
        case 6: "64"
        default: nil
        }
    }
}

// MARK: - MSI-X

/// The MSI-X capability (ID 0x11; PCI Local Bus 3.0 §6.8.2; Linux `PCI_MSIX_*`).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0x02 | 2 | Message Control: bits 10:0 Table Size − 1, 14 Function Mask, 15 MSI-X Enable |
/// | 0x04 | 4 | Table Offset (bits 31:3) / Table BIR (bits 2:0) |
/// | 0x08 | 4 | PBA Offset (bits 31:3) / PBA BIR (bits 2:0) |
public struct MSIXCapability: Hashable, Sendable {
    /// Bytes the capability occupies.
    public static let size = 12

    /// Offset of the capability.
    public let offset: Int
    /// Message Control (offset +0x02).
    public let messageControl: UInt16
    /// BAR index (BIR) holding the vector table.
    public let tableBIR: UInt8
    /// Byte offset of the vector table inside that BAR (8-byte aligned).
    public let tableOffset: UInt32
    /// BAR index holding the Pending Bit Array.
    public let pbaBIR: UInt8
    /// Byte offset of the PBA inside that BAR (8-byte aligned).
    public let pbaOffset: UInt32

    init(offset: Int, space: ConfigSpace.Space) {
        self.offset = offset
        messageControl = space.u16(offset + 2)
        let table = space.u32(offset + 4)
        let pba = space.u32(offset + 8)
        tableBIR = UInt8(table & 0x7)
        tableOffset = table & 0xFFFF_FFF8
        pbaBIR = UInt8(pba & 0x7)
        pbaOffset = pba & 0xFFFF_FFF8
    }

    /// Number of table entries (vectors): Table Size field + 1, 1-2048.
    public var tableSize: Int { Int(messageControl & 0x7FF) + 1 }
    /// Message Control bit 15.
    public var isEnabled: Bool { messageControl & 0x8000 != 0 }
    /// Message Control bit 14.
    public var isFunctionMasked: Bool { messageControl & 0x4000 != 0 }
    /// Bytes of the vector table: 16 per entry.
    public var tableByteCount: Int { tableSize * 16 }
    /// Bytes of the PBA: one bit per entry, in whole QWORDs.
    public var pbaByteCount: Int { (tableSize + 63) / 64 * 8 }
}

// MARK: - SR-IOV

/// The SR-IOV extended capability (ID 0x0010; PCIe Base 6.x §9.3.3; Linux `PCI_SRIOV_*`).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0x04 | 4 | SR-IOV Capabilities |
/// | 0x08 | 2 | SR-IOV Control: bit 0 VF Enable, 3 VF MSE, 4 ARI Capable Hierarchy |
/// | 0x0a | 2 | SR-IOV Status |
/// | 0x0c | 2 | InitialVFs |
/// | 0x0e | 2 | TotalVFs |
/// | 0x10 | 2 | NumVFs |
/// | 0x12 | 1 | Function Dependency Link |
/// | 0x14 | 2 | First VF Offset |
/// | 0x16 | 2 | VF Stride |
/// | 0x1a | 2 | VF Device ID |
/// | 0x1c | 4 | Supported Page Sizes |
/// | 0x20 | 4 | System Page Size |
/// | 0x24 | 24 | VF BAR0-5 |
/// | 0x3c | 4 | VF Migration State Array Offset |
public struct SRIOVCapability: Hashable, Sendable {
    /// Bytes the capability occupies.
    public static let size = 0x40

    /// Offset of the capability.
    public let offset: Int
    /// SR-IOV Capabilities (offset +0x04).
    public let capabilities: UInt32
    /// SR-IOV Control (offset +0x08).
    public let control: UInt16
    /// SR-IOV Status (offset +0x0a).
    public let status: UInt16
    /// InitialVFs (offset +0x0c).
    public let initialVFs: UInt16
    /// TotalVFs (offset +0x0e).
    public let totalVFs: UInt16
    /// NumVFs (offset +0x10): VFs currently set up.
    public let numVFs: UInt16
    /// Function Dependency Link (offset +0x12).
    public let functionDependencyLink: UInt8
    /// First VF Offset (offset +0x14): VF 1's routing ID minus the PF's.
    public let firstVFOffset: UInt16
    /// VF Stride (offset +0x16): routing ID distance between consecutive VFs.
    public let vfStride: UInt16
    /// VF Device ID (offset +0x1a).
    public let vfDeviceID: UInt16
    /// Supported Page Sizes (offset +0x1c); bit n = 4 KiB << n.
    public let supportedPageSizes: UInt32
    /// System Page Size (offset +0x20); bit n = 4 KiB << n.
    public let systemPageSize: UInt32
    /// VF BARs (offset +0x24…+0x3b): the base of VF 1's BAR; VF n's is `address + (n-1) ×
    /// size` where size is the per-VF size (see ``BAR/size``).
    public let vfBARs: [BAR]
    /// VF Migration State Array Offset (offset +0x3c).
    public let vfMigrationStateArray: UInt32

    init(offset: Int, space: ConfigSpace.Space, vfBARSizes: [Int: UInt64], warnings: inout [ConfigSpaceWarning]) {
        self.offset = offset
        capabilities = space.u32(offset + 0x04)
        control = space.u16(offset + 0x08)
        status = space.u16(offset + 0x0a)
        initialVFs = space.u16(offset + 0x0c)
        totalVFs = space.u16(offset + 0x0e)
        numVFs = space.u16(offset + 0x10)
        functionDependencyLink = space.u8(offset + 0x12)
        firstVFOffset = space.u16(offset + 0x14)
        vfStride = space.u16(offset + 0x16)
        vfDeviceID = space.u16(offset + 0x1a)
        supportedPageSizes = space.u32(offset + 0x1c)
        systemPageSize = space.u32(offset + 0x20)
        vfBARs = BAR.decode(space: space, firstRegister: offset + 0x24, count: 6, sizes: vfBARSizes,
                            isVF: true, warnings: &warnings)
        vfMigrationStateArray = space.u32(offset + 0x3c)
    }

    /// Control bit 0: VF Enable.
    public var vfEnabled: Bool { control & 0x1 != 0 }
    /// Control bit 3: VF Memory Space Enable.
    public var vfMemorySpaceEnabled: Bool { control & 0x8 != 0 }
    /// Control bit 4: ARI Capable Hierarchy.
    public var ariCapableHierarchy: Bool { control & 0x10 != 0 }
}

// MARK: - DOE

/// A Data Object Exchange mailbox (extended capability 0x002E; PCIe Base 6.x §7.9.24; Linux
/// `PCI_DOE_*`; spec tdisp-spdm.md §5.3). The mailbox is identified by its capability offset, as
/// Linux's `pci_find_doe_mailbox()` keys them.
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0x04 | 4 | DOE Capabilities: bit 0 Interrupt Support, bits 11:1 Interrupt Message Number |
/// | 0x08 | 4 | DOE Control: bit 0 Abort, bit 1 Interrupt Enable, bit 31 Go |
/// | 0x0c | 4 | DOE Status: bit 0 Busy, 1 Interrupt Status, 2 Error, 31 Data Object Ready |
/// | 0x10 | 4 | Write Data Mailbox |
/// | 0x14 | 4 | Read Data Mailbox |
public struct DOECapability: Hashable, Sendable {
    /// Bytes the capability occupies.
    public static let size = 0x18

    /// Offset of the capability: the mailbox's identity.
    public let offset: Int
    /// DOE Capabilities (offset +0x04).
    public let capabilities: UInt32
    /// DOE Control (offset +0x08) as dumped.
    public let control: UInt32
    /// DOE Status (offset +0x0c) as dumped.
    public let status: UInt32

    init(offset: Int, space: ConfigSpace.Space) {
        self.offset = offset
        capabilities = space.u32(offset + 0x04)
        control = space.u32(offset + 0x08)
        status = space.u32(offset + 0x0c)
    }

    /// Capabilities bit 0.
    public var interruptSupported: Bool { capabilities & 0x1 != 0 }
    /// Capabilities bits 11:1.
    public var interruptMessageNumber: UInt16 { UInt16((capabilities >> 1) & 0x7FF) }
    /// Control bit 1.
    public var interruptEnabled: Bool { control & 0x2 != 0 }
    /// Status bit 0.
    public var isBusy: Bool { status & 0x1 != 0 }
    /// Status bit 1.
    public var interruptStatus: Bool { status & 0x2 != 0 }
    /// Status bit 2.
    public var hasError: Bool { status & 0x4 != 0 }
    /// Status bit 31.
    public var dataObjectReady: Bool { status & 0x8000_0000 != 0 }
    /// Configuration-space offset of the Write Data Mailbox register.
    public var writeMailboxOffset: Int { offset + 0x10 }
    /// Configuration-space offset of the Read Data Mailbox register.
    public var readMailboxOffset: Int { offset + 0x14 }
}

// MARK: - IDE

/// The Integrity and Data Encryption extended capability (ID 0x0030; PCIe Base 6.x §7.9.26;
/// Linux `PCI_IDE_*` in include/uapi/linux/pci_regs.h; pciutils lib/header.h).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0x04 | 4 | IDE Capability: bit 0 Link IDE, 1 Selective IDE, 2 Flow-Through, 3 Partial Header Encryption, 4 Aggregation, 5 PCRC, 6 IDE_KM, 7 Selective IDE for Configuration Requests, 12:8 algorithms, 15:13 Link IDE TCs − 1, 23:16 Selective IDE Streams − 1, 24 TEE-Limited Stream, 25 XT |
/// | 0x08 | 4 | IDE Control |
/// | 0x0c | 8 × n | Link IDE stream blocks (control, status), n = TCs when Link IDE is supported |
/// | … | 20 + 12 × k | Selective IDE stream blocks: capability (bits 3:0 k), control, status, RID association 1 and 2, then k address association blocks |
public struct IDECapability: Hashable, Sendable {
    /// Bytes of the fixed part (header, capability, control).
    public static let minimumSize = 0x0c

    /// Offset of the capability.
    public let offset: Int
    /// IDE Capability register (offset +0x04).
    public let capabilities: UInt32
    /// IDE Control register (offset +0x08).
    public let control: UInt32
    /// Link IDE stream blocks that fit in the space, in order.
    public let linkStreams: [LinkStream]
    /// Selective IDE stream blocks that fit in the space, in order.
    public let selectiveStreams: [SelectiveStream]

    /// A Link IDE stream register block (8 bytes).
    public struct LinkStream: Hashable, Sendable {
        /// Offset of the block.
        public let offset: Int
        /// Link IDE Stream Control: bit 0 enable, bits 31:24 stream ID.
        public let control: UInt32
        /// Link IDE Stream Status: bits 3:0 state (0 insecure, 2 secure).
        public let status: UInt32
        /// Control bit 0.
        public var isEnabled: Bool { control & 1 != 0 }
        /// Control bits 31:24.
        public var streamID: UInt8 { UInt8(control >> 24) }
        /// Status bits 3:0.
        public var state: UInt8 { UInt8(status & 0xF) }
    }

    /// A Selective IDE stream register block (20 bytes + 12 per address association block).
    public struct SelectiveStream: Hashable, Sendable {
        /// Offset of the block.
        public let offset: Int
        /// Selective IDE Stream Capability: bits 3:0 address association blocks.
        public let capability: UInt32
        /// Selective IDE Stream Control: bit 0 enable, 22 default stream, 23 TEE-limited, 31:24 stream ID.
        public let control: UInt32
        /// Selective IDE Stream Status: bits 3:0 state (0 insecure, 2 secure).
        public let status: UInt32
        /// IDE RID Association Register 1: bits 23:8 RID limit.
        public let ridAssociation1: UInt32
        /// IDE RID Association Register 2: bit 0 valid, bits 23:8 RID base, 31:24 segment base.
        public let ridAssociation2: UInt32
        /// Capability bits 3:0.
        public var addressAssociationCount: Int { Int(capability & 0xF) }
        /// Control bit 0.
        public var isEnabled: Bool { control & 1 != 0 }
        /// Control bit 22.
        public var isDefaultStream: Bool { control & 0x40_0000 != 0 }
        /// Control bit 23.
        public var isTEELimited: Bool { control & 0x80_0000 != 0 }
        /// Control bits 31:24.
        public var streamID: UInt8 { UInt8(control >> 24) }
        /// Status bits 3:0.
        public var state: UInt8 { UInt8(status & 0xF) }
        /// RID association 2 bit 0.
        public var ridAssociationValid: Bool { ridAssociation2 & 1 != 0 }
        /// RID association 2 bits 23:8.
        public var ridBase: UInt16 { UInt16((ridAssociation2 >> 8) & 0xFFFF) }
        /// RID association 1 bits 23:8.
        public var ridLimit: UInt16 { UInt16((ridAssociation1 >> 8) & 0xFFFF) }
        /// Bytes of the block.
        public var byteCount: Int { 20 + 12 * addressAssociationCount }
    }

    init(offset: Int, space: ConfigSpace.Space, warnings: inout [ConfigSpaceWarning]) {
        self.offset = offset
        let capabilities = space.u32(offset + 0x04)
        self.capabilities = capabilities
        control = space.u32(offset + 0x08)
        let linkCount = capabilities & 0x1 != 0 ? Int((capabilities >> 13) & 0x7) + 1 : 0
        let selectiveCount = capabilities & 0x2 != 0 ? Int((capabilities >> 16) & 0xFF) + 1 : 0
        var cursor = offset + 0x0c
        var links: [LinkStream] = []
        var selective: [SelectiveStream] = []
        var truncated = false
        for _ in 0..<linkCount {
            guard space.fits(cursor, 8) else { truncated = true; break }
            links.append(LinkStream(offset: cursor, control: space.u32(cursor), status: space.u32(cursor + 4)))
            cursor += 8
        }
        if !truncated {
            for _ in 0..<selectiveCount {
                guard space.fits(cursor, 20) else { truncated = true; break }
                let stream = SelectiveStream(
                    offset: cursor, capability: space.u32(cursor), control: space.u32(cursor + 4),
                    status: space.u32(cursor + 8), ridAssociation1: space.u32(cursor + 12),
                    ridAssociation2: space.u32(cursor + 16))
                guard space.fits(cursor, stream.byteCount) else { truncated = true; break }
                selective.append(stream)
                cursor += stream.byteCount
            }
        }
        if truncated {
            warnings.append(.ideStreamBlocksTruncated(
                offset: offset, announced: linkCount + selectiveCount, kept: links.count + selective.count))
        }
        linkStreams = links
        selectiveStreams = selective
    }

    /// Capability bit 0.
    public var linkIDESupported: Bool { capabilities & 0x1 != 0 }
    /// Capability bit 1.
    public var selectiveIDESupported: Bool { capabilities & 0x2 != 0 }
    /// Capability bit 2.
    public var flowThroughSupported: Bool { capabilities & 0x4 != 0 }
    /// Capability bit 3.
    public var partialHeaderEncryptionSupported: Bool { capabilities & 0x8 != 0 }
    /// Capability bit 4.
    public var aggregationSupported: Bool { capabilities & 0x10 != 0 }
    /// Capability bit 5.
    public var pcrcSupported: Bool { capabilities & 0x20 != 0 }
    /// Capability bit 6: the IDE_KM protocol (over SPDM) is supported.
    public var ideKMSupported: Bool { capabilities & 0x40 != 0 }
    /// Capability bit 7.
    public var selectiveIDEForConfigurationSupported: Bool { capabilities & 0x80 != 0 }
    /// Capability bits 12:8 (0 = AES-GCM 256-bit key, 96-bit MAC).
    public var supportedAlgorithms: UInt8 { UInt8((capabilities >> 8) & 0x1F) }
    /// Capability bits 15:13 + 1: traffic classes supported for Link IDE.
    public var linkTrafficClassCount: Int { Int((capabilities >> 13) & 0x7) + 1 }
    /// Link IDE stream blocks announced: ``linkTrafficClassCount`` when Link IDE is supported, else 0.
    public var linkStreamCount: Int { linkIDESupported ? linkTrafficClassCount : 0 }
    /// Selective IDE streams announced: bits 23:16 + 1 when Selective IDE is supported, else 0.
    public var selectiveStreamCount: Int { selectiveIDESupported ? Int((capabilities >> 16) & 0xFF) + 1 : 0 }
    /// Capability bit 24: TEE-Limited Stream supported.
    public var teeLimitedStreamSupported: Bool { capabilities & 0x100_0000 != 0 }
    /// Capability bit 25: XT supported.
    public var xtSupported: Bool { capabilities & 0x200_0000 != 0 }
}

// MARK: - ARI, PASID, ATS

/// The ARI extended capability (ID 0x000E; PCIe Base 6.x §7.8.8; Linux `PCI_ARI_*`).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0x04 | 2 | ARI Capability: bit 0 MFVC Function Groups, 1 ACS Function Groups, 15:8 Next Function Number |
/// | 0x06 | 2 | ARI Control: bit 0 MFVC enable, 1 ACS enable, 6:4 Function Group |
public struct ARICapability: Hashable, Sendable {
    /// Bytes the capability occupies.
    public static let size = 8
    /// Offset of the capability.
    public let offset: Int
    /// ARI Capability register.
    public let capabilities: UInt16
    /// ARI Control register.
    public let control: UInt16

    init(offset: Int, space: ConfigSpace.Space) {
        self.offset = offset
        capabilities = space.u16(offset + 4)
        control = space.u16(offset + 6)
    }

    /// Capability bit 0.
    public var mfvcFunctionGroupsSupported: Bool { capabilities & 0x1 != 0 }
    /// Capability bit 1.
    public var acsFunctionGroupsSupported: Bool { capabilities & 0x2 != 0 }
    /// Capability bits 15:8: the next function number of this device (0 ends the chain).
    public var nextFunctionNumber: UInt8 { UInt8(capabilities >> 8) }
    /// Control bits 6:4.
    public var functionGroup: UInt8 { UInt8((control >> 4) & 0x7) }
}

/// The PASID extended capability (ID 0x001B; PCIe Base 6.x §7.8.9; Linux `PCI_PASID_*`).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0x04 | 2 | PASID Capability: bit 1 Execute Permission Supported, 2 Privileged Mode Supported, 12:8 Max PASID Width |
/// | 0x06 | 2 | PASID Control: bit 0 PASID Enable, 1 Execute Permission Enable, 2 Privileged Mode Enable |
public struct PASIDCapability: Hashable, Sendable {
    /// Bytes the capability occupies.
    public static let size = 8
    /// Offset of the capability.
    public let offset: Int
    /// PASID Capability register.
    public let capabilities: UInt16
    /// PASID Control register.
    public let control: UInt16

    init(offset: Int, space: ConfigSpace.Space) {
        self.offset = offset
        capabilities = space.u16(offset + 4)
        control = space.u16(offset + 6)
    }

    /// Capability bit 1.
    public var executePermissionSupported: Bool { capabilities & 0x2 != 0 }
    /// Capability bit 2.
    public var privilegedModeSupported: Bool { capabilities & 0x4 != 0 }
    /// Capability bits 12:8: PASID width in bits (lspci prints it in hex).
    public var maxPASIDWidth: UInt8 { UInt8((capabilities >> 8) & 0x1F) }
    /// Control bit 0.
    public var isEnabled: Bool { control & 0x1 != 0 }
    /// Control bit 1.
    public var executePermissionEnabled: Bool { control & 0x2 != 0 }
    /// Control bit 2.
    public var privilegedModeEnabled: Bool { control & 0x4 != 0 }
}

/// The ATS extended capability (ID 0x000F; PCIe Base 6.x §10.5.1; Linux `PCI_ATS_*`).
///
/// | offset | size | field |
/// | --- | --- | --- |
/// | 0x04 | 2 | ATS Capability: bits 4:0 Invalidate Queue Depth (0 = 32), 5 Page Aligned Request, 6 Global Invalidate Supported |
/// | 0x06 | 2 | ATS Control: bits 4:0 Smallest Translation Unit, 15 Enable |
public struct ATSCapability: Hashable, Sendable {
    /// Bytes the capability occupies.
    public static let size = 8
    /// Offset of the capability.
    public let offset: Int
    /// ATS Capability register.
    public let capabilities: UInt16
    /// ATS Control register.
    public let control: UInt16

    init(offset: Int, space: ConfigSpace.Space) {
        self.offset = offset
        capabilities = space.u16(offset + 4)
        control = space.u16(offset + 6)
    }

    /// Capability bits 4:0, with 0 meaning 32 (`PCI_ATS_MAX_QDEP`).
    public var invalidateQueueDepth: Int { capabilities & 0x1F == 0 ? 32 : Int(capabilities & 0x1F) }
    /// Capability bit 5.
    public var pageAlignedRequest: Bool { capabilities & 0x20 != 0 }
    /// Capability bit 6.
    public var globalInvalidateSupported: Bool { capabilities & 0x40 != 0 }
    /// Control bit 15.
    public var isEnabled: Bool { control & 0x8000 != 0 }
    /// Control bits 4:0: translations are at least 4 KiB << STU.
    public var smallestTranslationUnit: UInt8 { UInt8(control & 0x1F) }
}
