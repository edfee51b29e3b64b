// `tsmctl assign`: the whole assignment of one PCI function into a confidential VM, as a VMM and
// a TVM do it, over the VMM library (simulated or Linux backend) and the guest agent. Issue 6
// deliverables 3 and 4; docs/assign.md walks through the output.
import Device
import Firmware
import Foundation
import Guest
import Kernel
import PCI
import Sync
import SystemPackage
import TDISP
import UAPI
import VMM
import Wire

/// Bad input to `tsmctl assign`: one line naming the problem and the input (exit status 2).
struct AssignInputError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What `tsmctl assign` is asked to do (the command's options, parsed and checked).
struct AssignRequest: Sendable {
    /// The architecture of the TSM and the TVM.
    var arch: TVMArch
    /// Each `--device` file's path and text.
    var devices: [(path: String, text: String)]
    /// `--function`: the function to assign (default: the first DSM-capable function).
    var function: String?
    /// `--vf N`: VF N (1-based) of the function (or of the default DSM).
    var vf: Int?
    /// The kernel's uAPI profile.
    var profile: UAPIProfile = .default
    /// `--keep`: leave the TDI assigned (no teardown).
    var keep = false
    /// `--tamper`: the object the untrusted VMM path alters.
    var tamper: TamperingChannel.Target?
    /// `--fault` rules (firmware FaultPlan text form).
    var faults: [String] = []
    /// `--trust-anchor`: the file and the verifier built on it (default: the emulated device's root).
    var trustAnchor: (path: String, verifier: EvidenceVerifier)?
}

/// One line of the transcript: a step, the layers it crossed, what was sent, what came back,
/// and the TDI state the device holds after it.
struct AssignStep: Sendable, Encodable {
    /// 1-based position.
    var index: Int
    /// The actor that issued the step: `vmm`, `host-admin` or `guest`.
    var actor: String
    /// The step name (a kernel macro, a guest step, …).
    var step: String
    /// Layers crossed outward (`guest`, `vmm`, `kernel`, `tsm`, `device`).
    var path: [String]
    /// What was sent, in words.
    var sent: String
    /// What came back, in words.
    var result: String
    /// `ok`, `failed` or `refused`.
    var status: String
    /// The TDISP state the DSM holds for the TDI after the step (nil: no TDI yet).
    var tdiState: String?
    /// TDISP requests that reached the device during the step.
    var tdispMessages: Int
}

/// The outcome of a run.
struct AssignOutcome: Sendable, Encodable {
    var arch: String
    var backend: String
    var profile: String
    var function: String
    var dsm: String
    var steps: [AssignStep]
    /// The TDI reached RUN (as the device and the guest see it).
    var reachedRun: Bool
    /// The guest verified the evidence (chain, measurements, report digests).
    var evidenceVerified: Bool
    /// The guest's refusal or the failing step's reason; nil on success.
    var failure: String?
    /// The refusal code of the guest (`certificateUntrusted`, …), when it refused.
    var refusal: String?
    /// Whether the TDI was torn down at the end.
    var tornDown: Bool
    /// The TDI state at the end (device view).
    var finalState: String?
    /// Exit status 0: the TDI reached RUN and the evidence verified.
    var succeeded = false
    /// The `--fault` rules in force (empty: none).
    var faults: [String] = []
    /// Whether the guest agent ran (false when a host step failed before it).
    var guestRan = false
    /// The `--fault` rules whose call never happened in the run (e.g. `fw:TDI_BIND` on CCA,
    /// whose firmware has no such call): they had no effect.
    var unmatchedFaults: [String] = []
}

/// One JSON Lines record of `--trace` (docs/decode.md "Trace line format"; `tsmctl decode` reads
/// `layer`, `kind`, `profile` and `hex` and ignores the other keys).
///
/// | key | lines | value |
/// |---|---|---|
/// | `layer` | all | `uapi`, `guest`, `tsm`, `firmware`, `tdisp` |
/// | `kind` | all | the decode kind (`iommu_vdevice_tsm_op`, `tdisp`, `sev:tdi_info:request`, `auto`) |
/// | `profile` | uAPI | the uAPI profile name |
/// | `hex` | all | the bytes |
/// | `step` | all | the uAPI command (`IOMMU_VDEVICE_TSM_OP`), guest step, or host-admin action |
/// | `direction` | all | uAPI `in` / `out (rc N)` / `out (ERRNO)`; guest `request` / `response`; TDISP `TSM→DSM` / `DSM→TSM` |
/// | `message`, `code` | TDISP | the TDISP message name and MessageType (`LOCK_INTERFACE_REQUEST`, `0x83`) |
/// | `dsm`, `tdi`, `interfaceID` | TDISP | the DSM's BDF; the TDI the INTERFACE_ID names (`e1:04.0`) and its FUNCTION_ID (`0x0000e120`) |
/// | `decoded` | TDISP | the decoded message, as `tsmctl decode --json` prints it |
struct AssignTraceLine: Encodable {
    var layer: String
    var kind: String
    var profile: String?
    var hex: String
    var step: String
    var direction: String
    var message: String?
    var code: String?
    var dsm: String?
    var tdi: String?
    var interfaceID: String?
    var decoded: DecodedMessage?
}

/// The trace as it is built: written lines, and places held for a tunnelled guest payload (the
/// VMM writes the request into user memory before the TSM_REQ ioctl and reads the response after
/// it; the guest agent reports both only when its step ends, so its lines are put back where the
/// bytes crossed). Places never filled are dropped.
enum AssignTraceEntry {
    case line(AssignTraceLine)
    case payload(request: Bool, bytes: [UInt8])
}

/// What the flow records while it runs (behind one lock).
struct AssignFlowState {
    var steps: [AssignStep] = []
    var trace: [AssignTraceEntry] = []
    /// The DSM's TDISP request count at the last recorded step.
    var messages = 0
    var reportDecoded = false
    /// The uAPI command in flight (between its `in` and `out` trace lines).
    var inFlight: String?
    /// What the flow does outside an ioctl (the `step` of TDISP lines sent then).
    var context = "set-up"
}

/// The assignment flow, driven over an ``IOMMUFDBackend`` built on a simulated host.
final class AssignFlow: Sendable {
    let request: AssignRequest
    let topology: PCITopology
    let target: PCIFunction
    let dsmFunction: PCIFunction

    /// The transcript and trace so far (`Sync.Locked`: a lock the thread sanitizer sees).
    private let state = Locked(AssignFlowState())

    /// Checks the input: parses the dumps, finds the function and its DSM.
    /// - Throws: ``AssignInputError`` naming the problem and the input.
    init(_ request: AssignRequest) throws(AssignInputError) {
        self.request = request
        guard !request.devices.isEmpty else { throw AssignInputError("no --device given: name an lspci -vvv -xxxx dump") }
        if request.profile.name == UAPIProfile.v5.name {
            throw AssignInputError("profile 'v5' has no op-based TSM_REQ (scope API only): the guest flows need 'revised' or 'rev-k'")
        }
        let joined = request.devices.map(\.text).joined(separator: "\n\n")
        let paths = request.devices.map(\.path).joined(separator: ", ")
        // Each dump on its own first, so the message names the file that is not a dump.
        for device in request.devices {
            do { _ = try PCITopology(lspci: device.text) } catch {
                throw AssignInputError("\(device.path) is not a PCI configuration space dump: \(error)")
            }
        }
        let topology: PCITopology
        do { topology = try PCITopology(lspci: joined) } catch {
            throw AssignInputError("the --device dumps \(paths) do not form one topology (is a dump given twice?): \(error)")
        }
        guard !topology.functions.isEmpty else { throw AssignInputError("\(paths) holds no PCI function") }
        self.topology = topology
        var base: PCIFunction
        if let text = request.function {
            guard let bdf = BDF(text) else { throw AssignInputError("--function \(text) is not a PCI address (BB:DD.F or DDDD:BB:DD.F)") }
            guard let found = topology[bdf] else {
                let known = topology.physicalFunctions.map { function in
                    let vfs = topology.virtualFunctions(of: function.bdf).count
                    return "\(function.bdf)" + (vfs > 0 ? " with \(vfs) VFs, --vf 1…\(vfs)" : "")
                }.joined(separator: ", ")
                throw AssignInputError("--function \(text): no such function in \(paths) (physical functions: \(known))")
            }
            base = found
        } else {
            guard let dsm = topology.functions.first(where: \.canBeDSM) else {
                throw AssignInputError("\(paths) has no function that can be a TDI: no DSM (a function 0 endpoint or upstream port with IDE or DevCap TEE-IO)")
            }
            base = dsm
        }
        if let vf = request.vf {
            let count = topology.virtualFunctions(of: base.bdf).count
            guard vf >= 1 else { throw AssignInputError("--vf \(vf): VF numbers start at 1") }
            guard let found = topology.virtualFunction(of: base.bdf, index: vf) else {
                throw AssignInputError(count == 0
                    ? "--vf \(vf): \(base.bdf) has no VFs (no SR-IOV capability) in \(paths)"
                    : "--vf \(vf): \(base.bdf) has \(count) VFs (TotalVFs) in \(paths)")
            }
            base = found
        }
        guard let dsm = topology.findDSM(for: base.bdf) else {
            throw AssignInputError("\(base.bdf) in \(paths) cannot be a TDI: no DSM above it (no function 0 with IDE or DevCap TEE-IO on its path)")
        }
        target = base
        dsmFunction = dsm
    }

    var steps: [AssignStep] { state.withLock { $0.steps } }
    /// The trace lines, in the order the bytes crossed their layer.
    var trace: [AssignTraceLine] {
        state.withLock { state in
            state.trace.compactMap { entry in
                if case let .line(line) = entry { return line }
                return nil
            }
        }
    }

    /// Records one transcript line; counts the TDISP messages that reached the DSM since the last
    /// one (a step that reached the device gets `device` on its path).
    fileprivate func record(_ host: Host, _ interface: InterfaceID, actor: String, _ name: String, _ path: [String],
                            sent: String, result: String, status: String = "ok") {
        let now = host.driver.port(at: host.dsmAddress)?.messages ?? 0
        let tdiState = host.dsm.tdi(interface)?.state.description
        let index = state.withLock { state in
            let count = now - state.messages
            state.messages = now
            let fullPath = count > 0 && !path.contains("device") ? path + ["device"] : path
            state.steps.append(AssignStep(index: state.steps.count + 1, actor: actor, step: name, path: fullPath, sent: sent,
                                          result: result, status: status, tdiState: tdiState, tdispMessages: count))
            return state.steps.count
        }
        // Progress on a terminal only (the transcript goes to stdout at the end).
        if isatty(STDERR_FILENO) == 1 {
            let line = "\r\u{1B}[K[\(index)] \(actor): \(name)"
            _ = try? FileDescriptor.standardError.writeAll(Array(line.utf8))
        }
    }
    /// Records a transcript line of a run with no simulated host (the Linux backend): no device
    /// state or TDISP count can be read from the host, so both stay empty.
    func recordHostless(actor: String, _ name: String, _ path: [String], sent: String, result: String,
                        status: String = "ok") {
        state.withLock { state in
            state.steps.append(AssignStep(index: state.steps.count + 1, actor: actor, step: name, path: path, sent: sent,
                                          result: result, status: status, tdiState: nil, tdispMessages: 0))
        }
    }

    /// The uAPI trace sink for a backend (shared by the simulated and the Linux runs).
    func traceSink(profile: UAPIProfile) -> @Sendable (BackendEvent) -> Void {
        { [weak self] event in self?.backendEvent(event, profile: profile) }
    }

    private func traceLine(_ line: AssignTraceLine) { state.withLock { $0.trace.append(.line(line)) } }
    /// Names what the flow does next outside an ioctl (the `step` of TDISP lines sent meanwhile).
    private func setContext(_ context: String) { state.withLock { $0.context = context } }

    /// The host: simulated kernel, the arch TSM as tsm0, a DSM model behind it with evidence.
    struct Host {
        let kernel: SimulatedKernel
        let driver: any ArchTSMDriver
        let dsm: DSM
        let evidence: DeviceEvidence
        let trustAnchor: [UInt8]
        let dsmAddress: PCIFunctionAddress
    }

    /// Builds the simulated host (as ``ArchPlatform`` does, with its EMU-ARCH-4 evidence, keeping
    /// the root of the DSM's chain as the guest's trust anchor).
    func makeHost() throws(AssignInputError) -> Host {
        let kernel: SimulatedKernel
        do {
            kernel = try SimulatedKernel(profile: request.profile, functions: KernelPCIFunction.fromTopology(topology))
        } catch { throw AssignInputError("the simulated kernel refused the functions of the dump: \(errnoText(error))") }
        let driver = ArchTSM.make(request.arch, uapiProfile: request.profile)
        var dsmObject: DSM?
        var attached: DeviceEvidence?
        var anchor: [UInt8] = []
        for function in topology.functions where function.canBeDSM {
            let address = PCIFunctionAddress(function.bdf)
            let dsm: DSM
            do {
                dsm = try DSM(device: topology, dsm: function.bdf, entropy: .seeded(1 &+ UInt64(address.routingID)))
            } catch { throw AssignInputError("DSM of \(function.bdf): \(error)") }
            let evidence: DeviceEvidence
            do {
                let made = try ArchPlatform.deviceEvidence(for: function, seed: 1)  // EMU-ARCH-4: signed measurements
                evidence = made.evidence
                if function.bdf == dsmFunction.bdf { anchor = made.trustAnchorDER }
            } catch { throw AssignInputError("device identity of \(function.bdf): \(error)") }
            driver.attach(dsm: dsm, at: address, evidence: evidence)
            if function.bdf == dsmFunction.bdf {
                dsmObject = dsm
                attached = evidence
            }
        }
        guard let dsmObject, let attached, !anchor.isEmpty else {
            throw AssignInputError("\(dsmFunction.bdf) cannot be a DSM")
        }
        do { _ = try kernel.pciTSM.register(link: driver) } catch {
            throw AssignInputError("the simulated kernel refused the TSM: \(errnoText(error))")
        }
        if !request.faults.isEmpty {
            do { driver.setFaultPlan(try FaultPlan(parsing: request.faults)) } catch {
                throw AssignInputError("--fault: \(error)")
            }
        }
        return Host(kernel: kernel, driver: driver, dsm: dsmObject, evidence: attached, trustAnchor: anchor,
                    dsmAddress: PCIFunctionAddress(dsmFunction.bdf))
    }

    /// The rules of `faults` whose trigger never occurred in the firmware's `callLog` (one entry
    /// per firmware call by name, `TDISP 0x86` per TDISP request): the `fw:NAME[#K]` rules with
    /// fewer than K calls named NAME, `tdisp:CODE[#K]` with fewer than K requests of CODE, `fw#N`
    /// with fewer than N firmware calls. A rule text that does not parse is left out (the
    /// command has refused it already).
    static func unmatchedFaults(_ faults: [String], callLog: [String]) -> [String] {
        faults.filter { text in
            guard let rule = try? FaultPlan.Rule(parsing: text) else { return false }
            switch rule.trigger {
            case let .nthFirmwareCall(n):
                return callLog.filter { !$0.hasPrefix("TDISP ") }.count < n
            case let .firmwareCall(name, occurrence):
                return callLog.filter { $0 == name }.count < occurrence
            case let .tdispRequest(code, occurrence):
                return callLog.filter { $0 == "TDISP 0x" + String(code, radix: 16) }.count < occurrence
            }
        }
    }

    // MARK: Tracing

    /// Kind of a uAPI request code under `profile` (nil: not one decode knows).
    private static func uapiKind(_ request: UInt32, profile: UAPIProfile) -> String? {
        if request == CommandSpec.vfioDeviceBindIOMMUFD.request { return "vfio_device_bind_iommufd" }
        if case let .command(spec) = profile.dispatchSlot(forRequest: request) { return spec.name.lowercased() }
        return nil
    }

    /// The trace lines of a backend event: an ioctl's argument struct as issued (`in`, before the
    /// call, so that the TDISP messages it causes follow it) and as the kernel left it (`out`);
    /// a held place for each user-memory payload (the guest's lines fill them).
    private func backendEvent(_ event: BackendEvent, profile: UAPIProfile) {
        switch event {
        case let .ioctlIssued(_, request, argument):
            guard let kind = Self.uapiKind(request, profile: profile) else { return }
            state.withLock { $0.inFlight = kind.uppercased() }
            guard (try? DecodeRegistry.decode(argument, as: kind, profile: profile)) != nil else { return }
            traceLine(AssignTraceLine(layer: "uapi", kind: kind, profile: profile.name, hex: Hex.encode(argument),
                                      step: kind.uppercased(), direction: "in"))
        case let .ioctl(_, request, _, argumentOut, result):
            guard let kind = Self.uapiKind(request, profile: profile) else { return }
            state.withLock { $0.inFlight = nil }
            let outcome: String
            switch result {
            case let .success(value): outcome = "out (rc \(value))"
            case let .failure(errno): outcome = "out (\(errno.linuxName))"
            }
            guard (try? DecodeRegistry.decode(argumentOut, as: kind, profile: profile)) != nil else { return }
            traceLine(AssignTraceLine(layer: "uapi", kind: kind, profile: profile.name, hex: Hex.encode(argumentOut),
                                      step: kind.uppercased(), direction: outcome))
        case let .userWrite(_, bytes):
            state.withLock { $0.trace.append(.payload(request: true, bytes: bytes)) }
        case let .userRead(_, bytes):
            state.withLock { $0.trace.append(.payload(request: false, bytes: bytes)) }
        case .open, .close:
            return
        }
    }

    /// One trace line per TDISP message crossing the DSM's port (TSM→DSM requests, DSM→TSM
    /// responses), decoded by the `tdisp` kind of `tsmctl decode`; its `step` is the uAPI command
    /// in flight, else what the flow is doing (`pci-tsm connect`, …). A message the decoder
    /// refuses is left out (no DSM or firmware model sends one).
    private func tdispEvent(_ event: TDISPMessageEvent) {
        guard let decoded = try? DecodeRegistry.decode(event.bytes, as: "tdisp", profile: request.profile),
              let type = event.messageType else { return }
        state.withLock { state in
            let line = AssignTraceLine(
                layer: "tdisp", kind: "tdisp", profile: nil, hex: Hex.encode(event.bytes),
                step: state.inFlight ?? state.context, direction: event.direction.rawValue,
                message: type.name, code: decodeHex(UInt64(type.rawValue), digits: 2),
                dsm: event.dsm.description,
                tdi: event.interfaceID.map { "\($0.functionID)" },
                interfaceID: event.interfaceID.map { decodeHex(UInt64($0.functionID.rawValue), digits: 8) },
                decoded: decoded)
            state.trace.append(.line(line))
        }
    }

    /// Trace lines for a guest event's payloads (the arch payload kinds of docs/decode.md).
    /// Tunnelled payloads get their arch kind (`sev:validate_mmio:request`, …); the guest's direct
    /// TSM messages (SEV TDI_INFO) theirs; anything else is written only if `auto` decodes it.
    private func guestTrace(_ event: GuestTranscriptEvent) {
        let short: String
        if let op = event.op {
            short = op.rawValue.replacingOccurrences(of: "TSM_REQ_", with: "").lowercased()
        } else if event.step.hasPrefix("TDI_INFO") && event.arch == .sev {
            short = "tdi_info"
        } else {
            short = ""
        }
        let direct = event.op == nil
        for (bytes, direction) in [(event.request, "request"), (event.response, "response")] where !bytes.isEmpty {
            let specific = "\(event.arch.name):\(short):\(direction)"
            let kinds = short.isEmpty ? ["auto"] : [specific, "auto"]
            for kind in kinds where (try? DecodeRegistry.decode(bytes, as: kind, profile: request.profile)) != nil {
                let layer = direction == "request" ? "guest" : (direct ? "tsm" : "firmware")
                let line = AssignTraceLine(layer: layer, kind: kind, profile: nil,
                                           hex: Hex.encode(bytes), step: event.step, direction: direction)
                state.withLock { state in
                    if !direct, let slot = Self.payloadSlot(in: state.trace, request: direction == "request",
                                                            bytes: direction == "request" ? bytes : nil) {
                        state.trace[slot] = .line(line)
                    } else {
                        state.trace.append(.line(line))
                    }
                }
                break
            }
        }
    }

    /// Where a tunnelled guest payload's line goes: the request at the latest held request place
    /// with the same bytes; the response at a held response place after the latest TSM_REQ `in`
    /// line (the guest sees the response as the VMM passed it on, which `--tamper` alters, so its
    /// bytes are not compared; a failed TSM_REQ read no response). nil: append.
    static func payloadSlot(in trace: [AssignTraceEntry], request: Bool, bytes: [UInt8]?) -> Int? {
        for index in trace.indices.reversed() {
            switch trace[index] {
            case let .payload(isRequest, held):
                if request, isRequest, held == bytes { return index }
                if !request, !isRequest { return index }
            case let .line(line):
                if !request, line.kind == "iommu_vdevice_tsm_req", line.direction == "in" { return nil }
            }
        }
        return nil
    }

    // MARK: The flow

    /// Runs the flow over `backend` (nil: the simulated backend of a fresh host). Errors from
    /// the Linux backend before anything was assigned are thrown as ``AssignInputError``.
    func run(linux: Bool) async throws(AssignInputError) -> AssignOutcome {
        let profile = request.profile
        let arch = request.arch
        let targetAddress = PCIFunctionAddress(target.bdf)
        let dsmAddress = PCIFunctionAddress(dsmFunction.bdf)
        if linux { return try runLinux(LinuxBackend()) }
        let host = try makeHost()
        let tracing = TracingBackend(SimulatedBackend(kernel: host.kernel)) { [weak self] event in
            self?.backendEvent(event, profile: profile)
        }
        // Every TDISP message between the TSM and the DSM, in order with the uAPI calls.
        let port = host.driver.port(at: host.dsmAddress)
        port?.observe { [weak self] event in self?.tdispEvent(event) }
        defer { port?.observe(nil) }
        guard let functionID = targetAddress.functionID else {
            throw AssignInputError("\(target.bdf) has no TDISP FUNCTION_ID (PCI domain above 255)")
        }
        let interface = InterfaceID(functionID: functionID)
        func deviceState() -> String? { host.dsm.tdi(interface)?.state.description }
        func step(_ actor: String, _ name: String, _ path: [String], sent: String, result: String, status: String = "ok") {
            record(host, interface, actor: actor, name, path, sent: sent, result: result, status: status)
        }
        var outcome = AssignOutcome(arch: arch.name, backend: "simulated", profile: profile.name, function: "\(target.bdf)",
                                    dsm: "\(dsmFunction.bdf)", steps: [], reachedRun: false, evidenceVerified: false,
                                    failure: nil, refusal: nil, tornDown: false, finalState: nil, faults: request.faults)
        func finish(_ failure: String?) -> AssignOutcome {
            outcome.failure = failure
            outcome.steps = steps
            outcome.unmatchedFaults = Self.unmatchedFaults(request.faults, callLog: host.driver.callLog)
            outcome.finalState = deviceState()
            outcome.succeeded = outcome.reachedRun && outcome.evidenceVerified
            return outcome
        }
        let vmmPath = ["vmm", "kernel"]
        let tsmPath = ["vmm", "kernel", "tsm"]
        // 1. iommufd
        let session: IOMMUFDSession
        do {
            session = try IOMMUFDSession(backend: tracing, profile: profile)
            step("vmm", "open /dev/iommu", vmmPath, sent: "open(O_RDWR)", result: "iommufd (profile \(profile.name))")
        } catch {
            step("vmm", "open /dev/iommu", vmmPath, sent: "open(O_RDWR)", result: failureText(error), status: "failed")
            return finish(failureText(error))
        }
        // 2. VM, VFIO device, KVM association
        let vmFD = (tracing.base as? SimulatedBackend)?.createVM() ?? -1
        step("vmm", "KVM_CREATE_VM", ["vmm", "kernel"], sent: "create the confidential VM", result: "VM fd \(vmFD)")
        let vfioPath = SimulatedBackend.vfioDevicePath(targetAddress)
        let vfio: VFIODevice
        do {
            vfio = try VFIODevice.open(vfioPath, backend: tracing)
            step("vmm", "open VFIO cdev", vmmPath, sent: vfioPath, result: "VFIO device open")
        } catch {
            step("vmm", "open VFIO cdev", vmmPath, sent: vfioPath, result: failureText(error), status: "failed")
            return finish(failureText(error))
        }
        var vdevice = VDeviceID(0)
        var bound = false
        var setupObjects: (DevID, IOASID, HWPTID, VIOMMUID)?
        do throws(VMMError) {
            try (tracing.base as? SimulatedBackend)?.addToVM(vmFD, vfio: vfio)
            step("vmm", "KVM_DEV_VFIO_FILE_ADD", vmmPath, sent: "associate \(vfioPath) with the VM", result: "ok")
            let device = try vfio.bind(to: session.iommufd)
            step("vmm", "VFIO_DEVICE_BIND_IOMMUFD", vmmPath, sent: "bind \(vfioPath)", result: "DEVICE id \(device.id)")
            let ioas = try session.iommufd.allocIOAS()
            step("vmm", "IOMMU_IOAS_ALLOC", vmmPath, sent: "new IOAS", result: "IOAS id \(ioas.id)")
            let hwpt = try session.iommufd.allocHWPT(device: device, parent: ioas)
            step("vmm", "IOMMU_HWPT_ALLOC", vmmPath, sent: "nest parent on IOAS \(ioas.id)", result: "HWPT id \(hwpt.id)")
            let viommu = try session.iommufd.allocVIOMMU(device: device, hwpt: hwpt, type: .armSMMUv3)
            step("vmm", "IOMMU_VIOMMU_ALLOC", vmmPath, sent: "vIOMMU on HWPT \(hwpt.id)", result: "vIOMMU id \(viommu.id)")
            vdevice = try session.iommufd.allocVDevice(viommu: viommu, device: device, virtID: 0x10)
            step("vmm", "IOMMU_VDEVICE_ALLOC", vmmPath, sent: "virt_id 0x10 on vIOMMU \(viommu.id)", result: "vDEVICE id \(vdevice.id)")
            setupObjects = (device, ioas, hwpt, viommu)
        } catch {
            step("vmm", error.step.description, vmmPath, sent: "set-up", result: failureText(error), status: "failed")
            return finish(failureText(error))
        }
        // 3. DSM connect (host administrator, out of band: sysfs tsm/connect)
        setContext("pci-tsm connect")
        do {
            try host.kernel.pciTSM.connect(dsmAddress, "tsm0")
            step("host-admin", "pci-tsm connect", ["kernel", "tsm"], sent: "echo tsm0 > /sys/bus/pci/devices/\(dsmFunction.bdf)/tsm/connect",
                 result: "DSM connected (SPDM session, IDE, TDISP version and capabilities)")
        } catch {
            step("host-admin", "pci-tsm connect", ["kernel", "tsm"], sent: "tsm0", result: errnoText(error), status: "failed")
            return finish("DSM connect of \(dsmFunction.bdf) failed: \(errnoText(error))")
        }
        // 4. TSM bind
        let tunnel = session.tunnel(for: vdevice)
        do throws(VMMError) {
            try tunnel.bind()
            bound = true
            step("vmm", "IOMMU_VDEVICE_TSM_OP BIND", tsmPath, sent: "bind vDEVICE \(vdevice.id) to the VM",
                 result: "TDI bound, interface locked")
        } catch {
            step("vmm", "IOMMU_VDEVICE_TSM_OP BIND", tsmPath, sent: "bind vDEVICE \(vdevice.id)", result: failureText(error), status: "failed")
            outcome.failure = failureText(error)
        }
        // 5. the guest
        setContext("guest")
        if bound {
            let vmHandle: VMHandle?
            do { vmHandle = try host.kernel.vm(vmFD) } catch { vmHandle = nil }
            let firmwareVM = vmHandle.map { host.driver.firmwareVM($0) } ?? 0
            let report = host.dsm.tdi(interface)?.report?.encoded()
            let channel = VMMGuestChannel(tunnel: tunnel,
                                          evidence: HostEvidence(certificateChain: host.evidence.certificateChain,
                                                                 measurements: host.evidence.measurements, interfaceReport: report))
            let guestChannel: any GuestRequestChannel = request.tamper.map { TamperingChannel(channel, tampering: $0) } ?? channel
            guard let tsm = GuestTSMInterface.simulated(host.driver.linkFirmware, function: functionID, vm: firmwareVM,
                                                        evidence: host.evidence),
                  let verifier = request.trustAnchor?.verifier ?? (try? EvidenceVerifier(trustAnchorDER: host.trustAnchor))
            else { return finish("the guest's TSM interface could not be built") }
            let agent = GuestAgent(verifier: verifier, observer: { [weak self] event in
                guard let self else { return }
                self.guestTrace(event)
                // The last evidence check (docs/guest.md §3, check 6): everything before it passed.
                if event.step == "decode interface report" && event.status == .ok {
                    self.state.withLock { $0.reportDecoded = true }
                }
                self.record(host, interface, actor: "guest", event.step, event.path.map(\.rawValue),
                            sent: event.sent, result: event.result, status: event.status.rawValue)
            })
            outcome.guestRan = true
            var configured = agent
            // rev-k numbers no READ_OBJECT / OBJECT_INFO / REGEN_OBJECT (spec §0 "Latest direction"):
            // the guest then reads every object from the host's copy (docs/guest.md §1).
            configured.objectOpsTunnelled = profile.rawValue(of: .readObject) != nil
            do {
                let accepted = try await configured.accept(channel: guestChannel, tsm: tsm)
                outcome.evidenceVerified = true
                outcome.reachedRun = accepted.tdiState == .run && host.dsm.tdi(interface)?.state == .run
                if !outcome.reachedRun { outcome.failure = "the TDI is not in RUN after the guest's flow" }
            } catch {
                outcome.evidenceVerified = state.withLock { $0.reportDecoded }
                outcome.failure = error.reason
                outcome.refusal = error.code.description
            }
        }
        // 6. teardown (or keep)
        if request.keep {
            step("vmm", "keep", [], sent: "--keep", result: "left assigned: vDEVICE \(vdevice.id), TDI \(deviceState() ?? "none")")
            let result = finish(outcome.failure)
            // The handles stay open until the process exits (the simulated kernel goes with it).
            withExtendedLifetime(vfio) {}
            return result
        }
        if bound {
            do throws(VMMError) {
                try tunnel.unbind()
                step("vmm", "IOMMU_VDEVICE_TSM_OP UNBIND", tsmPath, sent: "unbind vDEVICE \(vdevice.id)", result: "TDI stopped, interface unlocked")
            } catch {
                step("vmm", "IOMMU_VDEVICE_TSM_OP UNBIND", tsmPath, sent: "unbind", result: failureText(error), status: "failed")
            }
        }
        setContext("teardown")
        var teardownOK = true
        if let (_, ioas, hwpt, viommu) = setupObjects {
            do throws(VMMError) {
                try session.iommufd.destroy(vdevice)
                step("vmm", "IOMMU_DESTROY vDEVICE", vmmPath, sent: "id \(vdevice.id)", result: "ok")
                try session.iommufd.destroy(viommu)
                step("vmm", "IOMMU_DESTROY vIOMMU", vmmPath, sent: "id \(viommu.id)", result: "ok")
                try session.iommufd.destroy(hwpt)
                step("vmm", "IOMMU_DESTROY HWPT", vmmPath, sent: "id \(hwpt.id)", result: "ok")
                try vfio.close()
                step("vmm", "close VFIO cdev", vmmPath, sent: vfioPath, result: "DEVICE released")
                try session.iommufd.destroy(ioas)
                step("vmm", "IOMMU_DESTROY IOAS", vmmPath, sent: "id \(ioas.id)", result: "ok")
            } catch {
                teardownOK = false
                step("vmm", error.step.description, vmmPath, sent: "teardown", result: failureText(error), status: "failed")
            }
        }
        setContext("pci-tsm disconnect")
        do {
            try host.kernel.pciTSM.disconnect(dsmAddress, "tsm0")
            step("host-admin", "pci-tsm disconnect", ["kernel", "tsm"], sent: "echo tsm0 > /sys/bus/pci/devices/\(dsmFunction.bdf)/tsm/disconnect",
                 result: "DSM disconnected")
        } catch {
            step("host-admin", "pci-tsm disconnect", ["kernel", "tsm"], sent: "tsm0", result: errnoText(error), status: "failed")
        }
        outcome.tornDown = teardownOK
        if let anchor = request.trustAnchor, outcome.refusal == GuestAcceptanceError.Code.certificateUntrusted.description {
            throw AssignInputError("--trust-anchor \(anchor.path): the device's certificate chain does not verify to it (\(outcome.failure ?? "certificateUntrusted"))")
        }
        return finish(outcome.failure)
    }
}

/// The guest's host path over the VMM library: each guest request is an
/// `IOMMU_VDEVICE_TSM_REQ` through the vDEVICE's ``TSMTunnel``; `hostEvidence` is the VMM's
/// copy of the device evidence (untrusted: the guest checks it against the TSM's digests).
struct VMMGuestChannel: GuestRequestChannel {
    let tunnel: TSMTunnel
    let evidence: HostEvidence

    func request(op: GuestRequestOp, tvmArch: TVMArch, payload: [UInt8], responseCapacity: Int) async throws -> GuestResponse {
        do throws(VMMError) {
            let answer = try tunnel.tsmRequest(op: op, tvmArch: tvmArch, request: payload, responseCapacity: responseCapacity)
            return GuestResponse(bytes: answer.bytes, residue: answer.residue, tsmCode: answer.tsmCode ?? 0)
        } catch {
            throw GuestChannelError(errno: error.errno, tsmCode: error.tsmCode ?? 0, reason: error.reason)
        }
    }

    func hostEvidence(tvmArch: TVMArch) async throws -> HostEvidence { evidence }
}

/// A failed step's result in a transcript line: the ``VMM/VMMError``'s reason (its step is the
/// line's own name) with the errno and `tsm_code` when the reason does not already say them; any
/// other error's description.
func failureText(_ error: any Error) -> String {
    guard let error = error as? VMMError else { return "\(error)" }
    var text = error.reason
    if let errno = error.errno, !text.contains(errno.linuxName) { text += " (\(errno.linuxName))" }
    if let tsmCode = error.tsmCode { text += ", tsm_code 0x\(String(tsmCode, radix: 16))" }
    return text
}

/// The Linux name of an errno (`EINVAL`), or the error's description.
func errnoText(_ error: any Error) -> String {
    if let errno = error as? Errno { return errno.linuxName }
    return "\(error)"
}
