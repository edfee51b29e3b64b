import ArgumentParser
import Kernel
import KernelScript
import SystemPackage
import UAPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `tsmctl bench`: benchmarks, each a subcommand; `tsmctl bench` alone runs ``GuestRequestBench``.
///
/// Figures are always reported against a baseline measured in the same run, never as absolute
/// pass/fail thresholds (CONTRIBUTING.md: benchmarks live here, never in timed tests).
/// `tsmctl bench assign` (``BenchAssign``) is the assignment-flow scale benchmark (docs/assign.md).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks of the simulated kernel (default: guest-request throughput).",
        subcommands: [GuestRequestBench.self, BenchAssign.self],
        defaultSubcommand: GuestRequestBench.self)
}

/// Guest-request throughput: `IOMMU_VDEVICE_TSM_REQ` through the whole simulated path (dispatcher,
/// copy-in, envelope checks, vDEVICE lookup, tsm-core, pci-tsm locks, sample link TSM answering
/// a 64-byte request with a 64-byte response), and the dispatcher alone (a request whose nr is
/// past the table, failing at spec 2.2 step 1 with ENOTTY) as the baseline.
struct GuestRequestBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests",
        abstract: "Guest requests per second: full path vs dispatcher-only baseline.")

    @Option(help: "Requests per measured round.")
    var iterations = 2_000_000

    @Option(help: "Measured rounds (the best round is reported).")
    var rounds = 5

    @Option(help: "uAPI profile (revised, v5, rev-k).")
    var profile = "revised"

    @Flag(help: "Run only the full-path loop, once, without printing figures (for valgrind --tool=dhat or callgrind: allocations per request = blocks(N2) - blocks(N1) over N2 - N1).")
    var profileFullPathOnly = false

    func validate() throws {
        guard iterations > 0, iterations <= 1_000_000_000 else { throw ValidationError("--iterations must be 1...1e9") }
        guard rounds > 0, rounds <= 1000 else { throw ValidationError("--rounds must be 1...1000") }
        guard UAPIProfile.all.contains(where: { $0.name == profile }) else {
            throw ValidationError("unknown profile \(profile) (valid: \(UAPIProfile.all.map(\.name).joined(separator: ", ")))")
        }
    }

    func run() throws {
        let setup = try GuestRequestBenchSetup(profileName: profile)
        let request = setup.request
        let baselineRequest = setup.baselineRequest
        let fd = setup.fd
        let argument = setup.argument
        let target = setup.target

        // Both paths must do what they claim before they are timed.
        guard case .success(0) = target.ioctl(fd: fd, request: request, argument: argument, signalPending: false) else {
            throw ValidationError("the full-path request did not return 0; the set-up is wrong")
        }
        guard case .failure(let errno) = target.ioctl(fd: fd, request: baselineRequest, argument: argument, signalPending: false),
              ScriptErrnoNames.name(of: errno) == "ENOTTY"
        else { throw ValidationError("the baseline request did not fail with ENOTTY") }

        // The loops call the kernel's own entry point, as a VMM's ioctl(2) would.
        let kernel = setup.kernel
        let count = iterations
        if profileFullPathOnly {
            var failures = 0
            for _ in 0..<count {
                do throws(Errno) {
                    if try kernel.ioctl(fd, request, argument) != 0 { failures += 1 }
                } catch {
                    failures += 1
                }
            }
            print("\(count) full-path requests, \(failures) failures")
            return
        }
        let full = best(rounds) { () -> Int in
            var failures = 0
            for _ in 0..<count {
                do throws(Errno) {
                    if try kernel.ioctl(fd, request, argument) != 0 { failures += 1 }
                } catch {
                    failures += 1
                }
            }
            return failures
        }
        let baseline = best(rounds) { () -> Int in
            var failures = 0
            for _ in 0..<count {
                do throws(Errno) {
                    _ = try kernel.ioctl(fd, baselineRequest, argument)
                    failures += 1
                } catch {
                    if error != .inappropriateIOCTLForDevice { failures += 1 }
                }
            }
            return failures
        }
        guard full.failures == 0, baseline.failures == 0 else {
            throw ValidationError("\(full.failures) full-path and \(baseline.failures) baseline calls returned an unexpected result")
        }
        let fullRate = Double(count) / full.cpuSeconds
        let baselineRate = Double(count) / baseline.cpuSeconds
        print("guest-request throughput (profile \(profile), sample link TSM, 64-byte request, 64-byte response)")
        print("  full path:        \(format(fullRate)) requests/s  (\(format(1e9 / fullRate)) ns/request)")
        print("  dispatcher only:  \(format(baselineRate)) requests/s  (\(format(1e9 / baselineRate)) ns/request, ENOTTY at spec 2.2 step 1)")
        print("  ratio:            full path = \(format(fullRate / baselineRate * 100))% of the dispatcher baseline (\(format(baselineRate / fullRate))x slower)")
        print("  \(count) requests per round, best of \(rounds) rounds, one thread; rates use the thread's CPU time")
        print("  (wall clock: full path \(format(Double(count) / full.wallSeconds))/s, dispatcher \(format(Double(count) / baseline.wallSeconds))/s)")
        print("  allocations per request: not counted in-process; count with an LD_PRELOAD malloc counter and --profile-full-path-only")
    }

    /// Runs `body` `rounds` times and returns the fastest round's CPU seconds (this thread's
    /// CPU time, so a loaded machine does not count run-queue waits) and wall seconds, and the
    /// failure count over all rounds.
    func best(_ rounds: Int, _ body: () -> Int) -> (cpuSeconds: Double, wallSeconds: Double, failures: Int) {
        let clock = ContinuousClock()
        var fastestCPU = Double.infinity
        var fastestWall = Double.infinity
        var failures = 0
        for _ in 0..<rounds {
            var roundFailures = 0
            let cpuStart = threadCPUSeconds()
            let elapsed = clock.measure { roundFailures = body() }
            fastestCPU = min(fastestCPU, threadCPUSeconds() - cpuStart)
            fastestWall = min(fastestWall, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            failures += roundFailures
        }
        return (max(fastestCPU, 1e-9), max(fastestWall, 1e-9), failures)
    }

    /// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`), in seconds.
    func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    func format(_ value: Double) -> String {
        if value >= 1_000_000 { return "\(Double(Int(value / 10_000)) / 100)M" }
        if value >= 1000 { return "\(Double(Int(value / 10)) / 100)k" }
        return "\(Double(Int(value * 100)) / 100)"
    }
}

