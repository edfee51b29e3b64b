// `tsmctl script` steps for the three architecture TSMs (issue #5 deliverable 6; docs/arch.md,
// docs/script-format.md "Architecture steps"): a platform step that builds a CCA, SEV or TDX host
// from an lspci dump, guest requests built by payload name and fields with decoded-response
// checks, the guest's direct firmware calls, DSM/firmware TDI-state reads, report ranges and
// fault plans.
import Device
import Firmware
import Kernel
import PCI
import SystemPackage
import TDISP
import UAPI
import Wire

/// One architecture step (ops `arch_platform`, `guest_request`, `guest_call`, `tdi_state`,
/// `tdi_report`, `fault_plan`), parsed.
public enum ArchStep: Sendable {
    /// `arch_platform`: a kernel from a dump with the architecture's TSM as tsm0.
    case platform(ArchPlatformSpec)
    /// `guest_request`: IOMMU_VDEVICE_TSM_REQ with a payload built by name and fields.
    case guestRequest(GuestRequestStep)
    /// `guest_call`: the guest's direct call into the firmware (RSI, TDCALL).
    case guestCall(GuestCallStep)
    /// `tdi_state`: the DSM's and the firmware's TDI state of a function.
    case tdiState(device: String, expectDevice: String?, expectFirmware: String?)
    /// `tdi_report`: saves the MMIO ranges of the TDI's interface report (and, with `gpa`, a
    /// guest-physical placement of them one after another from that base).
    case tdiReport(device: String, save: String, gpa: ScriptValue?)
    /// `fault_plan`: installs a fault plan (text rules of docs/firmware.md); [] removes it.
    case faultPlan([String])

    /// The op name.
    public var opName: String {
        switch self {
        case .platform: return "arch_platform"
        case .guestRequest: return "guest_request"
        case .guestCall: return "guest_call"
        case .tdiState: return "tdi_state"
        case .tdiReport: return "tdi_report"
        case .faultPlan: return "fault_plan"
        }
    }

    /// The keys each architecture op accepts (besides op, name, why).
    static let keysByOp: [String: Set<String>] = [
        "arch_platform": ["arch", "profile", "devices", "seed", "evidence", "switches"],
        "guest_request": ["fd", "vdevice", "payload", "fields", "hex", "req_op", "tvm_arch", "req_len", "resp_len",
                          "req_uptr", "resp_uptr", "readonly_resp", "expect", "expect_tsm_code", "expect_response",
                          "expect_device_messages", "expect_firmware_calls", "save_response"],
        "guest_call": ["call", "device", "vm", "fields", "expect_status", "save"],
        "tdi_state": ["device", "expect_device", "expect_firmware"],
        "tdi_report": ["device", "save", "gpa"],
        "fault_plan": ["rules"],
    ]
}

/// The `arch_platform` step.
public struct ArchPlatformSpec: Sendable, Equatable {
    /// `cca`, `sev` or `tdx`.
    public var arch: TVMArch
    /// uAPI profile name; nil = default.
    public var profile: String?
    /// The dump path (relative to the script's folder).
    public var dump: String
    /// DSM / identity seed.
    public var seed: UInt64
    /// Whether to make device evidence (certificates).
    public var evidence: Bool
    /// The §6.4 switches by name (see docs/script-format.md).
    public var switches: [String: String]
}

/// The `guest_request` step.
public struct GuestRequestStep: Sendable {
    /// `fd`: the iommufd the `IOMMU_VDEVICE_TSM_REQ` is issued on; nil = the last `open_iommufd`.
    public var fd: ScriptValue?
    /// `vdevice`: the vDEVICE id (`IOMMU_VDEVICE_ALLOC`'s `out_vdevice_id`, usually a `$name`).
    public var vdevice: ScriptValue
    /// `payload`: the payload builder by name, `cca.*`, `sev.*`, `tdx.*` or `raw` (docs/script-format.md
    /// "guest_request" table); the prefix sets the envelope's `tvm_arch` (1, 2, 3). An unknown name is a
    /// ``ScriptSyntaxError`` at parse time.
    public var payload: String
    /// `fields`: the payload's fields by name (unnamed ones take the table's defaults).
    public var fields: [FieldValue]
    /// `hex`: the payload bytes of `raw`, sent as they are; required with `raw` (with `req_op`) and
    /// refused with any other payload (``ScriptSyntaxError``).
    public var hex: [UInt8]?
    /// `req_op`: overrides the op, by name (`READ_OBJECT` ... `SEV_DISABLE_DMA`, mapped to the uAPI
    /// profile's number) or a raw number; anything else is a ``ScriptSyntaxError``.
    public var reqOp: String?
    /// `tvm_arch`: overrides the envelope's architecture, `cca`/`sev`/`tdx` (1/2/3) or a raw number;
    /// anything else is a ``ScriptSyntaxError``.
    public var tvmArch: String?
    /// `req_len`: overrides the request length in bytes (default: the built payload's size).
    public var reqLen: ScriptValue?
    /// `resp_len`: overrides the response buffer length in bytes (default: the payload table's
    /// `resp_len`, e.g. 4096 for READ_OBJECT, 96 + 48 for `sev.mmio_validate`).
    public var respLen: ScriptValue?
    /// `req_uptr`: overrides the request user address (never mapped: the copy-in faults, `EFAULT`).
    public var reqUptr: ScriptValue?
    /// `resp_uptr`: overrides the response user address (never mapped: the copy-out faults).
    public var respUptr: ScriptValue?
    /// `readonly_resp`: maps the response buffer read-only, so the copy-out faults (`EFAULT`; `EIO`
    /// for CCA's READ_OBJECT, arch-backends.md §1.2). Default false.
    public var readOnlyResponse: Bool
    /// `expect_tsm_code`: the `tsm_code` the kernel must write back (CCA 0, SEV PSP status, TDX module
    /// status); a difference is a `mismatch` verdict.
    public var expectTSMCode: ScriptValue?
    /// `expect_response`: decoded response fields that must hold these values (a missing or different
    /// field is a `mismatch`).
    public var expectResponse: [FieldValue]
    /// `expect_device_messages`: the number of TDISP requests that must have reached any DSM during
    /// the call (0 = the request was refused before the device, arch-backends.md §0).
    public var expectDeviceMessages: ScriptValue?
    /// `expect_firmware_calls`: the number of entries the firmware's call log must have gained during
    /// the call (firmware calls plus TDISP requests it sent).
    public var expectFirmwareCalls: ScriptValue?
    /// `save_response` `{name: field}`: saves decoded response fields as script variables, in order.
    public var saveResponse: [(name: String, field: String)]
}

