import ArgumentParser
import Device
import Foundation
import PCI
import TDISP
import Wire

/// `tsmctl dsm DUMP [REQUESTS] [--function BDF] [--profile NAME] [--seed N]`: send TDISP
/// requests, given as hex one per line, to the DSM of a device and print every response as hex
/// and as decoded JSON (one JSON object per line).
///
/// Input lines: hex bytes (spaces, `:` and `_` allowed); blank lines and lines starting with `#`
/// are skipped. Placeholders: `{nonce}` is the 32-byte START_INTERFACE_NONCE of the most recent
/// LOCK_INTERFACE_RESPONSE; `{function}` is the 4-byte FUNCTION_ID (little-endian) of `--function`
/// (default: the DSM's own function).
///
/// Exit status: 0 when every line was sent; 2 when the input cannot be read, a line is not hex,
/// `{nonce}` is used before any LOCK_INTERFACE_RESPONSE, or the dump/function/profile is unknown;
/// the message on standard error names the line. A TDISP_ERROR response is output, not a failure.
struct DSMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dsm",
        abstract: "Send TDISP requests (hex, one per line) to a device's DSM and print the responses.",
        discussion: """
            DUMP is an lspci dump (the DSM of --function's device, or of the first DSM-capable \
            function, answers), or `builtin` for a hand-made copy of the TEE-IO endpoint \
            e1:00.0 of Examples/devices with its 4 VFs. REQUESTS \
            is a file, or `-` (the default) for standard input. Each output line is a JSON object \
            with the request and response as hex and decoded. See docs/tdisp.md.
            """)

    @Argument(help: "The lspci dump of the device, or `builtin`.")
    var dump: String

    @Argument(help: "The request file, or `-` for standard input.")
    var requests: String = "-"

    @Option(name: .long, help: "The function (BDF, [ssss:]bb:dd.f) whose DSM answers; `{function}` expands to it.")
    var function: String?

    @Option(name: .long, help: "DSM profile: standard, portion64 or spdm-emu.")
    var profile: String = "standard"

    @Option(name: .long, help: "Seed for deterministic START nonces (default: system randomness).")
    var seed: UInt64?

    func run() throws {
        guard let chosen = DSMProfile.named(profile) else {
            fail("unknown profile '\(profile)' (known: \(DSMProfile.all.map(\.name).joined(separator: ", ")))")
        }
        var chosenFunction: FunctionID?
        if let function {
            guard let parsed = DSMDevice.parseBDF(function) else { fail("--function '\(function)' is not a BDF") }
            chosenFunction = parsed
        }
        let device: (dsm: DSM, own: FunctionID)
        do {
            device = try DSMDevice.make(dump: dump, function: chosenFunction, profile: chosen,
                                        entropy: seed.map(DSMEntropy.seeded) ?? .system)
        } catch {
            fail("\(dump): \(error)")
        }
        let dsm = device.dsm
        if let chosenFunction, !chosen.versionInitialisesGlobalContext,
           !dsm.functions.contains(where: { $0.functionID == chosenFunction }) {
            fail("--function \(function ?? ""): no such function served by the DSM of \(dump)")
        }
        let target = chosenFunction ?? device.own
        let text: String
        do {
            if requests == "-" {
                var lines = [String]()
                while let line = readLine(strippingNewline: true) { lines.append(line) }
                text = lines.joined(separator: "\n")
            } else {
                text = try String(contentsOfFile: requests, encoding: .utf8)
            }
        } catch {
            fail("cannot read '\(requests)': \(error)")
        }
        var session = DSMSession(dsm: dsm, function: target)
        do {
            for line in try session.run(text) { print(line) }
        } catch {
            fail("\(requests == "-" ? "<stdin>" : requests):\(error)")
        }
    }

    private func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data(("tsmctl dsm: " + message + "\n").utf8))
        Foundation.exit(2)
    }
}

