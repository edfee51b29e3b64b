/// A PCI function address: segment (domain), bus, device and function, as Linux prints it
/// (`dddd:bb:dd.f`, all hexadecimal).
///
/// The 16-bit routing ID (Requester ID) of a function is `bus << 8 | device << 3 | function`
/// (PCIe Base 6.x §2.2.6.2). With ARI the low 8 bits are a single function number; this type
/// keeps Linux's split of those bits into `device` (bits 7:3) and `function` (bits 2:0), which is
/// what `PCI_SLOT()` / `PCI_FUNC()` in include/uapi/linux/pci.h compute and what `lspci` prints.
public struct BDF: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// PCI segment group (Linux "domain"). Linux prints it with at least 4 hex digits; emulated
    /// hierarchies use values above 0xFFFF (the kernel's samples/devsec uses 0x10000).
    public let domain: UInt32
    /// Bus number, 0-255.
    public let bus: UInt8
    /// Device number, 0-31 (bits 7:3 of devfn).
    public let device: UInt8
    /// Function number, 0-7 (bits 2:0 of devfn).
    public let function: UInt8

    /// Creates an address; returns nil when `device` > 31 or `function` > 7.
    public init?(domain: UInt32 = 0, bus: UInt8, device: UInt8, function: UInt8) {
        guard device < 32, function < 8 else { return nil }
        self.domain = domain
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Creates the address of a routing ID (`bus << 8 | devfn`) in `domain`.
    public init(domain: UInt32 = 0, routingID: UInt16) {
        self.domain = domain
        bus = UInt8(truncatingIfNeeded: routingID >> 8)
        device = UInt8(truncatingIfNeeded: routingID >> 3) & 0x1F
        function = UInt8(truncatingIfNeeded: routingID) & 0x7
    }

    /// Parses `dddd:bb:dd.f` or `bb:dd.f` (domain 0), hexadecimal, case-insensitive, as `lspci`
    /// (with or without `-D`) and sysfs print it. Returns nil for anything else, including a
    /// device above 0x1f or a function above 7.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let domainText: Substring
        let busText: Substring
        let rest: Substring
        switch parts.count {
        case 2: (domainText, busText, rest) = ("0", Substring(parts[0]), Substring(parts[1]))
        case 3: (domainText, busText, rest) = (Substring(parts[0]), Substring(parts[1]), Substring(parts[2]))
        default: return nil
        }
        let devFn = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard devFn.count == 2,
              (1...8).contains(domainText.count), (1...2).contains(busText.count),
              (1...2).contains(devFn[0].count), devFn[1].count == 1,
              domainText.allSatisfy(\.isHexDigit), busText.allSatisfy(\.isHexDigit),
              devFn[0].allSatisfy(\.isHexDigit), devFn[1].allSatisfy(\.isHexDigit),
              let domain = UInt32(domainText, radix: 16),
              let bus = UInt8(busText, radix: 16),
              let device = UInt8(devFn[0], radix: 16),
              let function = UInt8(devFn[1], radix: 16)
        else { return nil }
        self.init(domain: domain, bus: bus, device: device, function: function)
    }

    /// `device << 3 | function`, the kernel's `devfn`.
    public var devfn: UInt8 { device << 3 | function }

    /// `bus << 8 | devfn`: the routing ID (Requester ID) of the function.
    public var routingID: UInt16 { UInt16(bus) << 8 | UInt16(devfn) }

    /// The address of function `function` in the same slot (same domain, bus and device);
    /// nil when `function` > 7.
    public func withFunction(_ function: UInt8) -> BDF? {
        BDF(domain: domain, bus: bus, device: device, function: function)
    }

    /// `dddd:bb:dd.f`, lower-case hex, domain with at least 4 digits (Linux's `pci_name()`).
    public var description: String {
        let domainHex = String(domain, radix: 16)
        return String(repeating: "0", count: max(0, 4 - domainHex.count)) + domainHex + ":"
            + hex2(bus) + ":" + hex2(device) + "." + String(function, radix: 16)
    }

    /// Orders by domain, then routing ID.
    public static func < (lhs: BDF, rhs: BDF) -> Bool {
        (lhs.domain, lhs.routingID) < (rhs.domain, rhs.routingID)
    }
}

/// Two lower-case hex digits.
func hex2(_ value: UInt8) -> String {
    let text = String(value, radix: 16)
    return text.count == 1 ? "0" + text : text
}

/// `0x` + lower-case hex.
func hex(_ value: some BinaryInteger) -> String { "0x" + String(value, radix: 16) }