/// The `guest_call` step.
public struct GuestCallStep: Sendable {
    /// `call`: the guest call by name (`RSI_VDEV_GET_INFO`, ..., `TDG.MMIO.ACCEPT`,
    /// `TDG.VP.VMCALL.TDCM`; docs/script-format.md "guest_call"); an unknown name is a
    /// ``ScriptSyntaxError`` at parse time, a call of another architecture's a ``ScriptRunError`` at run time.
    public var call: String
    /// `device`: the PCI address of the TDI's function (`bb:dd.f` or `dddd:bb:dd.f`).
    public var device: String
    /// `vm`: the VM's file descriptor (`create_vm`'s `save`), naming the Realm / guest / TD; a
    /// value that is not a VM's fd is a ``ScriptRunError``.
    public var vm: ScriptValue
    /// `fields`: the call's arguments by name (e.g. `gpa`, `pages` for `TDG.MMIO.ACCEPT`).
    public var fields: [FieldValue]
    /// `expect_status`: the RSI status or 64-bit TDX status the call must return; nil = 0.
    public var expectStatus: ScriptValue?
    /// `save`: saves `NAME.status` and the other printed values (e.g. `NAME.value`).
    public var save: String?
}

// MARK: - Parsing

enum ArchStepParser {
    static let payloads: Set<String> = [
        "cca.read_object", "cca.regen_object", "cca.object_info", "cca.validate_mmio", "cca.set_tdi_state",
        "tdx.read_object", "tdx.regen_object", "tdx.object_info", "tdx.validate_mmio", "tdx.set_tdi_state",
        "sev.set_tdi_state", "sev.mmio_validate", "sev.mmio_config", "sev.sdte_write", "raw",
    ]
    static let calls: Set<String> = [
        "RSI_VDEV_GET_INFO", "RSI_VDEV_VALIDATE_MAPPING", "RSI_VDEV_DMA_ENABLE", "RSI_VDEV_DMA_DISABLE",
        "TDG.TDI.RD", "TDG.TDI.START", "TDG.MMIO.ACCEPT", "TDG.DMAR.ACCEPT", "TDG.VP.VMCALL.TDCM",
    ]
    static let states: Set<String> = ["CONFIG_UNLOCKED", "CONFIG_LOCKED", "RUN", "ERROR", "none"]
    static let switches: [String: Set<String>] = [
        "object_ops_tunnelled": ["true", "false"],
        "cca_object_numbering": ["linux", "acs"],
        "cca_read_object_honours_offset": ["true", "false"],
        "sev_msg_numbering": ["v19", "v0x81"],
        "sev_tdi_addressing": ["tdi_id64", "guest_device_id16"],
        "sev_mmio_status_table": ["latest", "legacy"],
        "sev_set_state_payload": ["byte", "u32"],
    ]

