import ArgumentParser
import KernelScript
import PCI
import SystemPackage

/// `tsmctl pci DUMP [--json] [--vfs N]`: decode an `lspci -vvv -xxxx` (or `-xxx`) dump and print
/// its devices, their functions (PF and VFs), BARs and capabilities.
///
/// Exit status: 0 on success; 2 when the file cannot be read or the dump is malformed, with one
/// line on standard error naming the input and the problem (line or offset).
struct PCICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pci",
        abstract: "Decode an lspci dump: devices, functions (PF and VFs), BARs and capabilities.",
        discussion: """
            DUMP is what `lspci -vvv -xxxx` (or `-xxx`) prints, or a bare hex block; several \
            devices may share a file. The model is built from the configuration-space bytes; BAR \
            sizes come from the text's [size=...] or, when absent, are an upper bound derived \
            from the address's alignment. See docs/pci.md.
            """)

    @Argument(help: "The dump file.")
    var dump: String

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    @Option(name: .long, help: "VFs to build per SR-IOV PF: total (default), initial, enabled, none, or a number.")
    var vfs: String = "total"

    func run() throws {
        let count: PCITopology.VFCount
        switch vfs {
        case "total": count = .total
        case "initial": count = .initial
        case "enabled": count = .enabled
        case "none": count = .none
        default:
            guard let number = Int(vfs), number >= 0 else {
                throw ValidationError("--vfs must be total, initial, enabled, none or a number, not '\(vfs)'")
            }
            count = .exactly(number)
        }
        let text: String
        do {
            text = try Self.readFile(dump)
        } catch {
            Self.fail("cannot read '\(dump)': \(error)")
        }
        let parsed: LspciDump
        let topology: PCITopology
        do {
            parsed = try LspciDump.parse(text)
            topology = try PCITopology(dump: parsed, vfs: count)
        } catch let error as PCIDumpError {
            Self.fail("\(dump): \(error)")
        } catch let error as TopologyError {
            Self.fail("\(dump): \(error)")
        }
        let report = PCIReport(dump: parsed, topology: topology)
        print(json ? report.json().render() : report.text(), terminator: json ? "\n" : "")
    }

    /// Prints `message` to standard error as one line and exits with status 2.
    static func fail(_ message: String) -> Never {
        let line = "tsmctl pci: " + message.split(whereSeparator: \.isNewline).joined(separator: " ") + "\n"
        _ = try? FileDescriptor.standardError.writeAll(Array(line.utf8))
        Self.exit(withError: ExitCode(2))
    }

    /// Reads a whole file (at most 64 MiB) as UTF-8; throws the `Errno` of open/read.
    static func readFile(_ path: String) throws -> String {
        let fd = try FileDescriptor.open(FilePath(path), .readOnly)
        defer { try? fd.close() }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = try buffer.withUnsafeMutableBytes { try fd.read(into: $0) }
            if count == 0 { break }
            data += buffer[0..<count]
            guard data.count <= 64 << 20 else { throw PCIFileTooLarge() }
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A dump file over 64 MiB.
struct PCIFileTooLarge: Error, CustomStringConvertible {
    var description: String { "file larger than 64 MiB" }
}

/// The printable view of a dump and its topology.
struct PCIReport {
    let dump: LspciDump
    let topology: PCITopology

    // MARK: Text

    func text() -> String {
        var out = ""
        for device in dump.devices {
            guard let pf = topology[device.bdf] else { continue }
            out += "\(pf.bdf) \(id(pf))" + (device.title.map { "  \($0)" } ?? "") + "\n"
            if let config = pf.config {
                out += "  header: \(config.headerType)\(config.isMultiFunction ? ", multi-function" : ""), "
                    + "class \(hex6(config.classCode)), revision \(hex2(config.revisionID)), "
                    + "\(config.hasExtendedSpace ? "4096" : "256")-byte image (dump line \(device.line))\n"
            }
            out += "  DSM: \(dsmLine(pf))\n"
            out += barLines(pf.bars, indent: "  ")
            if let rom = pf.config?.expansionROM {
                out += "  Expansion ROM: \(hexString(rom.address))\(rom.isEnabled ? "" : " [disabled]")"
                    + (rom.size.map { ", size \(hexString($0)) (\(rom.sizeSource?.description ?? ""))" } ?? "") + "\n"
            }
            if !pf.capabilities.isEmpty {
                out += "  Capabilities:\n"
                for capability in pf.capabilities {
                    out += "    [\(short(capability.offset))] \(capability.name)\(capabilityDetail(capability))\n"
                }
            }
            if !pf.extendedCapabilities.isEmpty {
                out += "  Extended capabilities:\n"
                for capability in pf.extendedCapabilities {
                    out += "    [\(short(capability.offset)) v\(capability.version)] \(capability.name)"
                        + "\(extendedDetail(capability))\n"
                    if case .sriov(let sriov) = capability.body {
                        out += barLines(sriov.vfBARs, indent: "      VF ")
                    }
                }
            }
            for warning in pf.config?.warnings ?? [] {
                out += "  warning: \(warning)\n"
            }
            let vfs = topology.virtualFunctions(of: pf.bdf)
            if !vfs.isEmpty {
                out += "  VFs (\(vfs.count)):\n"
                for vf in vfs {
                    out += "    \(vf.bdf) VF \(vf.vfIndex ?? 0) \(id(vf)), RID \(hex4(vf.bdf.routingID)), DSM: \(dsmLine(vf))\n"
                    out += barLines(vf.bars, indent: "      ")
                }
            }
        }
        return out
    }

    private func id(_ function: PCIFunction) -> String {
        "[\(hex4(function.vendorID)):\(hex4(function.deviceID))]"
    }

    private func dsmLine(_ function: PCIFunction) -> String {
        var parts: [String] = []
        if function.canBeDSM {
            parts.append("can be a DSM")
        } else if let dsm = topology.findDSM(for: function.bdf) {
            parts.append("managed by \(dsm.bdf)")
        } else {
            parts.append("none")
        }
        var facts: [String] = []
        if let express = function.express { facts.append(express.portType.description) }
        facts.append("TEE-IO" + (function.teeIOSupported ? "+" : "-"))
        facts.append("IDE" + (function.hasIDECapability ? "+" : "-"))
        return parts.joined() + " (" + facts.joined(separator: ", ") + ")"
    }

    private func barLines(_ bars: [BAR], indent: String) -> String {
        bars.map { bar in
            var line = "\(indent)BAR \(bar.index): \(bar.space)"
            if bar.isMemory { line += bar.isPrefetchable ? ", prefetchable" : ", non-prefetchable" }
            line += " at \(hexString(bar.address))"
            if let size = bar.size { line += ", size \(hexString(size)) (\(bar.sizeSource?.description ?? ""))" }
            return line + "\n"
        }.joined()
    }

    private func capabilityDetail(_ capability: Capability) -> String {
        switch capability.body {
        case .express(let express):
            var text = " v\(express.version) \(express.portType): DevCap \(hexString(express.deviceCapabilities))"
                + " (TEE-IO\(flag(express.teeIOSupported)) FLReset\(flag(express.flrSupported))"
                + " MaxPayload \(express.maxPayloadSize))"
            if let speed = express.maxLinkSpeedText { text += ", link \(speed) GT/s x\(express.maxLinkWidth)" }
            return text
        case .msix(let msix):
            return ": \(msix.tableSize) vectors, table BAR \(msix.tableBIR) offset \(hexString(msix.tableOffset)),"
                + " PBA BAR \(msix.pbaBIR) offset \(hexString(msix.pbaOffset)), Enable\(flag(msix.isEnabled))"
        case .other:
            return ""
        }
    }

    private func extendedDetail(_ capability: ExtendedCapability) -> String {
        switch capability.body {
        case .sriov(let s):
            return ": InitialVFs \(s.initialVFs), TotalVFs \(s.totalVFs), NumVFs \(s.numVFs),"
                + " VF offset \(s.firstVFOffset), stride \(s.vfStride), VF device \(hex4(s.vfDeviceID)),"
                + " ARI hierarchy\(flag(s.ariCapableHierarchy))"
        case .doe(let d):
            return ": mailbox at \(hexString(d.offset)), IntSup\(flag(d.interruptSupported))"
                + (d.interruptSupported ? " (message \(d.interruptMessageNumber))" : "")
                + " IntEn\(flag(d.interruptEnabled)) Busy\(flag(d.isBusy)) Error\(flag(d.hasError))"
                + " ObjectReady\(flag(d.dataObjectReady))"
        case .ide(let i):
            return ": link streams \(i.linkStreamCount), selective streams \(i.selectiveStreamCount),"
                + " IDE_KM\(flag(i.ideKMSupported)) TEE-limited\(flag(i.teeLimitedStreamSupported))"
                + " FlowThru\(flag(i.flowThroughSupported)) algorithms \(hexString(i.supportedAlgorithms))"
                + " TCs \(i.linkTrafficClassCount)"
        case .ari(let a):
            return ": next function \(a.nextFunctionNumber), MFVC\(flag(a.mfvcFunctionGroupsSupported))"
                + " ACS\(flag(a.acsFunctionGroupsSupported))"
        case .pasid(let p):
            return ": max width \(p.maxPASIDWidth), Exec\(flag(p.executePermissionSupported))"
                + " Priv\(flag(p.privilegedModeSupported)), Enable\(flag(p.isEnabled))"
        case .ats(let a):
            return ": invalidate queue depth \(a.invalidateQueueDepth), PageAligned\(flag(a.pageAlignedRequest))"
                + " Enable\(flag(a.isEnabled)) STU \(a.smallestTranslationUnit)"
        case .other:
            return ""
        }
    }

    // MARK: JSON

    func json() -> JSON {
        .object([
            ("devices", .array(dump.devices.compactMap { device in
                guard let pf = topology[device.bdf] else { return nil }
                let functions = [pf] + topology.virtualFunctions(of: pf.bdf)
                return .object([
                    ("bdf", .string(device.bdf.description)),
                    ("line", .int(device.line)),
                    ("title", device.title.map(JSON.string) ?? .null),
                    ("functions", .array(functions.map(functionJSON))),
                ])
            })),
        ])
    }

    private func functionJSON(_ f: PCIFunction) -> JSON {
        var fields: [(String, JSON)] = [
            ("bdf", .string(f.bdf.description)),
            ("routingID", .string(hex4(f.bdf.routingID))),
            ("role", .string(f.isVirtual ? "VF" : "PF")),
        ]
        if let pf = f.physicalFunction, let index = f.vfIndex {
            fields += [("physicalFunction", .string(pf.description)), ("vfIndex", .int(index))]
        }
        fields += [
            ("vendorID", .string(hex4(f.vendorID))),
            ("deviceID", .string(hex4(f.deviceID))),
            ("classCode", .string(hex6(f.classCode))),
            ("canBeDSM", .bool(f.canBeDSM)),
            ("dsm", topology.findDSM(for: f.bdf).map { .string($0.bdf.description) } ?? .null),
            ("teeIO", .bool(f.teeIOSupported)),
            ("bars", .array(f.bars.map(barJSON))),
        ]
        if let config = f.config {
            fields += [
                ("headerType", .int(Int(config.headerType.rawValue))),
                ("multiFunction", .bool(config.isMultiFunction)),
                ("configSize", .int(config.bytes.count)),
            ]
            if let rom = config.expansionROM {
                fields.append(("expansionROM", .object([
                    ("address", .string(hexString(rom.address))), ("enabled", .bool(rom.isEnabled)),
                    ("size", rom.size.map { .string(hexString($0)) } ?? .null),
                    ("sizeSource", rom.sizeSource.map { .string(sizeSourceName($0)) } ?? .null),
                ])))
            }
        }
        fields.append(("capabilities", .array(f.capabilities.map(capabilityJSON))))
        fields.append(("extendedCapabilities", .array(f.extendedCapabilities.map(extendedJSON))))
        fields.append(("warnings", .array((f.config?.warnings ?? []).map { .string($0.description) })))
        return .object(fields)
    }

    private func barJSON(_ bar: BAR) -> JSON {
        .object([
            ("index", .int(bar.index)),
            ("registerOffset", .string(hexString(bar.registerOffset))),
            ("space", .string(bar.space == .io ? "io" : bar.space == .memory64 ? "memory64"
                : bar.space == .memory32 ? "memory32" : "memoryBelow1M")),
            ("prefetchable", .bool(bar.isPrefetchable)),
            ("address", .string(hexString(bar.address))),
            ("size", bar.size.map { .string(hexString($0)) } ?? .null),
            ("sizeSource", bar.sizeSource.map { .string(sizeSourceName($0)) } ?? .null),
        ])
    }

    private func capabilityJSON(_ c: Capability) -> JSON {
        var fields: [(String, JSON)] = [
            ("offset", .string(hexString(c.offset))), ("id", .string(hexString(c.id))), ("name", .string(c.name)),
        ]
        switch c.body {
        case .express(let e):
            fields += [
                ("version", .int(Int(e.version))), ("portType", .string(e.portType.description)),
                ("deviceCapabilities", .string(hexString(e.deviceCapabilities))),
                ("teeIO", .bool(e.teeIOSupported)), ("flr", .bool(e.flrSupported)),
                ("maxPayloadSize", .int(e.maxPayloadSize)),
                ("maxLinkSpeedGTs", e.maxLinkSpeedText.map(JSON.string) ?? .null),
                ("maxLinkWidth", .int(Int(e.maxLinkWidth))),
            ]
        case .msix(let m):
            fields += [
                ("tableSize", .int(m.tableSize)), ("enabled", .bool(m.isEnabled)),
                ("tableBIR", .int(Int(m.tableBIR))), ("tableOffset", .string(hexString(m.tableOffset))),
                ("pbaBIR", .int(Int(m.pbaBIR))), ("pbaOffset", .string(hexString(m.pbaOffset))),
            ]
        case .other:
            break
        }
        return .object(fields)
    }

    private func extendedJSON(_ c: ExtendedCapability) -> JSON {
        var fields: [(String, JSON)] = [
            ("offset", .string(hexString(c.offset))), ("id", .string(hexString(c.id))),
            ("version", .int(Int(c.version))), ("name", .string(c.name)),
        ]
        switch c.body {
        case .sriov(let s):
            fields += [
                ("initialVFs", .int(Int(s.initialVFs))), ("totalVFs", .int(Int(s.totalVFs))),
                ("numVFs", .int(Int(s.numVFs))), ("firstVFOffset", .int(Int(s.firstVFOffset))),
                ("vfStride", .int(Int(s.vfStride))), ("vfDeviceID", .string(hex4(s.vfDeviceID))),
                ("ariCapableHierarchy", .bool(s.ariCapableHierarchy)),
                ("vfBARs", .array(s.vfBARs.map(barJSON))),
            ]
        case .doe(let d):
            fields += [
                ("mailbox", .string(hexString(d.offset))), ("interruptSupported", .bool(d.interruptSupported)),
                ("interruptMessageNumber", .int(Int(d.interruptMessageNumber))),
                ("interruptEnabled", .bool(d.interruptEnabled)), ("busy", .bool(d.isBusy)),
                ("error", .bool(d.hasError)), ("dataObjectReady", .bool(d.dataObjectReady)),
            ]
        case .ide(let i):
            fields += [
                ("linkIDE", .bool(i.linkIDESupported)), ("selectiveIDE", .bool(i.selectiveIDESupported)),
                ("linkStreams", .int(i.linkStreamCount)), ("selectiveStreams", .int(i.selectiveStreamCount)),
                ("ideKM", .bool(i.ideKMSupported)), ("teeLimited", .bool(i.teeLimitedStreamSupported)),
                ("supportedAlgorithms", .int(Int(i.supportedAlgorithms))),
                ("linkTrafficClasses", .int(i.linkTrafficClassCount)),
            ]
        case .ari(let a):
            fields += [("nextFunction", .int(Int(a.nextFunctionNumber)))]
        case .pasid(let p):
            fields += [
                ("maxPASIDWidth", .int(Int(p.maxPASIDWidth))), ("execute", .bool(p.executePermissionSupported)),
                ("privileged", .bool(p.privilegedModeSupported)), ("enabled", .bool(p.isEnabled)),
            ]
        case .ats(let a):
            fields += [
                ("invalidateQueueDepth", .int(a.invalidateQueueDepth)), ("pageAligned", .bool(a.pageAlignedRequest)),
                ("enabled", .bool(a.isEnabled)), ("stu", .int(Int(a.smallestTranslationUnit))),
            ]
        case .other:
            break
        }
        return .object(fields)
    }

    private func sizeSourceName(_ source: SizeSource) -> String {
        switch source {
        case .dumpText: "dumpText"
        case .derivedFromAlignment: "derivedFromAlignment"
        }
    }
}

/// A JSON value with ordered object keys, rendered with two-space indentation.
enum JSON {
    case null
    case bool(Bool)
    case int(Int)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    func render(indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .int(let value): return String(value)
        case .string(let value): return Self.quote(value)
        case .array(let values):
            guard !values.isEmpty else { return "[]" }
            return "[\n" + values.map { inner + $0.render(indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let fields):
            guard !fields.isEmpty else { return "{}" }
            return "{\n" + fields.map { inner + Self.quote($0.0) + ": " + $0.1.render(indent: inner) }
                .joined(separator: ",\n") + "\n\(indent)}"
        }
    }

    /// A JSON string literal (the escaping of the script engine's JSON, `KernelScript.JSONValue.quoted`).
    static func quote(_ text: String) -> String { KernelScript.JSONValue.quoted(text) }
}

private func flag(_ value: Bool) -> String { value ? "+" : "-" }
private func hexString(_ value: some BinaryInteger) -> String { "0x" + String(value, radix: 16) }
private func short(_ value: Int) -> String { String(value, radix: 16) }
private func hex2(_ value: UInt8) -> String { padded(String(value, radix: 16), 2) }
private func hex4(_ value: UInt16) -> String { padded(String(value, radix: 16), 4) }
private func hex6(_ value: UInt32) -> String { padded(String(value, radix: 16), 6) }
private func padded(_ text: String, _ width: Int) -> String {
    String(repeating: "0", count: max(0, width - text.count)) + text
}