/// Where the functions of `tsmctl dsm` come from.
enum DSMDevice {
    /// Why a dump could not be turned into functions.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The DSM for `dump` and the FUNCTION_ID it is the DSM of.
    ///
    /// `builtin`: ``builtinSample``. Otherwise an lspci dump read with the PCI module
    /// (`PCITopology(lspci:)`); the DSM is the one Linux would find for `function`
    /// (`findDSM`, kernel-uapi.md §6.2), or without `function` the first DSM-capable function; it
    /// serves its own function and the functions of its walk (`DSM(device:dsm:)`).
    static func make(dump: String, function: FunctionID?, profile: DSMProfile,
                     entropy: DSMEntropy) throws -> (dsm: DSM, own: FunctionID) {
        if dump == "builtin" {
            let functions = builtinSample
            return (try DSM(functions: functions, profile: profile, entropy: entropy), functions[0].functionID)
        }
        let text: String
        do {
            text = try String(contentsOfFile: dump, encoding: .utf8)
        } catch {
            throw Failure(description: "cannot read: \(error)")
        }
        let topology = try PCITopology(lspci: text)
        let owner: PCIFunction
        if let function {
            let bdf = BDF(domain: UInt32(function.segment ?? 0), routingID: function.requesterID)
            guard topology[bdf] != nil else { throw Failure(description: "--function \(bdf): no such function") }
            guard let found = topology.findDSM(for: bdf) else {
                throw Failure(description: "no DSM for \(bdf) (Linux find_dsm_dev() would fail with ENXIO)")
            }
            owner = found
        } else {
            guard let first = topology.functions.first(where: \.canBeDSM) else {
                throw Failure(description: "no function can be a DSM (needs PCIe Endpoint/Upstream Port/RCiEP function 0 with IDE or TEE-IO)")
            }
            owner = first
        }
        let dsm = try DSM(device: topology, dsm: owner.bdf, profile: profile, entropy: entropy)
        return (dsm, FunctionID(requesterID: owner.bdf.routingID))
    }

    /// The TEE-IO endpoint of Examples/devices/tee-io-endpoint-sriov.lspci, by hand: PF e1:00.0
    /// (BAR 0 64-bit prefetchable at 0x20014000000, BAR 2 at 0x20018013000; PASID enabled) and
    /// its 4 VFs (VF offset 32, stride 1: e1:04.0-e1:04.3; VF BAR 0 from 0x1fff8000000, VF BAR 2
    /// from 0x2001800c000). The dump prints no sizes (BARs disabled): the sizes here are upper
    /// bounds chosen so no two BARs overlap (PF BAR 0 64 MiB, BAR 2 4 KiB; per-VF BAR 0 64 MiB,
    /// BAR 2 4 KiB). VFs use the PF's PASID capability.
    static let builtinSample: [TDIFunction] = {
        let pf = FunctionID(bus: 0xE1, device: 0, function: 0)
        var functions = [TDIFunction(
            functionID: pf,
            bars: [TDIBAR(index: 0, address: 0x200_1400_0000, size: 0x400_0000, prefetchable: true),
                   TDIBAR(index: 2, address: 0x200_1801_3000, size: 0x1000, prefetchable: true)],
            pasidEnabled: true)]
        for vf in 0..<4 {
            let rid = pf.requesterID + 32 + UInt16(vf)
            functions.append(TDIFunction(
                functionID: FunctionID(requesterID: rid), physicalFunction: pf,
                bars: [TDIBAR(index: 0, address: 0x1FF_F800_0000 + UInt64(vf) * 0x400_0000, size: 0x400_0000, prefetchable: true),
                       TDIBAR(index: 2, address: 0x200_1800_C000 + UInt64(vf) * 0x1000, size: 0x1000, prefetchable: true)],
                pasidEnabled: true))
        }
        return functions
    }()

    /// Parses `[ssss:]bb:dd.f` (hex) into a FUNCTION_ID; nil when malformed.
    static func parseBDF(_ text: String) -> FunctionID? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let segment: UInt16? = parts.count == 3 ? UInt16(parts[0], radix: 16) : nil
        if parts.count == 3 { guard let segment, segment <= 0xFF else { return nil } }
        let deviceFunction = parts[parts.count - 1].split(separator: ".", omittingEmptySubsequences: false)
        guard deviceFunction.count == 2,
              let bus = UInt8(parts[parts.count - 2], radix: 16),
              let device = UInt8(deviceFunction[0], radix: 16), device < 32,
              let function = UInt8(deviceFunction[1], radix: 16), function < 8 else { return nil }
        return FunctionID(bus: bus, device: device, function: function, segment: segment.map { UInt8($0) })
    }
}

/// One `tsmctl dsm` conversation: expands placeholders, sends each line, renders the results.
struct DSMSession {
    /// A line that could not be sent; `line` counts from 1.
    struct LineError: Error, CustomStringConvertible {
        var line: Int
        var reason: String
        var description: String { "\(line): \(reason)" }
    }

    let dsm: DSM
    let function: FunctionID
    private(set) var nonce: StartInterfaceNonce?
    private var report: [UInt8] = []

    init(dsm: DSM, function: FunctionID) {
        self.dsm = dsm
        self.function = function
    }

