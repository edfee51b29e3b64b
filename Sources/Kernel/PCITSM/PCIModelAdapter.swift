import PCI

extension PCIFunctionAddress {
    /// The kernel address of a `PCI.BDF`.
    public init(_ bdf: BDF) {
        self.init(domain: bdf.domain, bus: bdf.bus, device: bdf.device, function: bdf.function)
    }

    /// The `PCI.BDF` of this address (never nil: device and function are masked on creation).
    public var bdf: BDF? { BDF(domain: domain, bus: bus, device: device, function: function) }
}

extension KernelPCIFunction {
    /// The kernel's view of a function of the `PCI` module's model (built from an lspci dump).
    ///
    /// - `expressType`: the PCI Express capability's port type (nil without one);
    /// - `hasIDE`: an IDE extended capability is present; `teeIO`: DevCap bit 30;
    /// - `hasCMAMailbox`: the function has a DOE mailbox. A dump cannot show which data object
    ///   protocols a mailbox serves (discovery is a runtime exchange), so any DOE mailbox counts as
    ///   the PCI-SIG CMA one (EMU-KERNEL-11);
    /// - `parentBridge`: given by the caller (see ``fromTopology(_:)``).
    public init(_ function: PCIFunction, parentBridge: PCIFunctionAddress? = nil) {
        self.init(
            address: PCIFunctionAddress(function.bdf),
            expressType: function.express.flatMap { PCIExpressPortType(rawValue: $0.portType.rawValue) },
            physicalFunction: function.physicalFunction.map(PCIFunctionAddress.init),
            hasIDE: function.hasIDECapability,
            teeIO: function.teeIOSupported,
            hasCMAMailbox: !function.doeMailboxes.isEmpty,
            parentBridge: parentBridge)
    }

    /// Every function of a `PCI.PCITopology`, with parent bridges derived from the bridges' bus
    /// numbers: a function's parent is the bridge in the same domain whose secondary bus is the
    /// function's bus (a VF takes its PF's parent).
    public static func fromTopology(_ topology: PCITopology) -> [KernelPCIFunction] {
        var parentOfBus: [UInt64: PCIFunctionAddress] = [:]
        for function in topology.functions {
            if let buses = function.bridgeBuses {
                parentOfBus[UInt64(function.bdf.domain) << 8 | UInt64(buses.secondary)] = PCIFunctionAddress(function.bdf)
            }
        }
        func parent(_ bdf: BDF) -> PCIFunctionAddress? { parentOfBus[UInt64(bdf.domain) << 8 | UInt64(bdf.bus)] }
        return topology.functions.map { function in
            let anchor = function.physicalFunction ?? function.bdf
            return KernelPCIFunction(function, parentBridge: parent(anchor))
        }
    }
}