/// The state the benchmark needs: Appendix B up to a bound TDI, built with the script engine,
/// and a TSM_REQ argument in user memory.
struct GuestRequestBenchSetup {
    let target: any ScriptTarget
    let kernel: SimulatedKernel
    let fd: Int32
    let argument: UInt64
    let request: UInt32
    let baselineRequest: UInt32

    init(profileName: String) throws {
        let profile = try UAPIProfile.named(profileName)
        let revised = profile.tsmReqLayout.hasOpAndArch
        let opValue = profile.validOps.first { !profile.sevOnlyOps.contains($0.op) }?.rawValue ?? 1
        let request = revised
            ? "\"op\":\(opValue),\"tvm_arch\":1"
            : "\"scope\":0"
        let script = """
            {"op":"platform","profile":"\(profileName)","tsm":"link","devices":["sample"]}
            {"op":"open_iommufd","save":"fd"}
            {"op":"create_vm","save":"vm"}
            {"op":"vfio_open","device":"10000:01:00.0","save":"vfio"}
            {"op":"vfio_associate","vfio":"$vfio","vm":"$vm"}
            {"op":"vfio_bind","vfio":"$vfio","iommufd":"$fd","save":"dev"}
            {"op":"ioctl","cmd":"IOMMU_IOAS_ALLOC","save":"ioas"}
            {"op":"ioctl","cmd":"IOMMU_HWPT_ALLOC","fields":{"flags":1,"dev_id":"$dev","pt_id":"$ioas"},"save":"hwpt"}
            {"op":"ioctl","cmd":"IOMMU_VIOMMU_ALLOC","fields":{"type":1,"dev_id":"$dev","hwpt_id":"$hwpt"},"save":"viommu"}
            {"op":"ioctl","cmd":"IOMMU_VDEVICE_ALLOC","fields":{"viommu_id":"$viommu","dev_id":"$dev","virt_id":"0x10"},"save":"vdev"}
            {"op":"connect","device":"10000:01:00.0","tsm":"tsm0"}
            {"op":"ioctl","cmd":"IOMMU_VDEVICE_TSM_OP","fields":{"type":1,"vdevice_id":"$vdev"}}
            {"op":"sample_tsm","mode":"testing","response":"echo"}
            {"op":"buffer","name":"req","size":64,"hex":"000102030405060708090a0b0c0d0e0f"}
            {"op":"buffer","name":"resp","size":64}
            {"op":"ioctl","cmd":"IOMMU_VDEVICE_TSM_REQ","fields":{"vdevice_id":"$vdev",\(request),"req_len":64,"resp_len":64,"req_uptr":"$req","resp_uptr":"$resp"},"arg":"$arg","expect":0}
            """
        // The argument lives in a named buffer so the loop can reuse it.
        let engine = ScriptEngine(host: SimulatedKernelHost())
        let lines = script.split(separator: "\n").map(String.init)
        var allLines = Array(lines.prefix(15))
        allLines.append("{\"op\":\"buffer\",\"name\":\"arg\",\"size\":\(profile.tsmReq.layout?.size ?? 48)}")
        allLines.append(contentsOf: lines.dropFirst(15))
        var number = 0
        for line in allLines {
            number += 1
            let step = try ScriptParser.parseLine(line, number: number, isErrnoName: { ScriptErrnoNames.errno(named: $0) != nil })
            let result = engine.run(step)
            guard result.verdict == .ok else { throw ValidationError("benchmark set-up failed: \(result.jsonLine)") }
        }
        guard let target = engine.currentTarget as? SimulatedKernelTarget, let fd = engine.savedValue("fd"), let argument = engine.savedValue("arg") else {
            throw ValidationError("benchmark set-up lost its state")
        }
        self.target = target
        self.kernel = target.kernel
        self.fd = Int32(truncatingIfNeeded: fd)
        self.argument = argument
        self.request = profile.tsmReq.request
        self.baselineRequest = IoctlCode.io(type: IoctlCode.iommufdType, nr: 0xFF)
    }
}