    /// Parses an architecture op; `fail` builds the line's syntax error.
    static func parse(_ op: String, _ json: JSONValue, fail: @escaping (String) -> ScriptSyntaxError) throws(ScriptSyntaxError) -> ArchStep {
        let reader = Reader(json: json, fail: fail)
        switch op {
        case "arch_platform":
            let archText = try reader.string("arch")
            guard let arch = archValue(archText) else { throw fail("\"arch\" must be \"cca\", \"sev\" or \"tdx\", found \"\(archText)\"") }
            guard case let .array(items)? = json["devices"], items.count == 1, case let .string(dump) = items[0], !dump.isEmpty else {
                throw fail("\"devices\" must be an array holding one lspci dump path")
            }
            var chosen: [String: String] = [:]
            if let value = json["switches"] {
                guard case let .object(pairs) = value else { throw fail("\"switches\" must be an object {switch: value}") }
                for pair in pairs {
                    guard let allowed = switches[pair.key] else {
                        throw fail("\"switches\": unknown switch \"\(pair.key)\" (one of: \(switches.keys.sorted().joined(separator: ", ")))")
                    }
                    let text: String
                    switch pair.value {
                    case let .string(s): text = s
                    case let .bool(b): text = b ? "true" : "false"
                    default: throw fail("\"switches\".\(pair.key) must be a string or boolean")
                    }
                    guard allowed.contains(text) else {
                        throw fail("\"switches\".\(pair.key): \"\(text)\" is not one of \(allowed.sorted().joined(separator: ", "))")
                    }
                    chosen[pair.key] = text
                }
            }
            var seedValue: UInt64 = 1
            switch try reader.optionalValue("seed") {
            case nil: break
            case let .literal(magnitude, false)?: seedValue = magnitude
            default: throw fail("\"seed\" must be a non-negative number")
            }
            return .platform(ArchPlatformSpec(arch: arch, profile: try reader.optionalString("profile"), dump: dump, seed: seedValue,
                                              evidence: try reader.optionalBool("evidence") ?? false, switches: chosen))
        case "guest_request":
            let payload = try reader.string("payload")
            guard payloads.contains(payload) else {
                throw fail("\"payload\": unknown payload \"\(payload)\" (one of: \(payloads.sorted().joined(separator: ", ")))")
            }
            let hex = try reader.optionalHex("hex")
            if payload == "raw" && hex == nil { throw fail("payload \"raw\" needs \"hex\" and \"req_op\"") }
            if payload == "raw" && json["req_op"] == nil { throw fail("payload \"raw\" needs \"req_op\"") }
            if payload != "raw" && hex != nil { throw fail("\"hex\" goes with payload \"raw\" only") }
            if let text = try reader.optionalString("tvm_arch"), archValue(text) == nil, UInt32(text) == nil {
                throw fail("\"tvm_arch\" must be cca, sev, tdx or a number, found \"\(text)\"")
            }
            if let text = try reader.optionalString("req_op"), opValue(text) == nil, UInt32(text) == nil {
                throw fail("\"req_op\" must be an op name (READ_OBJECT ... SEV_DISABLE_DMA) or a number, found \"\(text)\"")
            }
            var save: [(name: String, field: String)] = []
            if let value = json["save_response"] {
                guard case let .object(pairs) = value else { throw fail("\"save_response\" must be an object {name: field}") }
                for pair in pairs {
                    guard case let .string(field) = pair.value else { throw fail("\"save_response\".\(pair.key) must name a field") }
                    save.append((pair.key, field))
                }
            }
            return .guestRequest(GuestRequestStep(
                fd: try reader.optionalValue("fd"), vdevice: try reader.value("vdevice"), payload: payload,
                fields: try reader.fields("fields"), hex: hex, reqOp: try reader.optionalString("req_op"),
                tvmArch: try reader.optionalString("tvm_arch"), reqLen: try reader.optionalValue("req_len"),
                respLen: try reader.optionalValue("resp_len"), reqUptr: try reader.optionalValue("req_uptr"),
                respUptr: try reader.optionalValue("resp_uptr"), readOnlyResponse: try reader.optionalBool("readonly_resp") ?? false,
                expectTSMCode: try reader.optionalValue("expect_tsm_code"), expectResponse: try reader.fields("expect_response"),
                expectDeviceMessages: try reader.optionalValue("expect_device_messages"),
                expectFirmwareCalls: try reader.optionalValue("expect_firmware_calls"), saveResponse: save))
        case "guest_call":
            let call = try reader.string("call")
            guard calls.contains(call) else { throw fail("\"call\": unknown call \"\(call)\" (one of: \(calls.sorted().joined(separator: ", ")))") }
            return .guestCall(GuestCallStep(call: call, device: try reader.string("device"), vm: try reader.value("vm"),
                                            fields: try reader.fields("fields"), expectStatus: try reader.optionalValue("expect_status"),
                                            save: try reader.optionalString("save")))
        case "tdi_state":
            let device = try reader.optionalString("expect_device")
            let firmware = try reader.optionalString("expect_firmware")
            for state in [device, firmware].compactMap({ $0 }) where !states.contains(state) {
                throw fail("TDI state \"\(state)\" is not one of \(states.sorted().joined(separator: ", "))")
            }
            return .tdiState(device: try reader.string("device"), expectDevice: device, expectFirmware: firmware)
        case "tdi_report":
            return .tdiReport(device: try reader.string("device"), save: try reader.string("save"), gpa: try reader.optionalValue("gpa"))
        case "fault_plan":
            guard case let .array(items)? = json["rules"] else { throw fail("\"rules\" must be an array of fault rules") }
            var rules: [String] = []
            for item in items {
                guard case let .string(text) = item else { throw fail("\"rules\" must hold strings") }
                do { _ = try FaultPlan.Rule(parsing: text) } catch { throw fail("\(error)") }
                rules.append(text)
            }
            return .faultPlan(rules)
        default:
            throw fail("unknown op \"\(op)\"")
        }
    }

    static func archValue(_ text: String) -> TVMArch? {
        switch text.lowercased() {
        case "cca": return .cca
        case "sev": return .sev
        case "tdx": return .tdx
        default: return nil
        }
    }

    static func opValue(_ text: String) -> GuestOp? {
        GuestOp.allCases.first { $0.description == text }
    }

    struct Reader {
        let json: JSONValue
        let fail: (String) -> ScriptSyntaxError

        func string(_ key: String) throws(ScriptSyntaxError) -> String {
            guard let text = try optionalString(key) else { throw fail("missing \"\(key)\"") }
            return text
        }
        func optionalString(_ key: String) throws(ScriptSyntaxError) -> String? {
            switch json[key] {
            case nil: return nil
            case let .string(text)?: return text
            case let .number(text)?: return text
            case let other?: throw fail("\"\(key)\" must be a string, found \(other.kindName)")
            }
        }
        func optionalBool(_ key: String) throws(ScriptSyntaxError) -> Bool? {
            switch json[key] {
            case nil: return nil
            case let .bool(flag)?: return flag
            case let other?: throw fail("\"\(key)\" must be true or false, found \(other.kindName)")
            }
        }
        func optionalHex(_ key: String) throws(ScriptSyntaxError) -> [UInt8]? {
            switch json[key] {
            case nil: return nil
            case let .string(text)?:
                do { return try Hex.decode(text) } catch { throw fail("\"\(key)\": \(error)") }
            case let other?: throw fail("\"\(key)\" must be a hex string, found \(other.kindName)")
            }
        }
        func value(_ key: String) throws(ScriptSyntaxError) -> ScriptValue {
            guard let value = try optionalValue(key) else { throw fail("missing \"\(key)\"") }
            return value
        }
        func optionalValue(_ key: String) throws(ScriptSyntaxError) -> ScriptValue? {
            guard let item = json[key] else { return nil }
            switch ScriptValue.from(item) {
            case let .success(value): return value
            case let .failure(error): throw fail("\"\(key)\": \(error.reason)")
            }
        }
        func fields(_ key: String) throws(ScriptSyntaxError) -> [FieldValue] {
            guard let item = json[key] else { return [] }
            guard case let .object(pairs) = item else { throw fail("\"\(key)\" must be an object {field: value}") }
            var out: [FieldValue] = []
            for pair in pairs {
                switch ScriptValue.from(pair.value) {
                case let .success(value): out.append(FieldValue(name: pair.key, value: value))
                case let .failure(error): throw fail("\"\(key)\".\(pair.key): \(error.reason)")
                }
            }
            return out
        }
    }
}

