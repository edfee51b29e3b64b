import Kernel
import PCI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Devices from `lspci -vvv -xxxx` dumps for the `platform` step: the PCI module's topology
/// (functions and their VFs, EMU-PCI-1/2) turned into the kernel's view of each function.
///
/// Mapping (spec 6.2 inputs): address = the BDF; `expressType` = the PCI Express capability's
/// device/port type; `physicalFunction` for a VF; `hasIDE` = an IDE extended capability;
/// `teeIO` = DevCap bit 30; `parentBridge` = the bridge whose secondary bus holds the function.
/// `hasCMAMailbox`: a dump shows DOE mailboxes but not the protocols they serve, so any DOE
/// mailbox is taken to offer CMA (our choice, stated here; the kernel's pf0 constructor needs one
/// for a DSM, spec 6.2).
public enum DumpDevices {
    /// Largest dump file read (8 MiB).
    public static let maximumFileSize = 8 << 20

    /// The kernel functions described by the dump at `path` (relative to `baseDirectory`).
    ///
    /// - Throws: ``ScriptRunError`` naming the file for an unreadable file, a malformed dump (the
    ///   PCI module's message with its line), or an impossible topology.
    public static func functions(atPath path: String, baseDirectory: String?) throws(ScriptRunError) -> [KernelPCIFunction] {
        let resolved = path.hasPrefix("/") || baseDirectory == nil ? path : "\(baseDirectory ?? ".")/\(path)"
        guard let text = readTextFile(resolved, limit: maximumFileSize) else {
            throw ScriptRunError("cannot read the device dump \(resolved)")
        }
        return try functions(fromDump: text, name: path)
    }

    /// The kernel functions described by dump text.
    public static func functions(fromDump text: String, name: String = "dump") throws(ScriptRunError) -> [KernelPCIFunction] {
        let topology: PCITopology
        do { topology = try PCITopology(lspci: text) } catch {
            throw ScriptRunError("device dump \(name): \(error)")
        }
        func address(_ bdf: BDF) -> PCIFunctionAddress {
            PCIFunctionAddress(domain: bdf.domain, bus: bdf.bus, device: bdf.device, function: bdf.function)
        }
        return topology.functions.map { function in
            KernelPCIFunction(
                address: address(function.bdf),
                expressType: function.express.flatMap { PCIExpressPortType(rawValue: $0.portType.rawValue) },
                physicalFunction: function.physicalFunction.map(address),
                hasIDE: function.hasIDECapability,
                teeIO: function.teeIOSupported,
                hasCMAMailbox: !function.doeMailboxes.isEmpty,
                parentBridge: topology.parentBridge(of: function.bdf).map { address($0.bdf) })
        }
    }
}

/// Reads a whole file as UTF-8 text; nil when it cannot be read or is larger than `limit`.
public func readTextFile(_ path: String, limit: Int) -> String? {
    guard let handle = fopen(path, "rb") else { return nil }
    defer { fclose(handle) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, handle) }
        if count <= 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
        if bytes.count > limit { return nil }
    }
    if ferror(handle) != 0 { return nil }
    return String(decoding: bytes, as: UTF8.self)
}
