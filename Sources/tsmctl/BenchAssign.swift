// `tsmctl bench assign`: the scale benchmark of issue 6 deliverable 7. A synthetic platform of
// SR-IOV devices (DSMs) whose VFs are the TDIs, every TDI assigned to RUN through the real flow
// (VMM library → simulated kernel → architecture TSM driver → firmware model → DSM over TDISP,
// and the guest agent verifying the evidence), timed per phase. docs/assign.md "Scale benchmark".
import ArgumentParser
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

/// `tsmctl bench assign`: builds a synthetic platform (``SyntheticSRIOVPlatform``), assigns
/// `--tdis` VFs to RUN with verified evidence, prints TDIs per second, peak resident memory and the
/// per-phase split.
///
/// Exit status: 0 when every TDI reached RUN with its evidence verified; 1 when one did not (the
/// first failures are printed); 2 for bad input (one line on stderr).
///
/// Verification is amortised as a TVM may: each VM (one per DSM) verifies the DSM's certificate
/// chain once and keeps it (``Guest/GuestEvidenceCache`` with `cachesMeasurements` false); every
/// TDI's measurements signature, the three digests against the TSM's, the interface report and
/// its MMIO ranges are checked for that TDI.
struct BenchAssign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assign",
        abstract: "Scale benchmark: assign thousands of SR-IOV VFs to RUN with verified evidence.",
        discussion: """
            Example: swift run -c release tsmctl bench assign --arch cca --tdis 4096
            Builds one DSM per --vfs-per-dsm VFs from the template dump (its SR-IOV TotalVFs set
            to that count), one TVM per DSM, and runs the VMs on --jobs threads. See docs/assign.md.
            """)

    @Option(name: .long, help: "Architecture: cca (default), sev, tdx, or all (each in turn, each with --tdis TDIs).")
    var arch = "cca"

    @Option(name: .long, help: "TDIs to assign in all (1...65536).")
    var tdis = 4096

    @Option(name: .customLong("vfs-per-dsm"), help: "VFs (TDIs) per DSM, 1...255 (SR-IOV TotalVFs of each synthetic device).")
    var vfsPerDSM = 255

    @Option(name: .long, help: "The template device: an lspci -vvv -xxxx dump holding a DSM-capable PF with SR-IOV.")
    var device = "Examples/devices/tee-io-endpoint-sriov.lspci"

    @Option(name: .long, help: "VMs assigned in parallel (default: online processors).")
    var jobs: Int?

    @Option(name: .long, help: "uAPI profile: revised or rev-k.")
    var profile: String = UAPIProfile.default.name

    @Flag(name: .long, help: "Print the figures as JSON.")
    var json = false

    func run() async throws {
        let setup: (arches: [TVMArch], template: PCIFunction, profile: UAPIProfile, jobs: Int)
        switch checkedInput() {
        case .success(let checked): setup = checked
        case .failure(let error):
            ScriptCommand.printError("tsmctl bench assign: \(error.description)")
            throw ExitCode(2)
        }
        var reports: [BenchAssignReport] = []
        for arch in setup.arches {
            let bench = AssignBenchmark(arch: arch, template: setup.template, tdis: tdis, vfsPerDSM: vfsPerDSM,
                                        jobs: setup.jobs, profile: setup.profile)
            let report: BenchAssignReport
            do {
                report = try await bench.run()
            } catch {
                ScriptCommand.printError("tsmctl bench assign: \(error.description)")
                throw ExitCode(2)
            }
            if !json { print(report.text) }
            reports.append(report)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            let data = (try? encoder.encode(reports)) ?? Data("[]".utf8)
            print(String(decoding: data, as: UTF8.self))
        }
        if reports.contains(where: { !$0.succeeded }) { throw ExitCode(1) }
    }

    /// The options, checked: each problem is one line naming the option and the value.
    func checkedInput() -> Result<(arches: [TVMArch], template: PCIFunction, profile: UAPIProfile, jobs: Int), AssignInputError> {
        let arches: [TVMArch]
        switch arch.lowercased() {
        case "all": arches = TVMArch.allCases
        case let name:
            guard let one = TVMArch.allCases.first(where: { $0.name == name }) else {
                return .failure(AssignInputError("--arch \(arch): unknown architecture (valid: cca, sev, tdx, all)"))
            }
            arches = [one]
        }
        guard (1...65536).contains(tdis) else {
            return .failure(AssignInputError("--tdis \(tdis): the number of TDIs must be 1...65536"))
        }
        guard (1...255).contains(vfsPerDSM) else {
            return .failure(AssignInputError("--vfs-per-dsm \(vfsPerDSM): an SR-IOV PF here has 1...255 VFs"))
        }
        let online = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let jobCount = jobs ?? online
        guard (1...256).contains(jobCount) else {
            return .failure(AssignInputError("--jobs \(jobCount): must be 1...256"))
        }
        guard let chosen = UAPIProfile.all.first(where: { $0.name == profile }) else {
            return .failure(AssignInputError("--profile \(profile): unknown profile (valid: \(UAPIProfile.all.map(\.name).joined(separator: ", ")))"))
        }
        if chosen.name == UAPIProfile.v5.name {
            return .failure(AssignInputError("--profile v5 has no op-based TSM_REQ (scope API only): use revised or rev-k"))
        }
        let text: String
        do { text = try String(contentsOfFile: device, encoding: .utf8) } catch {
            return .failure(AssignInputError("--device \(device): cannot read the file (\(error.localizedDescription))"))
        }
        let template: PCIFunction
        switch SyntheticSRIOVPlatform.template(fromLspci: text) {
        case .success(let function): template = function
        case .failure(let reason): return .failure(AssignInputError("--device \(device): \(reason.description)"))
        }
        return .success((arches, template, chosen, jobCount))
    }
}

