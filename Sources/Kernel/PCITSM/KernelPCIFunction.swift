import SystemPackage

/// A PCI function address: domain, bus, device (slot) and function, written `dddd:bb:dd.f`
/// (or `ddddd:` for domains above 0xFFFF, as the kernel sample's `10000:01:00.0`).
///
/// Source: Linux `pci_name()`; `pci_dev_id()` = `bus << 8 | devfn` (include/linux/pci.h).
public struct PCIFunctionAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// PCI segment (domain), 0 ... 0xFFFF_FFFF.
    public var domain: UInt32
    /// Bus number.
    public var bus: UInt8
    /// Device (slot) number, 0 ... 31.
    public var device: UInt8
    /// Function number, 0 ... 7.
    public var function: UInt8

    /// Creates an address; `device` is masked to 5 bits and `function` to 3 bits.
    public init(domain: UInt32 = 0, bus: UInt8, device: UInt8, function: UInt8) {
        self.domain = domain
        self.bus = bus
        self.device = device & 0x1F
        self.function = function & 0x07
    }

    /// Parses `dddd:bb:dd.f` or `bb:dd.f` (hex); nil if malformed or out of range.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let domainText = parts.count == 3 ? parts[0] : "0"
        let busText = parts[parts.count - 2]
        let slotParts = parts[parts.count - 1].split(separator: ".", omittingEmptySubsequences: false)
        guard slotParts.count == 2,
              let domain = UInt32(domainText, radix: 16),
              busText.count <= 2, let bus = UInt8(busText, radix: 16),
              slotParts[0].count <= 2, let device = UInt8(slotParts[0], radix: 16), device < 32,
              slotParts[1].count == 1, let function = UInt8(slotParts[1], radix: 16), function < 8
        else { return nil }
        self.init(domain: domain, bus: bus, device: device, function: function)
    }

    /// `devfn` = device << 3 | function.
    public var devfn: UInt8 { device << 3 | function }
    /// The routing ID (`pci_dev_id`): bus << 8 | devfn. The sample TSM's `tsm_bind` hook uses it as
    /// the `tdi_id` (spec 7.2).
    public var routingID: UInt16 { UInt16(bus) << 8 | UInt16(devfn) }
    /// The address of function `function` of the same slot.
    public func withFunction(_ function: UInt8) -> PCIFunctionAddress {
        PCIFunctionAddress(domain: domain, bus: bus, device: device, function: function)
    }

    /// `dddd:bb:dd.f` in lower-case hex, as sysfs names PCI devices.
    public var description: String {
        func hex(_ value: UInt64, _ width: Int) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(hex(UInt64(domain), 4)):\(hex(UInt64(bus), 2)):\(hex(UInt64(device), 2)).\(function)"
    }

    /// Orders by (domain, bus, devfn), the order in which the PCI core enumerates functions.
    public static func < (a: Self, b: Self) -> Bool {
        (a.domain, a.bus, a.devfn) < (b.domain, b.bus, b.devfn)
    }
}

/// The PCI Express device/port type (PCIe Base, Express Capabilities register bits 7:4), as
/// `pci_pcie_type()` returns it.
public enum PCIExpressPortType: UInt8, Sendable, Hashable {
    /// PCI Express Endpoint (`PCI_EXP_TYPE_ENDPOINT`).
    case endpoint = 0x0
    /// Legacy PCI Express Endpoint.
    case legacyEndpoint = 0x1
    /// Root Port of a Root Complex.
    case rootPort = 0x4
    /// Upstream Port of a switch (`PCI_EXP_TYPE_UPSTREAM`).
    case upstreamPort = 0x5
    /// Downstream Port of a switch.
    case downstreamPort = 0x6
    /// PCI Express to PCI/PCI-X bridge (value 7).
    case pcieToPCIBridge = 0x7
    /// PCI/PCI-X to PCI Express bridge (value 8).
    case pciToPCIeBridge = 0x8
    /// Root Complex Integrated Endpoint (`PCI_EXP_TYPE_RC_END`).
    case rootComplexIntegratedEndpoint = 0x9
    /// Root Complex Event Collector.
    case rootComplexEventCollector = 0xA
}

