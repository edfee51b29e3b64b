/// Something that holds a conventional and an extended capability list: a ``ConfigSpace`` or a
/// ``PCIFunction``. The extension gives typed access to the decoded capabilities.
public protocol CapabilityLists {
    /// The conventional capability list, in list order.
    var capabilities: [Capability] { get }
    /// The extended capability list, in list order.
    var extendedCapabilities: [ExtendedCapability] { get }
}

extension CapabilityLists {
    /// The PCI Express capability (ID 0x10), if present.
    public var express: ExpressCapability? {
        capabilities.lazy.compactMap { if case .express(let value) = $0.body { value } else { nil } }.first
    }
    /// The MSI-X capability (ID 0x11), if present.
    public var msix: MSIXCapability? {
        capabilities.lazy.compactMap { if case .msix(let value) = $0.body { value } else { nil } }.first
    }
    /// The SR-IOV extended capability, if present and decoded.
    public var sriov: SRIOVCapability? {
        extendedCapabilities.lazy.compactMap { if case .sriov(let value) = $0.body { value } else { nil } }.first
    }
    /// Every decoded DOE mailbox, in list order.
    public var doeMailboxes: [DOECapability] {
        extendedCapabilities.compactMap { if case .doe(let value) = $0.body { value } else { nil } }
    }
    /// The IDE extended capability, if present and decoded.
    public var ide: IDECapability? {
        extendedCapabilities.lazy.compactMap { if case .ide(let value) = $0.body { value } else { nil } }.first
    }
    /// The ARI extended capability, if present and decoded.
    public var ari: ARICapability? {
        extendedCapabilities.lazy.compactMap { if case .ari(let value) = $0.body { value } else { nil } }.first
    }
    /// The PASID extended capability, if present and decoded.
    public var pasid: PASIDCapability? {
        extendedCapabilities.lazy.compactMap { if case .pasid(let value) = $0.body { value } else { nil } }.first
    }
    /// The ATS extended capability, if present and decoded.
    public var ats: ATSCapability? {
        extendedCapabilities.lazy.compactMap { if case .ats(let value) = $0.body { value } else { nil } }.first
    }
    /// True when an IDE extended capability (ID 0x0030) is in the list, decoded or not: Linux's
    /// `pdev->ide_cap` as kernel-uapi.md §6.2 uses it.
    public var hasIDECapability: Bool { extendedCapabilities.contains { $0.id == 0x0030 } }
    /// DevCap bit 30 (TEE-IO Supported) of the PCI Express capability; false without one.
    public var teeIOSupported: Bool { express?.teeIOSupported ?? false }
}