// MARK: - The synthetic platform

/// A platform of identical SR-IOV devices made from one template PF: DSM k is the template's
/// configuration space with
///
/// | field | value |
/// |---|---|
/// | address | domain `k / perDomain`, bus `1 + (k % perDomain) × busesPerDSM`, device 0, function 0 |
/// | SR-IOV InitialVFs, TotalVFs (cap + 0x0C, + 0x0E) | the VFs wanted (1...255); NumVFs as dumped |
/// | PF BARs | the template's + k × 4 GiB (sizes as dumped or from alignment) |
/// | VF BAR 0 | 0x1FF_F800_0000 + k × 4 GiB, 64 KiB per VF |
/// | VF BAR 2 | 0x1FF_FA00_0000 + k × 4 GiB, 16 KiB per VF |
///
/// VF n is at routing ID `PF + First VF Offset + (n − 1) × VF Stride` (PCIe §9.3.3.10-11, the
/// topology's rule), so a PF with 255 VFs and offset 32 spans two buses: `busesPerDSM` is what
/// the last VF needs. The small VF BARs (the template's VF BAR 0 is 128 MiB by alignment) keep
/// each TDI at two MMIO ranges, 16 + 4 pages, which the guest validates page by page on TDX.
enum SyntheticSRIOVPlatform {
    /// Per-VF size of VF BAR 0: 64 KiB.
    static let vfBAR0Size: UInt64 = 64 << 10
    /// Per-VF size of VF BAR 2: 16 KiB.
    static let vfBAR2Size: UInt64 = 16 << 10
    /// Address step between DSMs: 4 GiB.
    static let dsmStride: UInt64 = 1 << 32

    /// Why a template or a platform could not be made.
    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    /// The first DSM-capable physical function with SR-IOV and a 4 KiB configuration space image.
    static func template(fromLspci text: String) -> Result<PCIFunction, Problem> {
        let dump: LspciDump
        do { dump = try LspciDump.parse(text) } catch {
            return .failure(Problem(description: "not a PCI configuration space dump: \(error)"))
        }
        for device in dump.devices {
            let function = PCIFunction(bdf: device.bdf, config: device.config, title: device.title)
            if function.canBeDSM, let sriov = function.sriov, sriov.vfStride > 0, device.config.bytes.count == 4096 {
                return .success(function)
            }
        }
        return .failure(Problem(description: "holds no DSM-capable physical function (IDE or DevCap TEE-IO) with an SR-IOV capability and a 4096-byte configuration space"))
    }

