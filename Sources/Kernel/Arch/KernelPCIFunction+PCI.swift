import PCI
import TDISP

extension KernelPCIFunction {
    /// The kernel's view of a function of the `PCI` module's dump-based model (docs/pci.md).
    ///
    /// | kernel field | from the PCI model |
    /// |---|---|
    /// | `address` | the BDF (domain, bus, device, function) |
    /// | `expressType` | the Express capability's Device/Port Type (bits 7:4); `nil` without one. A VF (the model gives VFs no capabilities) takes its PF's type |
    /// | `physicalFunction` | the PF of a VF |
    /// | `hasIDE` | an IDE extended capability (ID 0x0030) is listed (`pdev->ide_cap`) |
    /// | `teeIO` | DevCap bit 30, TEE-IO Supported (`PCI_EXP_DEVCAP_TEE`); a VF takes its PF's |
    /// | `hasCMAMailbox` | at least one DOE mailbox on a DSM-capable function (EMU-ARCH-1) |
    /// | `parentBridge` | the topology's parent bridge (a VF's is its PF's) |
    ///
    /// EMU-ARCH-1: an `lspci` dump shows DOE mailboxes but not the data object protocols they
    /// serve (discovery is not dumped), so a DOE mailbox on a function that can be a DSM is taken
    /// to serve CMA/SPDM; other functions get no CMA mailbox.
    ///
    /// Source: kernel-uapi.md §6.2 (`is_pci_tsm_pf0`, the DOE requirement of the DSM context).
    public init(_ function: PCIFunction, in topology: PCITopology) {
        let pf = function.physicalFunction.flatMap { topology[$0] }
        let express = function.express ?? (function.isVirtual ? pf?.express : nil)
        let bdf = function.bdf
        self.init(
            address: PCIFunctionAddress(bdf),
            expressType: express.flatMap { PCIExpressPortType(rawValue: $0.portType.rawValue) },
            physicalFunction: function.physicalFunction.map(PCIFunctionAddress.init),
            hasIDE: function.hasIDECapability,
            teeIO: express?.teeIOSupported ?? false,
            hasCMAMailbox: function.canBeDSM && !function.doeMailboxes.isEmpty,
            parentBridge: topology.parentBridge(of: bdf).map { PCIFunctionAddress($0.bdf) })
    }

    /// Every function of `topology` (PFs and VFs), in the topology's order.
    public static func functions(of topology: PCITopology) -> [KernelPCIFunction] {
        topology.functions.map { KernelPCIFunction($0, in: topology) }
    }
}

extension PCIFunctionAddress {
    /// The kernel address of a `PCI` module BDF (same four numbers).
    public init(_ bdf: BDF) {
        self.init(domain: bdf.domain, bus: bdf.bus, device: bdf.device, function: bdf.function)
    }

    /// The `PCI` module BDF of this address (always representable: the fields are masked alike).
    public var bdf: BDF {
        BDF(domain: domain, routingID: routingID)
    }

    /// The TDISP FUNCTION_ID of this function (tdisp-spdm.md §2.1): the routing ID in bits 15:0,
    /// and for a non-zero PCI domain the Requester Segment in bits 23:16 with bit 24 set, as
    /// `Device.TDIFunction(_:in:)` builds it for the DSM. `nil` for a domain above 255 (the
    /// segment is 8 bits), which no DSM built from a dump can serve.
    public var functionID: FunctionID? {
        guard domain <= 0xFF else { return nil }
        return FunctionID(requesterID: routingID, segment: domain == 0 ? nil : UInt8(domain))
    }
}
