// `tsmctl assign`: the whole assignment of one PCI function into a confidential VM, as a VMM and
// a TVM do it, over the VMM library (simulated or Linux backend) and the guest agent. Issue 6
// deliverables 3 and 4; docs/assign.md walks through the output.
import Device
import Firmware
import Foundation
import Guest
import Kernel
import PCI
import Synchronization
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
}

/// One JSON Lines record of `--trace` (docs/decode.md "Trace line format"; the extra keys
/// `step` and `direction` are ignored by `tsmctl decode`).
struct AssignTraceLine: Encodable {
    var layer: String
    var kind: String
    var profile: String?
    var hex: String
    var step: String
    var direction: String
}

/// The assignment flow, driven over an ``IOMMUFDBackend`` built on a simulated host.
final class AssignFlow: Sendable {
    let request: AssignRequest
    let topology: PCITopology
    let target: PCIFunction
    let dsmFunction: PCIFunction

    private let state = Mutex<(steps: [AssignStep], trace: [AssignTraceLine], messages: Int, reportDecoded: Bool)>(([], [], 0, false))

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
        let topology: PCITopology
        do { topology = try PCITopology(lspci: joined) } catch {
            throw AssignInputError("\(paths) is not a PCI configuration space dump: \(error)")
        }
        guard !topology.functions.isEmpty else { throw AssignInputError("\(paths) holds no PCI function") }
        self.topology = topology
        var base: PCIFunction
        if let text = request.function {
            guard let bdf = BDF(text) else { throw AssignInputError("--function \(text) is not a PCI address (BB:DD.F or DDDD:BB:DD.F)") }
            guard let found = topology[bdf] else {
                let known = topology.physicalFunctions.map { "\($0.bdf)" }.joined(separator: ", ")
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
    var trace: [AssignTraceLine] { state.withLock { $0.trace } }

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
    private func traceLine(_ line: AssignTraceLine) { state.withLock { $0.trace.append(line) } }

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

    // MARK: Tracing

    /// Kind of a uAPI request code under `profile` (nil: not one decode knows).
    private static func uapiKind(_ request: UInt32, profile: UAPIProfile) -> String? {
        if request == CommandSpec.vfioDeviceBindIOMMUFD.request { return "vfio_device_bind_iommufd" }
        if case let .command(spec) = profile.dispatchSlot(forRequest: request) { return spec.name.lowercased() }
        return nil
    }

    private func backendEvent(_ event: BackendEvent, profile: UAPIProfile) {
        guard case let .ioctl(_, request, argumentIn, argumentOut, result) = event,
              let kind = Self.uapiKind(request, profile: profile) else { return }
        let step = kind.uppercased()
        let outcome: String
        switch result {
        case let .success(value): outcome = "out (rc \(value))"
        case let .failure(errno): outcome = "out (\(errno.linuxName))"
        }
        for (bytes, direction) in [(argumentIn, "in"), (argumentOut, outcome)] {
            guard (try? DecodeRegistry.decode(bytes, as: kind, profile: profile)) != nil else { continue }
            traceLine(AssignTraceLine(layer: "uapi", kind: kind, profile: profile.name, hex: Hex.encode(bytes),
                                      step: step, direction: direction))
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
                traceLine(AssignTraceLine(layer: layer, kind: kind, profile: nil,
                                          hex: Hex.encode(bytes), step: event.step, direction: direction))
                break
            }
        }
    }

    // MARK: The flow

    /// Runs the flow over `backend` (nil: the simulated backend of a fresh host). Errors from
    /// the Linux backend before anything was assigned are thrown as ``AssignInputError``.
    func run(linux: Bool) async throws(AssignInputError) -> AssignOutcome {
        let profile = request.profile
        let arch = request.arch
        let targetAddress = PCIFunctionAddress(target.bdf)
        let dsmAddress = PCIFunctionAddress(dsmFunction.bdf)
        if linux {
            let backend = LinuxBackend()
            do {
                let session = try IOMMUFDSession(backend: backend, profile: profile)
                _ = session
            } catch {
                let diagnosis = backend.diagnose()
                let problems = diagnosis.problems.joined(separator: "; ")
                throw AssignInputError("--backend linux: \(error)\(problems.isEmpty ? "" : " — \(problems)")")
            }
            throw AssignInputError("--backend linux: the KVM side (KVM_DEV_VFIO_FILE_ADD) and the DSM connect are not driven by tsmctl; use a VMM built on the VMM library")
        }
        let host = try makeHost()
        let tracing = TracingBackend(SimulatedBackend(kernel: host.kernel)) { [weak self] event in
            self?.backendEvent(event, profile: profile)
        }
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
                                    failure: nil, refusal: nil, tornDown: false, finalState: nil)
        func finish(_ failure: String?) -> AssignOutcome {
            outcome.failure = failure
            outcome.steps = steps
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
            step("vmm", "open /dev/iommu", vmmPath, sent: "open(O_RDWR)", result: "\(error)", status: "failed")
            return finish("\(error)")
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
            step("vmm", "open VFIO cdev", vmmPath, sent: vfioPath, result: "\(error)", status: "failed")
            return finish("\(error)")
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
            step("vmm", error.step.description, vmmPath, sent: "set-up", result: "\(error)", status: "failed")
            return finish("\(error)")
        }
        // 3. DSM connect (host administrator, out of band: sysfs tsm/connect)
        do {
            try host.kernel.pciTSM.connect(dsmAddress, "tsm0")
            step("host-admin", "pci-tsm connect", ["kernel", "tsm"], sent: "echo tsm0 > \(dsmFunction.bdf)/tsm/connect",
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
            step("vmm", "IOMMU_VDEVICE_TSM_OP BIND", tsmPath, sent: "bind vDEVICE \(vdevice.id)", result: "\(error)", status: "failed")
            outcome.failure = "\(error)"
        }
        // 5. the guest
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
                step("vmm", "IOMMU_VDEVICE_TSM_OP UNBIND", tsmPath, sent: "unbind", result: "\(error)", status: "failed")
            }
        }
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
                step("vmm", error.step.description, vmmPath, sent: "teardown", result: "\(error)", status: "failed")
            }
        }
        do {
            try host.kernel.pciTSM.disconnect(dsmAddress, "tsm0")
            step("host-admin", "pci-tsm disconnect", ["kernel", "tsm"], sent: "echo tsm0 > \(dsmFunction.bdf)/tsm/disconnect",
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
            throw GuestChannelError(errno: error.errno, tsmCode: error.tsmCode ?? 0, reason: error.description)
        }
    }

    func hostEvidence(tvmArch: TVMArch) async throws -> HostEvidence { evidence }
}

/// The Linux name of an errno (`EINVAL`), or the error's description.
func errnoText(_ error: any Error) -> String {
    if let errno = error as? Errno { return errno.linuxName }
    return "\(error)"
}