/// What the simulated kernel needs to know of one PCI function (the parts of `struct pci_dev` that
/// pci-tsm reads, spec 6.2): its address, PCIe type, SR-IOV relation, the capabilities that make it
/// DSM-capable, and its place in the topology.
///
/// This is the kernel's view; the `PCI` module's model (built from dumps) is converted into it.
public struct KernelPCIFunction: Sendable, Hashable {
    /// The function's address.
    public var address: PCIFunctionAddress
    /// The PCIe port type; `nil` for a conventional PCI function (no Express capability).
    public var expressType: PCIExpressPortType?
    /// For a VF, the address of its PF; `nil` for a physical function.
    public var physicalFunction: PCIFunctionAddress?
    /// Has an IDE extended capability (`pdev->ide_cap`).
    public var hasIDE: Bool
    /// Device Capabilities TEE-IO supported bit (`PCI_EXP_DEVCAP_TEE`).
    public var teeIO: Bool
    /// Has a DOE mailbox supporting the PCI-SIG CMA feature (needed by the DSM context, spec 6.2).
    public var hasCMAMailbox: Bool
    /// The bridge above this function (root port or switch downstream port), `nil` on a root bus.
    /// Also the bridge for a VF (a VF's parent is its PF's bus bridge).
    public var parentBridge: PCIFunctionAddress?

    /// Creates a function description.
    public init(
        address: PCIFunctionAddress, expressType: PCIExpressPortType? = .endpoint,
        physicalFunction: PCIFunctionAddress? = nil, hasIDE: Bool = false, teeIO: Bool = false,
        hasCMAMailbox: Bool = false, parentBridge: PCIFunctionAddress? = nil
    ) {
        self.address = address
        self.expressType = expressType
        self.physicalFunction = physicalFunction
        self.hasIDE = hasIDE
        self.teeIO = teeIO
        self.hasCMAMailbox = hasCMAMailbox
        self.parentBridge = parentBridge
    }

    /// True for an SR-IOV virtual function.
    public var isVirtualFunction: Bool { physicalFunction != nil }

    /// `is_pci_tsm_pf0()` — "can be a DSM" (spec 6.2): PCIe, not a VF, type Endpoint, Upstream
    /// Port or RC-integrated Endpoint, has IDE or DEVCAP.TEE, and is function 0.
    public var canBeDSM: Bool {
        guard let type = expressType, !isVirtualFunction else { return false }
        guard type == .endpoint || type == .upstreamPort || type == .rootComplexIntegratedEndpoint else { return false }
        guard hasIDE || teeIO else { return false }
        return address.function == 0
    }
}

/// A device an iommufd DEVICE object can stand for: a PCI function, or a non-PCI (platform) device,
/// for which tsm-core answers `EINVAL` (spec 5.2).
public enum KernelDeviceIdentity: Hashable, Sendable, CustomStringConvertible {
    /// A PCI function.
    case pci(PCIFunctionAddress)
    /// A platform (non-PCI) device, by name.
    case platform(String)

    /// The PCI address (`dddd:bb:dd.f`) or the platform device's name.
    public var description: String {
        switch self {
        case .pci(let address): return address.description
        case .platform(let name): return name
        }
    }
}

extension KernelPCIFunction {
    /// The kernel sample's emulated topology (spec 7.1, Linux samples/devsec/bus.c): two host
    /// bridges (PCI domains 0x10000 and 0x10001), each with one root port and one two-function
    /// Endpoint (fn 0 = DSM with DEVCAP.TEE, IDE and a CMA DOE mailbox; fn 1 = assignable
    /// sub-function with DEVCAP.TEE). Devices `10000:01:00.0/.1` and `10001:03:00.0/.1`, root
    /// ports `10000:00:00.0` and `10001:02:00.0`.
    public static func devsecSampleTopology() -> [KernelPCIFunction] {
        var functions: [KernelPCIFunction] = []
        for (domain, rootBus) in [(UInt32(0x10000), UInt8(0x00)), (UInt32(0x10001), UInt8(0x02))] {
            let port = PCIFunctionAddress(domain: domain, bus: rootBus, device: 0, function: 0)
            functions.append(KernelPCIFunction(address: port, expressType: .rootPort, hasIDE: true))
            let fn0 = PCIFunctionAddress(domain: domain, bus: rootBus + 1, device: 0, function: 0)
            functions.append(KernelPCIFunction(address: fn0, hasIDE: true, teeIO: true, hasCMAMailbox: true, parentBridge: port))
            functions.append(KernelPCIFunction(address: fn0.withFunction(1), teeIO: true, parentBridge: port))
        }
        return functions
    }
}