// MARK: - Target

/// A script target over an ``Kernel/ArchPlatform``: every common step acts on the platform's
/// kernel (through ``SimulatedKernelTarget``), and the architecture steps reach the platform.
final class ArchKernelTarget: ScriptTarget {
    let platform: ArchPlatform
    let base: SimulatedKernelTarget

    init(platform: ArchPlatform) {
        self.platform = platform
        base = SimulatedKernelTarget(kernel: platform.kernel, sample: SampleLinkTSM())
    }

    var profileName: String { base.profileName }
    func command(named name: String) -> ScriptCommand? { base.command(named: name) }
    var commandNames: [String] { base.commandNames }
    func map(size: Int) throws(ScriptRunError) -> UInt64 { try base.map(size: size) }
    func write(_ bytes: [UInt8], at address: UInt64) -> Bool { base.write(bytes, at: address) }
    func read(at address: UInt64, count: Int) -> [UInt8]? { base.read(at: address, count: count) }
    func protect(_ address: UInt64, writable: Bool) -> Bool { base.protect(address, writable: writable) }
    func openIOMMUFD() -> Result<Int32, Errno> { base.openIOMMUFD() }
    func close(fd: Int32) -> Result<Void, Errno> { base.close(fd: fd) }
    func ioctl(fd: Int32, request: UInt32, argument: UInt64, signalPending: Bool) -> Result<Int, Errno> {
        base.ioctl(fd: fd, request: request, argument: argument, signalPending: signalPending)
    }
    func createVM() -> Result<UInt64, Errno> { base.createVM() }
    func vfioOpen(device: String) -> Result<Int32, Errno> { base.vfioOpen(device: device) }
    func vfioAssociate(vfio: Int32, vm: UInt64) -> Result<Void, Errno> { base.vfioAssociate(vfio: vfio, vm: vm) }
    func vfioBind(vfio: Int32, iommufd: Int32) -> Result<UInt32, Errno> { base.vfioBind(vfio: vfio, iommufd: iommufd) }
    func connect(device: String, input: String, signalPending: Bool) -> Result<Void, Errno> {
        base.connect(device: device, input: input, signalPending: signalPending)
    }
    func disconnect(device: String, input: String, signalPending: Bool) -> Result<Void, Errno> {
        base.disconnect(device: device, input: input, signalPending: signalPending)
    }
    func sysfsRead(device: String, attribute: String) -> Result<String, Errno> { base.sysfsRead(device: device, attribute: attribute) }
    func devsecLock(device: String, tsm: String) -> Result<Void, Errno> { base.devsecLock(device: device, tsm: tsm) }
    func holdLock(_ lock: String, device: String?) -> Result<UInt64, Errno> { base.holdLock(lock, device: device) }
    func releaseLock(_ handle: UInt64) -> Bool { base.releaseLock(handle) }
    var heldLocks: (global: Bool, dsm: Bool) { base.heldLocks }
    func configureSampleTSM(_ spec: SampleTSMSpec, residue: UInt64?, tsmCode: UInt64?) throws(ScriptRunError) {
        throw ScriptRunError("sample_tsm: this platform's tsm0 is the \(platform.arch) TSM, not the sample link TSM")
    }
}

// MARK: - Running

extension ScriptEngine {
    /// Runs an architecture step.
    func performArch(_ arch: ArchStep, _ step: ScriptStep, into result: inout ScriptStepResult) throws(ScriptRunError) {
        if case let .platform(spec) = arch {
            guard target == nil else { throw ScriptRunError("\"arch_platform\" must come before every step that uses the kernel") }
            let platform = try Self.makeArchPlatform(spec, baseDirectory: baseDirectory)
            target = ArchKernelTarget(platform: platform)
            result.text = "\(spec.arch) platform, profile \(platform.kernel.profile.name), DSMs \(platform.dsms.keys.sorted().map(\.description).joined(separator: " "))"
            return
        }
        guard let archTarget = target as? ArchKernelTarget else {
            throw ScriptRunError("\"\(arch.opName)\" needs an \"arch_platform\" step first")
        }
        let platform = archTarget.platform
        switch arch {
        case .platform:
            return
        case let .faultPlan(rules):
            do { platform.setFaultPlan(try FaultPlan(parsing: rules)) } catch { throw ScriptRunError("\(error)") }
            result.text = rules.isEmpty ? "no faults" : rules.joined(separator: " ")
        case let .tdiState(device, expectDevice, expectFirmware):
            let address = try Self.address(device)
            let deviceState = Self.stateName(platform.deviceTDIState(address))
            let firmwareState = Self.stateName(platform.firmwareTDIState(address))
            result.text = "device \(deviceState) firmware \(firmwareState)"
            if let expectDevice, expectDevice != deviceState {
                result.verdict = .mismatch
                result.details.append("device: expected \(expectDevice), got \(deviceState)")
            }
            if let expectFirmware, expectFirmware != firmwareState {
                result.verdict = .mismatch
                result.details.append("firmware: expected \(expectFirmware), got \(firmwareState)")
            }
        case let .tdiReport(device, save, gpaValue):
            let address = try Self.address(device)
            guard let id = address.functionID, let report = platform.dsm(serving: address)?.tdi(InterfaceID(functionID: id))?.report else {
                throw ScriptRunError("tdi_report: \(device) has no interface report (not locked?)")
            }
            environment.save("\(save).count", UInt64(report.mmioRanges.count))
            result.saved.append(("\(save).count", UInt64(report.mmioRanges.count)))
            var gpa = try gpaValue.map { (value) throws(ScriptRunError) in try archResolve(value) }
            for (index, range) in report.mmioRanges.enumerated() {
                let size = UInt64(range.numberOfPages) << 12
                var values: [(String, UInt64)] = [("pa", range.firstPage << 12), ("pages", UInt64(range.numberOfPages)),
                                                  ("size", size), ("range_id", UInt64(range.rangeID))]
                if let base = gpa {
                    values += [("gpa", base), ("gpa_top", base &+ size), ("gpa_last", base &+ size &- 4096)]
                    gpa = base &+ size
                }
                for (key, value) in values {
                    environment.save("\(save).\(index).\(key)", value)
                    result.saved.append(("\(save).\(index).\(key)", value))
                }
            }
        case let .guestCall(call):
            try performGuestCall(call, platform: platform, into: &result)
        case let .guestRequest(request):
            try performGuestRequest(request, step: step, platform: platform, target: archTarget, into: &result)
        }
    }