    /// Buses one DSM and its `vfs` VFs span.
    static func busesPerDSM(template sriov: SRIOVCapability, vfs: Int) -> Int {
        (Int(sriov.firstVFOffset) + (vfs - 1) * Int(sriov.vfStride)) / 256 + 1
    }

    /// The PFs of `counts.count` DSMs, DSM k with `counts[k]` VFs, as the table of the type says.
    /// Throws ``Problem`` when the addresses run out (TDISP FUNCTION_ID's segment is 8 bits) or a
    /// patched configuration space does not decode.
    static func physicalFunctions(template: PCIFunction, counts: [Int]) throws(Problem) -> [PCIFunction] {
        guard let config = template.config, let sriov = template.sriov, let most = counts.max(), most >= 1 else {
            throw Problem(description: "the template has no configuration space or SR-IOV capability")
        }
        let buses = busesPerDSM(template: sriov, vfs: most)
        guard buses <= 255 else { throw Problem(description: "\(most) VFs with First VF Offset \(sriov.firstVFOffset) and stride \(sriov.vfStride) span more than 255 buses") }
        let perDomain = 255 / buses
        var barSizes: [Int: UInt64] = [:]
        for bar in config.bars { if let size = bar.size { barSizes[bar.index] = size } }
        var result: [PCIFunction] = []
        for (k, vfs) in counts.enumerated() {
            let domain = k / perDomain
            guard domain <= 255, let bdf = BDF(domain: UInt32(domain), bus: UInt8(1 + (k % perDomain) * buses), device: 0, function: 0) else {
                throw Problem(description: "\(counts.count) DSMs do not fit in PCI segments 0...255")
            }
            var bytes = config.bytes
            let shift = UInt64(k) * dsmStride
            put16(&bytes, sriov.offset + 0x0C, UInt16(vfs))
            put16(&bytes, sriov.offset + 0x0E, UInt16(vfs))
            for bar in config.bars where bar.isMemory && bar.address != 0 {
                putBAR(&bytes, bar, address: bar.address &+ shift)
            }
            var vfSizes: [Int: UInt64] = [:]
            for bar in sriov.vfBARs where bar.isMemory {
                switch bar.index {
                case 0:
                    putBAR(&bytes, bar, address: 0x1FF_F800_0000 &+ shift)
                    vfSizes[0] = vfBAR0Size
                case 2:
                    putBAR(&bytes, bar, address: 0x1FF_FA00_0000 &+ shift)
                    vfSizes[2] = vfBAR2Size
                default:
                    putBAR(&bytes, bar, address: 0)
                }
            }
            let patched: ConfigSpace
            do { patched = try ConfigSpace(bytes: bytes, barSizes: barSizes, vfBARSizes: vfSizes) } catch {
                throw Problem(description: "synthetic DSM \(k): the patched configuration space does not decode: \(error)")
            }
            result.append(PCIFunction(bdf: bdf, config: patched, title: "synthetic DSM \(k)"))
        }
        return result
    }

    private static func put16(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt16) {
        guard offset >= 0, offset + 1 < bytes.count else { return }
        bytes[offset] = UInt8(truncatingIfNeeded: value)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }

    private static func put32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        guard offset >= 0, offset + 3 < bytes.count else { return }
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt32(8 * index)) }
    }

    /// Writes a memory BAR's base, keeping its low 4 flag bits; the upper register of a 64-bit BAR
    /// gets the high 32 bits (a 32-bit BAR keeps only the low 32).
    private static func putBAR(_ bytes: inout [UInt8], _ bar: BAR, address: UInt64) {
        let offset = bar.registerOffset
        guard offset >= 0, offset + 3 < bytes.count else { return }
        let flags = UInt32(bytes[offset] & 0x0F)
        put32(&bytes, offset, UInt32(truncatingIfNeeded: address) & 0xFFFF_FFF0 | flags)
        if bar.space == .memory64 { put32(&bytes, offset + 4, UInt32(truncatingIfNeeded: address >> 32)) }
    }
}

// MARK: - The run

/// One architecture's run of the benchmark.
struct AssignBenchmark: Sendable {
    let arch: TVMArch
    let template: PCIFunction
    let tdis: Int
    let vfsPerDSM: Int
    let jobs: Int
    let profile: UAPIProfile