    /// Sends every request line of `text`; returns one JSON line per request.
    mutating func run(_ text: String) throws(LineError) -> [String] {
        var output = [String]()
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var expanded = line.replacingOccurrences(of: "{function}", with: Hex.encode(le32(function.rawValue)))
            if expanded.contains("{nonce}") {
                guard let nonce else {
                    throw LineError(line: index + 1, reason: "{nonce} before any LOCK_INTERFACE_RESPONSE")
                }
                expanded = expanded.replacingOccurrences(of: "{nonce}", with: Hex.encode(nonce.bytes))
            }
            let request: [UInt8]
            do {
                request = try Hex.decode(expanded)
            } catch {
                throw LineError(line: index + 1, reason: "\(error)")
            }
            output.append(send(request, line: index + 1))
        }
        return output
    }

    private mutating func send(_ request: [UInt8], line: Int) -> String {
        let response = dsm.respond(request)
        var fields: [(String, JSONValue)] = [
            ("line", .number(UInt64(line))),
            ("request", .string(Hex.encode(request))),
            ("requestDecoded", (try? TDISPRequest(decoding: request)).map(Self.json) ?? .null),
            ("response", .string(Hex.encode(response))),
        ]
        guard let decoded = try? TDISPResponse(decoding: response) else {
            fields.append(("responseDecoded", .null))
            return JSONValue.object(fields).rendered
        }
        fields.append(("responseDecoded", Self.json(decoded)))
        switch decoded {
        case let .lockInterface(lock):
            nonce = lock.nonce
        case let .deviceInterfaceReport(portion):
            if let get = try? GetDeviceInterfaceReport(decoding: request) {
                if get.offset == 0 { report = [] }
                if Int(get.offset) == report.count { report += portion.portion }
                if portion.remainderLength == 0, let whole = try? DeviceInterfaceReport(decoding: report) {
                    fields.append(("report", Self.json(whole)))
                }
            }
        default:
            break
        }
        return JSONValue.object(fields).rendered
    }

    private func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }

    // MARK: JSON of messages

    static func header(_ message: any TDISPMessage) -> [(String, JSONValue)] {
        [("type", .string(type(of: message).messageType.name)),
         ("version", .string(hex8(message.version))),
         ("function", .string(message.interfaceID.functionID.description)),
         ("functionId", .string("0x" + pad(String(message.interfaceID.functionID.rawValue, radix: 16), 8)))]
    }

    static func json(_ request: TDISPRequest) -> JSONValue {
        var fields = header(request.message)
        switch request {
        case let .getCapabilities(m): fields.append(("tsmCaps", .number(UInt64(m.tsmCaps))))
        case let .lockInterface(m):
            fields += [("flags", flags(m.flags)), ("defaultStreamId", .number(UInt64(m.defaultStreamID))),
                       ("mmioReportingOffset", .string("0x" + String(m.mmioReportingOffset, radix: 16))),
                       ("bindP2PAddressMask", .string("0x" + String(m.bindP2PAddressMask, radix: 16)))]
        case let .getDeviceInterfaceReport(m):
            fields += [("offset", .number(UInt64(m.offset))), ("length", .number(UInt64(m.length)))]
        case let .startInterface(m): fields.append(("nonce", .string(Hex.encode(m.nonce.bytes))))
        case let .bindP2PStream(m): fields.append(("p2pStreamId", .number(UInt64(m.p2pStreamID))))
        case let .unbindP2PStream(m): fields.append(("p2pStreamId", .number(UInt64(m.p2pStreamID))))
        case let .setMMIOAttribute(m): fields.append(("range", range(m.range)))
        case let .vdm(m): fields.append(("body", vendor(m.body)))
        case .getVersion, .getDeviceInterfaceState, .stopInterface: break
        }
        return .object(fields)
    }

    static func json(_ response: TDISPResponse) -> JSONValue {
        var fields = header(response.message)
        switch response {
        case let .version(m): fields.append(("versions", .array(m.versions.map { .string(hex8($0)) })))
        case let .capabilities(m):
            fields += [("dsmCaps", .number(UInt64(m.dsmCaps))),
                       ("reqMsgsSupported", .array(m.requestMessagesSupported.codes.map { .string($0.name) })),
                       ("lockInterfaceFlagsSupported", flags(m.lockInterfaceFlagsSupported)),
                       ("devAddrWidth", .number(UInt64(m.deviceAddressWidth))),
                       ("numReqThis", .number(UInt64(m.numRequestsThis))),
                       ("numReqAll", .number(UInt64(m.numRequestsAll)))]
        case let .lockInterface(m): fields.append(("nonce", .string(Hex.encode(m.nonce.bytes))))
        case let .deviceInterfaceReport(m):
            fields += [("portionLength", .number(UInt64(m.portionLength))),
                       ("remainderLength", .number(UInt64(m.remainderLength))),
                       ("portion", .string(Hex.encode(m.portion)))]
        case let .deviceInterfaceState(m): fields.append(("state", .string(m.state.description)))
        case let .vdm(m): fields.append(("body", vendor(m.body)))
        case let .error(m):
            fields += [("errorCode", .string(m.errorCode.name)),
                       ("errorCodeValue", .string("0x" + pad(String(m.errorCode.rawValue, radix: 16), 4))),
                       ("errorData", .number(UInt64(m.errorData))),
                       ("extendedErrorData", .string(Hex.encode(m.extendedErrorData)))]
        case .startInterface, .stopInterface, .bindP2PStream, .unbindP2PStream, .setMMIOAttribute: break
        }
        return .object(fields)
    }

    static func json(_ report: DeviceInterfaceReport) -> JSONValue {
        var info = [String]()
        let names: [(InterfaceInfo, String)] = [(.noFirmwareUpdate, "NO_FW_UPDATE"), (.dmaWithoutPASID, "DMA_WITHOUT_PASID"),
                                                (.dmaWithPASID, "DMA_WITH_PASID"), (.atsEnabled, "ATS"), (.prsEnabled, "PRS")]
        for (bit, name) in names where report.interfaceInfo.contains(bit) { info.append(name) }
        return .object([
            ("size", .number(UInt64(report.encodedSize))),
            ("interfaceInfo", .array(info.map(JSONValue.string))),
            ("msixMessageControl", .string("0x" + pad(String(report.msixMessageControl, radix: 16), 4))),
            ("lnrControl", .number(UInt64(report.lnrControl))),
            ("tphControl", .number(UInt64(report.tphControl))),
            ("mmioRanges", .array(report.mmioRanges.map(range))),
            ("deviceSpecificInfo", .string(Hex.encode(report.deviceSpecificInfo))),
        ])
    }

    static func range(_ range: MMIORange) -> JSONValue {
        var attributes = [String]()
        let names: [(MMIORangeAttributes, String)] = [(.msixTable, "MSIX_TABLE"), (.msixPBA, "MSIX_PBA"),
                                                      (.nonTEEMemory, "NON_TEE_MEM"), (.memoryAttributeUpdatable, "MEM_ATTR_UPDATABLE")]
        for (bit, name) in names where range.attributes.contains(bit) { attributes.append(name) }
        return .object([
            ("firstPage", .string("0x" + String(range.firstPage, radix: 16))),
            ("numberOfPages", .number(UInt64(range.numberOfPages))),
            ("attributes", .array(attributes.map(JSONValue.string))),
            ("rangeId", .number(UInt64(range.rangeID))),
        ])
    }

    static func flags(_ flags: LockInterfaceFlags) -> JSONValue {
        let names: [(LockInterfaceFlags, String)] = [(.noFirmwareUpdate, "NO_FW_UPDATE"), (.systemCacheLineSize128, "SYSTEM_CACHE_LINE_SIZE"),
                                                     (.lockMSIX, "LOCK_MSIX"), (.bindP2P, "BIND_P2P"), (.allRequestRedirect, "ALL_REQUEST_REDIRECT")]
        var out: [JSONValue] = names.filter { flags.contains($0.0) }.map { .string($0.1) }
        if !flags.intersection(.reserved).isEmpty {
            out.append(.string("RESERVED_0x" + String(flags.intersection(.reserved).rawValue, radix: 16)))
        }
        return .array(out)
    }

    static func vendor(_ body: VendorDefinedBody) -> JSONValue {
        .object([("registryId", .number(UInt64(body.registryID))), ("vendorId", .string(Hex.encode(body.vendorID))),
                 ("data", .string(Hex.encode(body.data)))])
    }

    static func hex8(_ value: UInt8) -> String { "0x" + pad(String(value, radix: 16), 2) }
    static func pad(_ digits: String, _ width: Int) -> String {
        String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// A JSON value with ordered object keys, rendered compactly on one line.
enum JSONValue {
    case string(String)
    case number(UInt64)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case null

    var rendered: String {
        switch self {
        case let .string(text): return Self.quote(text)
        case let .number(value): return String(value)
        case let .array(items): return "[" + items.map(\.rendered).joined(separator: ",") + "]"
        case let .object(fields): return "{" + fields.map { Self.quote($0.0) + ":" + $0.1.rendered }.joined(separator: ",") + "}"
        case .null: return "null"
        }
    }

    private static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if scalar.value < 0x20 {
                    out += "\\u" + SessionHex.pad4(scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}

private enum SessionHex {
    static func pad4(_ value: UInt32) -> String { DSMSession.pad(String(value, radix: 16), 4) }
}