    static func makeArchPlatform(_ spec: ArchPlatformSpec, baseDirectory: String?) throws(ScriptRunError) -> ArchPlatform {
        let uapi: UAPIProfile
        do { uapi = try UAPIProfile.named(spec.profile ?? UAPIProfile.default.name) } catch { throw ScriptRunError("\(error)") }
        var profile = FirmwareProfile.defaults(for: spec.arch)
        for (key, value) in spec.switches {
            switch key {
            case "object_ops_tunnelled": profile.objectOpsTunnelled = value == "true"
            case "cca_object_numbering": profile.ccaObjectNumbering = value == "acs" ? .acs : .linux
            case "cca_read_object_honours_offset": profile.ccaReadObjectHonoursOffset = value == "true"
            case "sev_msg_numbering": profile.sevTIOMessageNumbering = value == "v0x81" ? .v0x81 : .v19
            case "sev_tdi_addressing": profile.sevTDIAddressing = value == "guest_device_id16" ? .guestDeviceID16 : .tdiID64
            case "sev_mmio_status_table": profile.sevMMIOStatusTable = value == "legacy" ? .legacy : .latest
            case "sev_set_state_payload": profile.sevSetStatePayload = value == "u32" ? .u32 : .byte
            default: break
            }
        }
        let path = spec.dump.hasPrefix("/") || baseDirectory == nil ? spec.dump : "\(baseDirectory ?? ".")/\(spec.dump)"
        guard let text = readTextFile(path, limit: DumpDevices.maximumFileSize) else { throw ScriptRunError("cannot read the device dump \(path)") }
        do {
            return try ArchPlatform(arch: spec.arch, lspci: text, uapiProfile: uapi, firmwareProfile: profile,
                                    seed: spec.seed, evidence: spec.evidence)
        } catch {
            throw ScriptRunError("\(error)")
        }
    }

    static func address(_ text: String) throws(ScriptRunError) -> PCIFunctionAddress {
        guard let address = PCIFunctionAddress(text) else { throw ScriptRunError("\"\(text)\" is not a PCI address") }
        return address
    }

    static func stateName(_ state: TDIState?) -> String {
        switch state {
        case nil: return "none"
        case .configUnlocked?: return "CONFIG_UNLOCKED"
        case .configLocked?: return "CONFIG_LOCKED"
        case .run?: return "RUN"
        case .error?: return "ERROR"
        }
    }

    private func archResolve(_ value: ScriptValue) throws(ScriptRunError) -> UInt64 {
        do { return try environment.resolve(value) } catch { throw ScriptRunError(error.reason) }
    }

    private func archFields(_ fields: [FieldValue], allowed: [String], context: String) throws(ScriptRunError) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for field in fields {
            guard allowed.contains(field.name) else {
                throw ScriptRunError("\(context) has no field \"\(field.name)\" (fields: \(allowed.joined(separator: ", ")))")
            }
            out[field.name] = try archResolve(field.value)
        }
        return out
    }

    private func performGuestCall(_ call: GuestCallStep, platform: ArchPlatform, into result: inout ScriptStepResult) throws(ScriptRunError) {
        let address = try Self.address(call.device)
        let fd = try archResolve(call.vm)
        let vm: VMHandle
        do { vm = try platform.kernel.vm(Int32(truncatingIfNeeded: fd)) } catch { throw ScriptRunError("\(call.vm) is not a VM file descriptor") }
        var status: UInt64
        var outputs: [(String, UInt64)] = []
        if call.call.hasPrefix("RSI") {
            guard let cca = platform.cca else { throw ScriptRunError("\(call.call) is a Realm (CCA) call; this is a \(platform.arch) platform") }
            switch call.call {
            case "RSI_VDEV_GET_INFO":
                _ = try archFields(call.fields, allowed: [], context: call.call)
                let got = cca.rsiVDEVGetInfo(address, vm: vm)
                status = got.status
                if let info = got.info {
                    outputs = [("state", UInt64(info.state.rawValue)), ("lock_nonce", info.lockNonce),
                               ("meas_nonce", info.measurementsNonce), ("report_nonce", info.reportNonce)]
                }
            case "RSI_VDEV_VALIDATE_MAPPING":
                let f = try archFields(call.fields, allowed: ["gpa_base", "gpa_top", "pa_base"], context: call.call)
                status = cca.rsiVDEVValidateMapping(address, vm: vm, gpaBase: f["gpa_base"] ?? 0, gpaTop: f["gpa_top"] ?? 0, paBase: f["pa_base"] ?? 0)
            case "RSI_VDEV_DMA_ENABLE":
                let f = try archFields(call.fields, allowed: ["lock_nonce", "meas_nonce", "report_nonce"], context: call.call)
                if f.isEmpty {
                    status = cca.rsiVDEVDMAEnable(address, vm: vm)
                } else {
                    let current = cca.rsiVDEVGetInfo(address, vm: vm).info
                    status = cca.rsiVDEVDMAEnable(address, vm: vm, nonces: (f["lock_nonce"] ?? current?.lockNonce ?? 0,
                                                                          f["meas_nonce"] ?? current?.measurementsNonce ?? 0,
                                                                          f["report_nonce"] ?? current?.reportNonce ?? 0))
                }
            default:
                _ = try archFields(call.fields, allowed: [], context: call.call)
                status = cca.rsiVDEVDMADisable(address, vm: vm)
            }
        } else {
            guard let tdx = platform.tdx else { throw ScriptRunError("\(call.call) is a TD (TDX) call; this is a \(platform.arch) platform") }
            switch call.call {
            case "TDG.TDI.RD":
                let f = try archFields(call.fields, allowed: ["field"], context: call.call)
                let read = tdx.tdgTDIRead(address, vm: vm, field: f["field"] ?? TDX.TDIField.tdispState.rawValue)
                status = read.status
                outputs = [("value", read.value)]
            case "TDG.TDI.START":
                let f = try archFields(call.fields, allowed: ["session"], context: call.call)
                status = tdx.tdgTDIStart(address, vm: vm, bindSessionID: f["session"])
            case "TDG.VP.VMCALL.TDCM":
                let f = try archFields(call.fields, allowed: ["operation"], context: call.call)
                guard let answer = platform.tdcm(address, vm: vm, operation: UInt16(truncatingIfNeeded: f["operation"] ?? 1)) else {
                    throw ScriptRunError("TDCM operation \(f["operation"] ?? 1): not served by the TDX module (BIND, START_TDI and UNBIND go through the kernel)")
                }
                status = UInt64(answer.status)
                var value: UInt64 = 0
                for (index, byte) in answer.data.prefix(8).enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
                outputs = [("error", UInt64(answer.error)), ("data_length", UInt64(answer.data.count)), ("value", value)]
            case "TDG.MMIO.ACCEPT":
                let f = try archFields(call.fields, allowed: ["gpa", "pages"], context: call.call)
                let gpa = f["gpa"] ?? 0
                status = 0
                for page in 0..<max(1, min(f["pages"] ?? 1, 1 << 20)) where status == 0 {
                    status = tdx.tdgMMIOAccept(address, vm: vm, gpa: gpa &+ page << 12)
                }
            default:
                _ = try archFields(call.fields, allowed: [], context: call.call)
                status = tdx.tdgDMARAccept(address, vm: vm)
            }
        }
        result.fields = [("status", status)] + outputs.map { (name: $0.0, value: $0.1) }
        if let save = call.save {
            for (name, value) in [("status", status)] + outputs {
                environment.save("\(save).\(name)", value)
                result.saved.append(("\(save).\(name)", value))
            }
        }
        let expected = try call.expectStatus.map { (value) throws(ScriptRunError) in try archResolve(value) } ?? 0
        result.expected = "status 0x\(String(expected, radix: 16))"
        if status != expected {
            result.verdict = .mismatch
            result.details.append("status: expected 0x\(String(expected, radix: 16)), got 0x\(String(status, radix: 16))")
        }
    }
}