    /// What one VM (one DSM and its TDIs) did.
    struct VMResult: Sendable {
        var dsm: PCIFunctionAddress
        var tdis = 0
        var reachedRun = 0
        var verified = 0
        var bindNanoseconds: UInt64 = 0
        var verifyNanoseconds: UInt64 = 0
        var runNanoseconds: UInt64 = 0
        var failures: [String] = []
        /// The VM's open VFIO devices and iommufd, kept so the TDIs stay bound (in RUN) until the
        /// final check; released with the result.
        var held: [OpenVFIO] = []
        var session: IOMMUFDSession?
    }

    func run() async throws(AssignInputError) -> BenchAssignReport {
        let start = monotonicNanoseconds()
        // 1. Platform build, part 1: the topology (PFs, their VFs).
        var counts: [Int] = []
        var left = tdis
        while left > 0 {
            counts.append(min(left, vfsPerDSM))
            left -= vfsPerDSM
        }
        let topology: PCITopology
        do {
            let pfs = try SyntheticSRIOVPlatform.physicalFunctions(template: template, counts: counts)
            topology = try PCITopology(functions: pfs)
        } catch {
            throw AssignInputError("synthetic platform: \(error)")
        }
        let topologyDone = monotonicNanoseconds()
        // 2. Identity: one vendor CA, one identity and one signed MEASUREMENTS per DSM (EMU-ARCH-4).
        let identities: [PCIFunctionAddress: PlatformDeviceEvidence]
        do { identities = try ArchPlatform.makeEvidence(topology: topology, seed: 1) } catch {
            throw AssignInputError("synthetic platform: \(error)")
        }
        let identityDone = monotonicNanoseconds()
        // 3. Platform build, part 2: kernel, arch TSM driver + firmware, DSMs.
        let platform: ArchPlatform
        do {
            platform = try ArchPlatform(arch: arch, topology: topology, uapiProfile: profile, seed: 1, identities: identities)
        } catch {
            throw AssignInputError("synthetic platform: \(error)")
        }
        let platformDone = monotonicNanoseconds()
        // 4. The VMs: one per DSM, its VFs in VF order; `jobs` workers take every jobs-th VM.
        let plans: [(dsm: PCIFunctionAddress, vfs: [PCIFunctionAddress])] = topology.functions
            .filter { $0.canBeDSM }
            .sorted { ($0.bdf.domain, $0.bdf.routingID) < ($1.bdf.domain, $1.bdf.routingID) }
            .map { pf in (PCIFunctionAddress(pf.bdf), topology.virtualFunctions(of: pf.bdf).map { PCIFunctionAddress($0.bdf) }) }
        let backend = SimulatedBackend(kernel: platform.kernel)
        let workers = min(jobs, plans.count)
        let profile = self.profile
        let results = await withTaskGroup(of: [VMResult].self) { group in
            for worker in 0..<workers {
                let mine = stride(from: worker, to: plans.count, by: workers).map { plans[$0] }
                group.addTask {
                    var done: [VMResult] = []
                    for plan in mine {
                        done.append(await Self.assignVM(platform: platform, backend: backend, profile: profile, dsm: plan.dsm, vfs: plan.vfs))
                    }
                    return done
                }
            }
            var all: [VMResult] = []
            for await part in group { all += part }
            return all
        }
        let end = monotonicNanoseconds()
        // Every TDI, as the device and the firmware see it at the end.
        var deviceRun = 0
        for plan in plans {
            for vf in plan.vfs where platform.deviceTDIState(vf) == .run && platform.firmwareTDIState(vf) == .run { deviceRun += 1 }
        }
        let ordered = results.sorted { ($0.dsm.domain, $0.dsm.routingID) < ($1.dsm.domain, $1.dsm.routingID) }
        let seconds = Double(end - start) / 1e9
        let assigned = ordered.reduce(0) { $0 + $1.tdis }
        let run = ordered.reduce(0) { $0 + $1.reachedRun }
        let verified = ordered.reduce(0) { $0 + $1.verified }
        return BenchAssignReport(
            arch: arch.name, profile: profile.name, tdis: assigned, dsms: ordered.count, vfsPerDSM: vfsPerDSM, jobs: workers,
            reachedRun: run, verified: verified, deviceAndFirmwareRun: deviceRun,
            seconds: seconds, tdisPerSecond: seconds > 0 ? Double(assigned) / seconds : 0,
            assignSeconds: Double(end - platformDone) / 1e9,
            peakRSSBytes: PeakMemory.residentBytes(),
            phases: .init(platformBuild: Double(topologyDone - start + platformDone - identityDone) / 1e9,
                          identity: Double(identityDone - topologyDone) / 1e9,
                          bind: Double(ordered.reduce(0) { $0 + $1.bindNanoseconds }) / 1e9,
                          guestVerify: Double(ordered.reduce(0) { $0 + $1.verifyNanoseconds }) / 1e9,
                          run: Double(ordered.reduce(0) { $0 + $1.runNanoseconds }) / 1e9),
            perDSM: ordered.map { .init(dsm: "\($0.dsm)", tdis: $0.tdis, reachedRun: $0.reachedRun, verified: $0.verified) },
            failures: Array(ordered.flatMap(\.failures).prefix(10)))
    }

