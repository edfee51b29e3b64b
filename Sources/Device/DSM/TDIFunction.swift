import TDISP

/// The DSM's description of one function that can be a TDI: what the interface report is built
/// from. Deliberately independent of the `PCI` module's model (a builder from it lives in
/// `TDIFunction+PCI.swift`), so firmware models and tests can describe a function directly.
///
/// Only memory BARs are listed (I/O BARs are never part of a TDI's MMIO ranges); a BAR whose
/// size is 0 is skipped by the report builder (see ``InterfaceReportBuilder``).
public struct TDIFunction: Hashable, Sendable {
    /// FUNCTION_ID of the TDI: Requester ID (and segment) of the function.
    public var functionID: FunctionID
    /// The physical function this is a VF of, nil for a PF or a non-SR-IOV function. An FLR of
    /// the PF also resets its VFs (``DSM/detect(_:)``).
    public var physicalFunction: FunctionID?
    /// Memory BARs, in any order (the report lists them by ascending index).
    public var bars: [TDIBAR]
    /// The MSI-X capability, if the function has one.
    public var msix: TDIMSIX?
    /// The function generates DMA without a PASID (INTERFACE_INFO bit 1). Default true.
    public var dmaWithoutPASID: Bool
    /// PASID capability present and enabled: DMA with PASID (INTERFACE_INFO bit 2).
    public var pasidEnabled: Bool
    /// ATS capability present and enabled (INTERFACE_INFO bit 3).
    public var atsEnabled: Bool
    /// PRS (Page Request) capability present and enabled (INTERFACE_INFO bit 4).
    public var prsEnabled: Bool
    /// DEVICE_SPECIFIC_INFO placed at the end of the report.
    public var deviceSpecificInfo: [UInt8]

    /// Creates a function description; DMA without PASID is on by default.
    public init(functionID: FunctionID, physicalFunction: FunctionID? = nil, bars: [TDIBAR], msix: TDIMSIX? = nil,
                dmaWithoutPASID: Bool = true, pasidEnabled: Bool = false, atsEnabled: Bool = false,
                prsEnabled: Bool = false, deviceSpecificInfo: [UInt8] = []) {
        self.functionID = functionID
        self.physicalFunction = physicalFunction
        self.bars = bars
        self.msix = msix
        self.dmaWithoutPASID = dmaWithoutPASID
        self.pasidEnabled = pasidEnabled
        self.atsEnabled = atsEnabled
        self.prsEnabled = prsEnabled
        self.deviceSpecificInfo = deviceSpecificInfo
    }

    /// The INTERFACE_ID naming this TDI (FUNCTION_ID, reserved 0).
    public var interfaceID: InterfaceID { InterfaceID(functionID: functionID) }
}

/// One memory BAR of a ``TDIFunction``.
public struct TDIBAR: Hashable, Sendable {
    /// BAR index 0-5 (for a 64-bit BAR, the index of its low dword). Used as RANGE_ID.
    public var index: UInt8
    /// Base address in bytes, as programmed.
    public var address: UInt64
    /// Size in bytes (a power of two for a real BAR; 0 means unknown/unassigned: not reported).
    public var size: UInt64
    /// A 64-bit BAR (occupies two BAR registers).
    public var is64Bit: Bool
    /// A prefetchable BAR.
    public var prefetchable: Bool
    /// The device lets SET_MMIO_ATTRIBUTE change this BAR's ranges (RANGE_ATTRIBUTES bit 3).
    public var memoryAttributeUpdatable: Bool
    /// The BAR's ranges are not TEE memory (RANGE_ATTRIBUTES bit 2), e.g. a doorbell the host keeps.
    public var nonTEE: Bool

    /// Creates a BAR description.
    public init(index: UInt8, address: UInt64, size: UInt64, is64Bit: Bool = true, prefetchable: Bool = false,
                memoryAttributeUpdatable: Bool = false, nonTEE: Bool = false) {
        self.index = index
        self.address = address
        self.size = size
        self.is64Bit = is64Bit
        self.prefetchable = prefetchable
        self.memoryAttributeUpdatable = memoryAttributeUpdatable
        self.nonTEE = nonTEE
    }
}

/// Where a function's MSI-X table and PBA live (PCIe Base §7.7.2: Table/PBA Offset/BIR).
///
/// Sizes in bytes: the table holds 16 bytes per vector, the PBA one bit per vector rounded up
/// to whole QWORDs (``init(tableBIR:tableOffset:pbaBIR:pbaOffset:vectors:messageControl:)``).
public struct TDIMSIX: Hashable, Sendable {
    /// Table BIR: the BAR holding the MSI-X table.
    public var tableBIR: UInt8
    /// Table offset in that BAR, bytes.
    public var tableOffset: UInt32
    /// Table size, bytes (16 per vector).
    public var tableSize: UInt32
    /// PBA BIR: the BAR holding the Pending Bit Array.
    public var pbaBIR: UInt8
    /// PBA offset in that BAR, bytes.
    public var pbaOffset: UInt32
    /// PBA size, bytes.
    public var pbaSize: UInt32
    /// The capability's Message Control register, copied into the report when LOCK_MSIX is set.
    public var messageControl: UInt16

    /// Creates an MSI-X description from explicit sizes.
    public init(tableBIR: UInt8, tableOffset: UInt32, tableSize: UInt32, pbaBIR: UInt8, pbaOffset: UInt32,
                pbaSize: UInt32, messageControl: UInt16) {
        self.tableBIR = tableBIR
        self.tableOffset = tableOffset
        self.tableSize = tableSize
        self.pbaBIR = pbaBIR
        self.pbaOffset = pbaOffset
        self.pbaSize = pbaSize
        self.messageControl = messageControl
    }

    /// Sizes from the vector count (1-2048): table 16·N bytes, PBA ⌈N/64⌉·8 bytes.
    public init(tableBIR: UInt8, tableOffset: UInt32, pbaBIR: UInt8, pbaOffset: UInt32, vectors: Int,
                messageControl: UInt16) {
        let count = UInt32(clamping: max(0, min(vectors, 2048)))
        self.init(tableBIR: tableBIR, tableOffset: tableOffset, tableSize: 16 * count, pbaBIR: pbaBIR,
                  pbaOffset: pbaOffset, pbaSize: (count + 63) / 64 * 8, messageControl: messageControl)
    }
}