// MARK: - Guest requests

/// What a payload name builds: its bytes, default op, its architecture, default resp_len, and how
/// to decode the response.
struct BuiltPayload {
    var bytes: [UInt8]
    var op: GuestOp
    var arch: TVMArch
    var responseLength: Int
    var decode: ResponseKind
    enum ResponseKind { case none, object, objectInfo, sevMMIOValidate, sevMMIOConfig, sevSDTEWrite }
}

extension ScriptEngine {
    /// Field names of each payload (documented in docs/script-format.md).
    static let payloadFields: [String: [String]] = [
        "cca.read_object": ["object_type", "reserved", "offset"],
        "cca.regen_object": ["object_type", "reserved", "flags", "nonce"],
        "cca.object_info": ["object_type"],
        "cca.validate_mmio": ["gpa_base", "gpa_top", "pa_base"],
        "cca.set_tdi_state": ["state"],
        "sev.set_tdi_state": ["state"],
        "sev.mmio_validate": ["seqno", "msg_type", "msg_version", "tdi_id", "subrange_base", "subrange_page_count",
                              "range_offset", "validated", "force_validated", "range_id"],
        "sev.mmio_config": ["seqno", "msg_type", "msg_version", "guest_device_id", "range_id", "write", "is_non_tee_mem"],
        "sev.sdte_write": ["seqno", "msg_type", "msg_version", "tdi_id", "valid", "vtom"],
        "raw": [],
    ]