    /// Keeps a VFIO cdev open (and its DEVICE bound) until the run ends.
    final class OpenVFIO: Sendable {
        let device: VFIODevice
        init(_ device: consuming VFIODevice) { self.device = device }
    }

    /// The guest's time stamp: when its last evidence check passed (docs/guest.md §3, check 6).
    final class VerifiedAt: Sendable {
        let nanoseconds = Atomic<UInt64>(0)
    }

    /// One TVM: iommufd, KVM VM, the DSM connected, then each VF: VFIO open, KVM_DEV_VFIO_FILE_ADD,
    /// VFIO_DEVICE_BIND_IOMMUFD, (first VF: IOAS, NEST_PARENT HWPT, vIOMMU), vDEVICE with
    /// virt_id = VF number, TSM_OP BIND; then the guest agent's acceptance flow to RUN.
    static func assignVM(platform: ArchPlatform, backend: SimulatedBackend, profile: UAPIProfile,
                         dsm: PCIFunctionAddress, vfs: [PCIFunctionAddress]) async -> VMResult {
        var result = VMResult(dsm: dsm)
        result.tdis = vfs.count
        func fail(_ text: String) -> VMResult {
            if result.failures.count < 3 { result.failures.append(text) }
            return result
        }
        let bindStart = monotonicNanoseconds()
        let session: IOMMUFDSession
        do { session = try IOMMUFDSession(backend: backend, profile: profile) } catch { return fail("DSM \(dsm): open /dev/iommu: \(error)") }
        let vmFD = backend.createVM()
        let vm: VMHandle
        do { vm = try platform.kernel.vm(vmFD) } catch { return fail("DSM \(dsm): KVM_CREATE_VM: \(errnoText(error))") }
        let firmwareVM = platform.driver.firmwareVM(vm)
        do { try platform.kernel.pciTSM.connect(dsm, platform.tsmDevice.name) } catch {
            return fail("DSM \(dsm): pci-tsm connect: \(errnoText(error))")
        }
        guard let attached = platform.deviceEvidence[dsm], let dsmModel = platform.dsms[dsm],
              let verifier = try? EvidenceVerifier(trustAnchorDER: attached.trustAnchorDER)
        else { return fail("DSM \(dsm): no evidence or trust anchor") }
        result.bindNanoseconds += monotonicNanoseconds() - bindStart
        let evidence = attached.evidence
        // The TVM's verifications: the chain once for the DSM, every measurements signature.
        let cache = GuestEvidenceCache(cachesMeasurements: false)
        var shared: VIOMMUID?
        var open: [OpenVFIO] = []
        open.reserveCapacity(vfs.count)
        for (index, vf) in vfs.enumerated() {
            guard let functionID = vf.functionID else { return fail("\(vf): no TDISP FUNCTION_ID") }
            // Host: VFIO, iommufd objects, TSM bind.
            let tdiStart = monotonicNanoseconds()
            let tunnel: TSMTunnel
            do throws(VMMError) {
                let vfio = try VFIODevice.open(SimulatedBackend.vfioDevicePath(vf), backend: backend)
                try backend.addToVM(vmFD, vfio: vfio)
                let device = try vfio.bind(to: session.iommufd)
                open.append(OpenVFIO(vfio))
                let viommu: VIOMMUID
                if let shared {
                    viommu = shared
                } else {
                    let ioas = try session.iommufd.allocIOAS()
                    let hwpt = try session.iommufd.allocHWPT(device: device, parent: ioas)
                    viommu = try session.iommufd.allocVIOMMU(device: device, hwpt: hwpt, type: .armSMMUv3)
                    shared = viommu
                }
                let vdevice = try session.iommufd.allocVDevice(viommu: viommu, device: device, virtID: UInt64(index + 1))
                tunnel = session.tunnel(for: vdevice)
                try tunnel.bind()
            } catch {
                _ = fail("\(vf): \(error)")
                continue
            }
            let bound = monotonicNanoseconds()
            result.bindNanoseconds += bound - tdiStart
            // Guest: the acceptance flow (verify, MMIO, RUN, DMA, confirm).
            let interface = InterfaceID(functionID: functionID)
            let report = dsmModel.tdi(interface)?.report?.encoded()
            let channel = VMMGuestChannel(tunnel: tunnel, evidence: HostEvidence(certificateChain: evidence.certificateChain,
                                                                                 measurements: evidence.measurements, interfaceReport: report))
            guard let tsm = GuestTSMInterface.simulated(platform.driver.linkFirmware, function: functionID, vm: firmwareVM, evidence: evidence) else {
                _ = fail("\(vf): no guest TSM interface")
                continue
            }
            let verifiedAt = VerifiedAt()
            var agent = GuestAgent(verifier: verifier, observer: { event in
                if event.step == "decode interface report" && event.status == .ok {
                    verifiedAt.nanoseconds.store(monotonicNanoseconds(), ordering: .relaxed)
                }
            }, evidenceCache: cache)
            agent.objectOpsTunnelled = profile.rawValue(of: .readObject) != nil
            do {
                let accepted = try await agent.accept(channel: channel, tsm: tsm)
                result.verified += 1
                if accepted.tdiState == .run && dsmModel.tdi(interface)?.state == .run { result.reachedRun += 1 } else {
                    _ = fail("\(vf): not in RUN after the guest's flow")
                }
            } catch {
                _ = fail("\(vf): guest refused (\(error.code)): \(error.reason)")
            }
            let end = monotonicNanoseconds()
            let verified = verifiedAt.nanoseconds.load(ordering: .relaxed)
            if verified >= bound && verified <= end {
                result.verifyNanoseconds += verified - bound
                result.runNanoseconds += end - verified
            } else {
                result.verifyNanoseconds += end - bound
            }
        }
        result.held = open
        result.session = session
        return result
    }
}

/// The figures of one run, as printed (text or `--json`).
struct BenchAssignReport: Sendable, Encodable {
    struct Phases: Sendable, Encodable {
        /// Synthetic topology, kernel, arch TSM driver and firmware, DSMs (wall seconds).
        var platformBuild: Double
        /// Vendor CA, one identity and one signed MEASUREMENTS per DSM (wall seconds).
        var identity: Double
        /// VMM and kernel: iommufd, VM, connect, VFIO, vIOMMU, vDEVICE, TSM_OP BIND (seconds summed over workers).
        var bind: Double
        /// Guest: evidence read and verified up to the decoded interface report (summed over workers).
        var guestVerify: Double
        /// Guest: MMIO validation, RUN, DMA, confirm (summed over workers).
        var run: Double
    }

    struct DSMCount: Sendable, Encodable {
        var dsm: String
        var tdis: Int
        var reachedRun: Int
        var verified: Int
    }

    var arch: String
    var profile: String
    var tdis: Int
    var dsms: Int
    var vfsPerDSM: Int
    var jobs: Int
    var reachedRun: Int
    var verified: Int
    /// TDIs whose TDI the DSM and the firmware both hold in RUN at the end.
    var deviceAndFirmwareRun: Int
    var seconds: Double
    var tdisPerSecond: Double
    /// Wall seconds of the assignments alone (after the platform was built).
    var assignSeconds: Double
    var peakRSSBytes: UInt64?
    var phases: Phases
    var perDSM: [DSMCount]
    var failures: [String]