    func buildPayload(_ request: GuestRequestStep, platform: ArchPlatform) throws(ScriptRunError) -> BuiltPayload {
        let name = request.payload.hasPrefix("tdx.") ? "cca." + request.payload.dropFirst(4) : request.payload
        let arch: TVMArch = request.payload.hasPrefix("tdx.") ? .tdx : request.payload.hasPrefix("sev.") ? .sev : .cca
        let f = try archFields(request.fields, allowed: Self.payloadFields[name] ?? [], context: "payload \(request.payload)")
        func u32(_ key: String, _ fallback: UInt32 = 0) -> UInt32 { f[key].map { UInt32(truncatingIfNeeded: $0) } ?? fallback }
        func u16(_ key: String, _ fallback: UInt16 = 0) -> UInt16 { f[key].map { UInt16(truncatingIfNeeded: $0) } ?? fallback }
        // The TDI the SEV message is about: the only bound TDI of the platform, unless given.
        let bound = platform.kernel.pciTSM.boundTDIs.sorted { $0.key < $1.key }.first
        let sevTDI = bound.flatMap { platform.sev?.tdiID($0.key) } ?? 0
        let sequence: UInt64 = f["seqno"] ?? bound.flatMap { platform.sev?.nextSequenceNumber(vm: $0.value.vm) } ?? 1
        let numbering = platform.driver.firmwareProfile.sevTIOMessageNumbering
        func message(_ tio: SEV.TIOMessage, _ body: [UInt8]) -> [UInt8] {
            var header = SEV.MessageHeader(sequenceNumber: sequence, messageType: UInt8(truncatingIfNeeded: f["msg_type"] ?? UInt64(tio.requestType(numbering))),
                                           messageSize: UInt16(truncatingIfNeeded: body.count))
            if let version = f["msg_version"] { header.messageVersion = UInt8(truncatingIfNeeded: version) }
            return header.encoded() + body
        }
        switch name {
        case "cca.read_object":
            return BuiltPayload(bytes: CCA.ReadObjectRequest(objectType: u32("object_type", 3), reserved: u32("reserved"), offset: f["offset"] ?? 0).encoded(),
                                op: .readObject, arch: arch, responseLength: 4096, decode: .object)
        case "cca.regen_object":
            return BuiltPayload(bytes: CCA.RegenObjectRequest(objectType: u32("object_type", 3), reserved: u32("reserved"), flags: f["flags"] ?? 0,
                                                              nonceAddress: f["nonce"] ?? 0).encoded(),
                                op: .regenObject, arch: arch, responseLength: 0, decode: .none)
        case "cca.object_info":
            return BuiltPayload(bytes: CCA.ObjectInfoRequest(objectType: u32("object_type", 3)).encoded(), op: .objectInfo, arch: arch,
                                responseLength: 4, decode: .objectInfo)
        case "cca.validate_mmio":
            return BuiltPayload(bytes: CCA.ValidateMMIORequest(gpaBase: f["gpa_base"] ?? 0, gpaTop: f["gpa_top"] ?? 0, paBase: f["pa_base"] ?? 0).encoded(),
                                op: .validateMMIO, arch: arch, responseLength: 0, decode: .none)
        case "cca.set_tdi_state":
            return BuiltPayload(bytes: CCA.SetTDIStateRequest(state: u32("state", 2)).encoded(), op: .setTDIState, arch: arch,
                                responseLength: 0, decode: .none)
        case "sev.set_tdi_state":
            let state = u32("state", 1)
            let bytes: [UInt8] = platform.driver.firmwareProfile.sevSetStatePayload == .u32
                ? withUnsafeBytes(of: state.littleEndian) { Array($0) } : [UInt8(truncatingIfNeeded: state)]
            return BuiltPayload(bytes: bytes, op: .setTDIState, arch: .sev, responseLength: 0, decode: .none)
        case "sev.mmio_validate":
            let body = SEV.MMIOValidateRequest(tdiID: f["tdi_id"] ?? sevTDI, subrangeBase: f["subrange_base"] ?? 0,
                                               subrangePageCount: u32("subrange_page_count", 1), rangeOffset: u32("range_offset"),
                                               validated: (f["validated"] ?? 1) != 0, forceValidated: (f["force_validated"] ?? 0) != 0,
                                               rangeID: u16("range_id")).encoded()
            return BuiltPayload(bytes: message(.mmioValidate, body), op: .validateMMIO, arch: .sev,
                                responseLength: SEV.MessageHeader.size + SEV.MMIOValidateResponse.size, decode: .sevMMIOValidate)
        case "sev.mmio_config":
            let guestID = u16("guest_device_id", bound.map { UInt16(truncatingIfNeeded: $0.value.tdiID) } ?? 0)
            let body = SEV.MMIOConfigRequest(guestDeviceID: guestID, rangeID: u16("range_id"), write: (f["write"] ?? 0) != 0,
                                             isNonTEEMemory: (f["is_non_tee_mem"] ?? 0) != 0).encoded()
            return BuiltPayload(bytes: message(.mmioConfig, body), op: .validateMMIO, arch: .sev,
                                responseLength: SEV.MessageHeader.size + SEV.MMIOConfigResponse.size, decode: .sevMMIOConfig)
        case "sev.sdte_write":
            let valid = (f["valid"] ?? 1) != 0
            let sdte = valid ? SEV.SDTEWriteRequest.validSDTE(vtom: f["vtom"] ?? 1 << 46) : []
            let body = SEV.SDTEWriteRequest(tdiID: f["tdi_id"] ?? sevTDI, sdte: sdte).encoded()
            return BuiltPayload(bytes: message(.sdteWrite, body), op: valid ? .sevEnableDMA : .sevDisableDMA, arch: .sev,
                                responseLength: SEV.MessageHeader.size + SEV.SDTEWriteResponse.size, decode: .sevSDTEWrite)
        default:
            return BuiltPayload(bytes: request.hex ?? [], op: .setTDIState, arch: platform.arch, responseLength: 0, decode: .none)
        }
    }

    func performGuestRequest(_ request: GuestRequestStep, step: ScriptStep, platform: ArchPlatform, target: ArchKernelTarget,
                             into result: inout ScriptStepResult) throws(ScriptRunError) {
        let held = target.heldLocks
        guard !held.global && !held.dsm else {
            // The ioctl would wait for the held lock forever (no signal pending): refuse, as the
            // engine does for every kernel step while a lock is held.
            throw ScriptRunError("a pci-tsm lock is held: release it (release_lock) before guest_request")
        }
        let profile = platform.kernel.profile
        guard profile.tsmReqLayout.hasOpAndArch else {
            throw ScriptRunError("guest_request builds the revised iommu_vdevice_tsm_req; profile \(profile.name) has none (use ioctl)")
        }
        result.command = "IOMMU_VDEVICE_TSM_REQ"
        let built = try buildPayload(request, platform: platform)
        // op: by name in the profile's numbering, or a raw number.
        let opWire: UInt32
        if let text = request.reqOp, let number = UInt32(text) {
            opWire = number
        } else {
            let op = request.reqOp.flatMap(ArchStepParser.opValue) ?? built.op
            guard let wire = profile.rawValue(of: Self.uapiOp(op)) else {
                throw ScriptRunError("profile \(profile.name) has no op \(op) (give req_op as a number)")
            }
            opWire = wire
        }
        let arch: UInt32
        if let text = request.tvmArch {
            arch = ArchStepParser.archValue(text)?.rawValue ?? UInt32(text) ?? 0
        } else {
            arch = built.arch.rawValue
        }
        let requestAddress = try target.map(size: max(1, built.bytes.count))
        guard target.write(built.bytes, at: requestAddress) else { throw ScriptRunError("cannot write the request payload") }
        let responseLength = try request.respLen.map { (value) throws(ScriptRunError) in Int(truncatingIfNeeded: try archResolve(value)) } ?? built.responseLength
        var responseAddress: UInt64 = 0
        if responseLength > 0 {
            responseAddress = try target.map(size: responseLength)
            if request.readOnlyResponse { _ = target.protect(responseAddress, writable: false) }
        }
        let value = IOMMUVDeviceTSMReq(
            vdeviceID: UInt32(truncatingIfNeeded: try archResolve(request.vdevice)), op: opWire, tvmArch: arch,
            reqLen: UInt32(truncatingIfNeeded: try request.reqLen.map { (v) throws(ScriptRunError) in try archResolve(v) } ?? UInt64(built.bytes.count)),
            respLen: UInt32(truncatingIfNeeded: responseLength),
            reqUptr: try request.reqUptr.map { (v) throws(ScriptRunError) in try archResolve(v) } ?? requestAddress,
            respUptr: try request.respUptr.map { (v) throws(ScriptRunError) in try archResolve(v) } ?? responseAddress,
            tsmCode: 0)
        let argument = try target.map(size: IOMMUVDeviceTSMReq.layout.size)
        guard target.write(value.encode(), at: argument) else { throw ScriptRunError("cannot write the argument") }
        let fd: Int32
        if let given = request.fd {
            fd = Int32(truncatingIfNeeded: Int64(bitPattern: try archResolve(given)))
        } else if let last = lastIOMMUFD {
            fd = last
        } else {
            throw ScriptRunError("no iommufd open (open_iommufd first, or give \"fd\")")
        }
        let messagesBefore = platform.deviceMessages
        let callsBefore = platform.driver.callLog.count
        let outcome = target.ioctl(fd: fd, request: profile.tsmReq.request, argument: argument, signalPending: false)
        let messages = platform.deviceMessages - messagesBefore
        let calls = platform.driver.callLog.count - callsBefore
        let back = target.read(at: argument, count: IOMMUVDeviceTSMReq.layout.size).flatMap { try? IOMMUVDeviceTSMReq(bytes: $0) }
        let tsmCode = back?.tsmCode ?? 0
        result.fields = [("tsm_code", tsmCode)]
        check(outcome, step: step, into: &result, save: nil)
        // Decoded response fields (on success).
        var decoded: [(name: String, value: UInt64)] = []
        if case let .success(residue) = outcome, responseLength > 0, let bytes = target.read(at: responseAddress, count: responseLength) {
            decoded = Self.decode(built.decode, bytes, residue: residue, responseLength: responseLength, platform: platform)
        }
        result.fields += decoded
        result.fields += [("device_messages", UInt64(messages)), ("firmware_calls", UInt64(calls))]
        func expect(_ name: String, _ wanted: ScriptValue?, _ actual: UInt64) throws(ScriptRunError) {
            guard let wanted else { return }
            let value = try archResolve(wanted)
            if value != actual {
                result.verdict = .mismatch
                result.details.append("\(name): expected \(value), got \(actual)")
            }
        }
        try expect("tsm_code", request.expectTSMCode, tsmCode)
        try expect("device_messages", request.expectDeviceMessages, UInt64(messages))
        try expect("firmware_calls", request.expectFirmwareCalls, UInt64(calls))
        for field in request.expectResponse {
            guard let actual = decoded.first(where: { $0.name == field.name })?.value else {
                result.verdict = .mismatch
                result.details.append("response has no field \(field.name) (decoded: \(decoded.map(\.name).joined(separator: ", ")))")
                continue
            }
            try expect(field.name, field.value, actual)
        }
        for (name, field) in request.saveResponse {
            guard let actual = decoded.first(where: { $0.name == field })?.value else {
                throw ScriptRunError("save_response: the response has no field \(field)")
            }
            environment.save(name, actual)
            result.saved.append((name, actual))
        }
    }

    static func uapiOp(_ op: GuestOp) -> GuestRequestOp {
        switch op {
        case .readObject: return .readObject
        case .regenObject: return .regenObject
        case .objectInfo: return .objectInfo
        case .validateMMIO: return .validateMMIO
        case .setTDIState: return .setTDIState
        case .sevEnableDMA: return .sevEnableDMA
        case .sevDisableDMA: return .sevDisableDMA
        }
    }

    static func decode(_ kind: BuiltPayload.ResponseKind, _ bytes: [UInt8], residue: Int, responseLength: Int,
                       platform: ArchPlatform) -> [(name: String, value: UInt64)] {
        let written = max(0, responseLength - residue)
        let body = Array(bytes.prefix(written))
        switch kind {
        case .none:
            return []
        case .object:
            let reports = platform.dsms.values.flatMap { dsm in dsm.interfaceIDs.compactMap { dsm.tdi($0)?.report?.encoded() } }
            return [("length", UInt64(written)), ("is_report", reports.contains(body) ? 1 : 0)]
        case .objectInfo:
            guard let info = try? CCA.ObjectInfoResponse(decoding: Array(bytes.prefix(4))) else { return [] }
            return [("object_size", UInt64(info.objectSize))]
        case .sevMMIOValidate, .sevMMIOConfig, .sevSDTEWrite:
            guard let message = try? SEV.GuestMessage(decoding: body) else { return [] }
            var out: [(name: String, value: UInt64)] = [("seqno", message.header.sequenceNumber), ("msg_type", UInt64(message.header.messageType))]
            switch kind {
            case .sevMMIOValidate:
                if let r = try? SEV.MMIOValidateResponse(decoding: message.body) {
                    out += [("status", UInt64(r.status)), ("changed", r.changed ? 1 : 0), ("range_id", UInt64(r.rangeID))]
                }
            case .sevMMIOConfig:
                if let r = try? SEV.MMIOConfigResponse(decoding: message.body) {
                    out += [("status", UInt64(r.status)), ("attributes", UInt64(r.attributes)), ("range_id", UInt64(r.rangeID))]
                }
            default:
                if let r = try? SEV.SDTEWriteResponse(decoding: message.body) { out += [("status", UInt64(r.status))] }
            }
            return out
        }
    }
}