    /// Every TDI reached RUN (guest, device and firmware) with its evidence verified.
    var succeeded: Bool { reachedRun == tdis && verified == tdis && deviceAndFirmwareRun == tdis }

    enum CodingKeys: String, CodingKey {
        case arch, profile, tdis, dsms, vfsPerDSM, jobs, reachedRun, verified, deviceAndFirmwareRun, seconds, tdisPerSecond
        case assignSeconds, peakRSSBytes, phases, perDSM, failures, succeeded
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(arch, forKey: .arch)
        try container.encode(profile, forKey: .profile)
        try container.encode(tdis, forKey: .tdis)
        try container.encode(dsms, forKey: .dsms)
        try container.encode(vfsPerDSM, forKey: .vfsPerDSM)
        try container.encode(jobs, forKey: .jobs)
        try container.encode(reachedRun, forKey: .reachedRun)
        try container.encode(verified, forKey: .verified)
        try container.encode(deviceAndFirmwareRun, forKey: .deviceAndFirmwareRun)
        try container.encode(seconds, forKey: .seconds)
        try container.encode(tdisPerSecond, forKey: .tdisPerSecond)
        try container.encode(assignSeconds, forKey: .assignSeconds)
        try container.encodeIfPresent(peakRSSBytes, forKey: .peakRSSBytes)
        try container.encode(phases, forKey: .phases)
        try container.encode(perDSM, forKey: .perDSM)
        try container.encode(failures, forKey: .failures)
        try container.encode(succeeded, forKey: .succeeded)
    }

    var text: String {
        func f(_ value: Double) -> String { String(format: "%.3f", value) }
        let rss = peakRSSBytes.map { String(format: "%.1f MiB", Double($0) / 1_048_576) } ?? "unknown"
        var lines = [
            "tsmctl bench assign: \(arch.uppercased()), profile \(profile), \(tdis) TDIs on \(dsms) DSMs (\(vfsPerDSM) VFs per DSM), \(jobs) parallel VMs",
            "  TDIs/s:          \(String(format: "%.1f", tdisPerSecond))  (\(tdis) TDIs in \(f(seconds)) s end to end; assignments alone \(f(assignSeconds)) s)",
            "  peak RSS:        \(rss)",
            "  reached RUN:     \(reachedRun)/\(tdis) (guest), \(deviceAndFirmwareRun)/\(tdis) (DSM and firmware); evidence verified \(verified)/\(tdis)",
            "  phases (s):      platform build \(f(phases.platformBuild)), identity \(f(phases.identity)), bind \(f(phases.bind)), guest verify \(f(phases.guestVerify)), RUN \(f(phases.run))",
            "                   (bind, guest verify and RUN are summed over the \(jobs) workers)",
        ]
        let counts = Dictionary(grouping: perDSM, by: \.tdis).map { "\($0.value.count) × \($0.key)" }.sorted().joined(separator: ", ")
        lines.append("  TDIs per DSM:    \(counts)")
        for failure in failures { lines.append("  FAILED: \(failure)") }
        lines.append(succeeded ? "  OK: every TDI reached RUN with verified evidence" : "  FAILED: not every TDI reached RUN with verified evidence")
        return lines.joined(separator: "\n")
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(max(0, time.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, time.tv_nsec))
}

/// Peak resident memory of this process.
enum PeakMemory {
    /// Linux: `VmHWM` of /proc/self/status (kB → bytes); otherwise `getrusage(RUSAGE_SELF)`
    /// `ru_maxrss` (kB on Linux, bytes on Darwin). Nil when neither is readable.
    static func residentBytes() -> UInt64? {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let digits = line.dropFirst("VmHWM:".count).filter(\.isNumber)
                if let kB = UInt64(digits) { return kB &* 1024 }
            }
        }
        var usage = rusage()
        #if canImport(Darwin)
        let who = RUSAGE_SELF
        #else
        let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #endif
        guard getrusage(who, &usage) == 0, usage.ru_maxrss > 0 else { return nil }
        #if canImport(Darwin)
        return UInt64(usage.ru_maxrss)
        #else
        return UInt64(usage.ru_maxrss) &* 1024
        #endif
    }
}
