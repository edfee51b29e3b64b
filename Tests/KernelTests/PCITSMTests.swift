import Kernel
import SystemPackage
import Testing
import UAPI

@Suite("tsm-core and pci-tsm (spec 5, 6)")
struct PCITSMTests {
    @Test("registration: exactly one of link/devsec, else EINVAL; ids from 0")
    func registration() throws {
        let kernel = try SimulatedKernel()
        #expect(throws: E.EINVAL) { try kernel.pciTSM.register() }
        #expect(throws: E.EINVAL) { try kernel.pciTSM.register(link: SampleLinkTSM(), devsec: TestDevsecTSM()) }
        let a = try kernel.pciTSM.register(link: SampleLinkTSM())
        let b = try kernel.pciTSM.register(devsec: TestDevsecTSM())
        #expect([a.name, b.name] == ["tsm0", "tsm1"])
        #expect([a.kind, b.kind] == [.link, .devsec])
        try kernel.pciTSM.unregister(a)
        #expect(throws: E.ENODEV) { try kernel.pciTSM.unregister(a) }
        #expect(try kernel.pciTSM.register(link: SampleLinkTSM()).name == "tsm0")
    }

    @Test("connect errnos in order (spec 6.5)")
    func connectErrors() throws {
        let f = try Fixture()
        let core = f.kernel.pciTSM
        // Not DSM-capable (fn 1): the attribute does not exist → ENOENT (EMU-KERNEL-1).
        #expect(throws: E.ENOENT) { try core.connect(Fixture.function1, "tsm0") }
        #expect(throws: E.EINVAL) { try core.connect(Fixture.dsm, "link0") }
        #expect(throws: E.EINVAL) { try core.connect(Fixture.dsm, "tsm") }
        #expect(throws: E.ENXIO) { try core.connect(Fixture.dsm, "tsm7") }
        #expect(throws: E.ENXIO) { try core.connect(Fixture.dsm, "tsm-1") }
        _ = try core.register(devsec: TestDevsecTSM())
        #expect(throws: E.ENXIO) { try core.connect(Fixture.dsm, "tsm1") }
        try core.connect(Fixture.dsm, "tsm0\n")
        #expect(throws: E.EBUSY) { try core.connect(Fixture.dsm, "tsm0") }
        // EBUSY (context) beats ENXIO (unknown TSM): the context check comes first.
        #expect(throws: E.EBUSY) { try core.connect(Fixture.dsm, "tsm9") }
    }

    @Test("connect: killable write lock → EINTR; DSM probe refused (kernel-sample mode, other domain) → ENXIO")
    func connectInterruptAndProbe() throws {
        let f = try Fixture()
        let hold = f.kernel.pciTSM.holdGlobalLock()
        #expect(throws: E.EINTR) { try f.kernel.pciTSM.connect(Fixture.dsm, "tsm0", signalPending: true) }
        #expect(throws: E.EINTR) { try f.kernel.pciTSM.disconnect(Fixture.dsm, "tsm0", signalPending: true) }
        #expect(throws: E.EINTR) { try f.kernel.pciTSM.connectShow(Fixture.dsm, signalPending: true) }
        hold.release()
        let kernel = try SimulatedKernel(functions: [
            KernelPCIFunction(address: PCIFunctionAddress("0000:05:00.0")!, hasIDE: true, teeIO: true, hasCMAMailbox: true),
            KernelPCIFunction(address: PCIFunctionAddress("0000:06:00.0")!, hasIDE: true, teeIO: true, hasCMAMailbox: false),
        ])
        let sample = SampleLinkTSM(mode: .kernelSample)
        _ = try kernel.pciTSM.register(link: sample)
        #expect(throws: E.ENXIO) { try kernel.pciTSM.connect(PCIFunctionAddress("0000:05:00.0")!, "tsm0") }
        sample.configure { $0.mode = .testing }
        // No CMA DOE mailbox: the DSM constructor fails (ENODEV inside probe) → connect ENXIO.
        #expect(throws: E.ENXIO) { try kernel.pciTSM.connect(PCIFunctionAddress("0000:06:00.0")!, "tsm0") }
        try kernel.pciTSM.connect(PCIFunctionAddress("0000:05:00.0")!, "tsm0")
        #expect(sample.statistics.liveContexts == 1)
    }

    @Test("driver connect error: the stream pool of 4 is exhausted → EBUSY and the context is discarded")
    func streamPool() throws {
        var functions: [KernelPCIFunction] = []
        for bus in UInt8(1)...5 {
            functions.append(KernelPCIFunction(address: PCIFunctionAddress(bus: bus, device: 0, function: 0),
                                               hasIDE: true, teeIO: true, hasCMAMailbox: true))
        }
        let kernel = try SimulatedKernel(functions: functions)
        let sample = SampleLinkTSM()
        _ = try kernel.pciTSM.register(link: sample)
        for function in functions.prefix(4) { try kernel.pciTSM.connect(function.address, "tsm0") }
        #expect(sample.statistics.streamsInUse == 4)
        #expect(throws: E.EBUSY) { try kernel.pciTSM.connect(functions[4].address, "tsm0") }
        #expect(try kernel.pciTSM.connectShow(functions[4].address) == "\n")
        #expect(sample.statistics.liveContexts == 4)
        try kernel.pciTSM.disconnect(functions[0].address, "tsm0")
        try kernel.pciTSM.connect(functions[4].address, "tsm0")
        #expect(sample.stream(of: functions[4].address) == 0)
    }

    @Test("disconnect errnos: no context → ENXIO; wrong name → EINVAL; not DSM-capable → ENOENT")
    func disconnectErrors() throws {
        let f = try Fixture()
        #expect(throws: E.ENXIO) { try f.kernel.pciTSM.disconnect(Fixture.dsm, "tsm0") }
        try f.connect()
        #expect(throws: E.EINVAL) { try f.kernel.pciTSM.disconnect(Fixture.dsm, "tsm1") }
        #expect(throws: E.ENOENT) { try f.kernel.pciTSM.disconnect(Fixture.function1, "tsm0") }
        try f.kernel.pciTSM.disconnect(Fixture.dsm, "tsm0\n")
    }

    @Test("devsec.sh: both functions report dsm = fn0; binding both then disconnecting unbinds both")
    func devsecScript() throws {
        let f = try Fixture()
        try f.connect()
        let core = f.kernel.pciTSM
        #expect(try core.dsmShow(Fixture.dsm) == "10000:01:00.0\n")
        #expect(try core.dsmShow(Fixture.function1) == "10000:01:00.0\n")
        try core.hookBind(Fixture.dsm, tsm: f.tsm)
        try core.hookBind(Fixture.function1, tsm: f.tsm)
        #expect(try core.boundShow(Fixture.dsm) == "tsm0\n")
        #expect(try core.boundShow(Fixture.function1) == "tsm0\n")
        try core.hookUnbind(Fixture.function1, tsm: f.tsm)
        #expect(try core.boundShow(Fixture.function1) == "\n")
        try core.hookBind(Fixture.function1, tsm: f.tsm)
        try core.disconnect(Fixture.dsm, "tsm0")
        #expect(core.boundTDIs.isEmpty)
        #expect(f.sample.statistics.shape == [0, 0, 0])
        // fn1 is no longer a managed function: its dsm attribute is gone (EMU-KERNEL-1).
        #expect(throws: E.ENOENT) { try core.dsmShow(Fixture.function1) }
        #expect(try core.dsmShow(Fixture.dsm) == "\n")
        // Hook on a function not owned by the TSM → ENXIO; unknown function → ENODEV.
        #expect(throws: E.ENXIO) { try core.hookBind(Fixture.function1, tsm: f.tsm) }
        #expect(throws: E.ENODEV) { try core.hookBind(PCIFunctionAddress("0000:77:00.0")!, tsm: f.tsm) }
    }

    @Test("sysfs visibility: bound/dsm absent (ENOENT) on functions without a context or DSM capability")
    func visibility() throws {
        let kernel = try SimulatedKernel(functions: KernelPCIFunction.devsecSampleTopology())
        // No link TSM registered: no connect attribute anywhere.
        #expect(throws: E.ENOENT) { try kernel.pciTSM.connectShow(Fixture.dsm) }
        #expect(throws: E.ENOENT) { try kernel.pciTSM.dsmShow(Fixture.dsm) }
        _ = try kernel.pciTSM.register(link: SampleLinkTSM())
        #expect(try kernel.pciTSM.connectShow(Fixture.dsm) == "\n")
        #expect(throws: E.ENOENT) { try kernel.pciTSM.dsmShow(Fixture.function1) }
        #expect(throws: E.ENOENT) { try kernel.pciTSM.boundShow(PCIFunctionAddress("10000:00:00.0")!) }
    }

    @Test("unregistering the TSM tears down every context and TDI it owns")
    func unregister() throws {
        let f = try Fixture()
        try f.setUp()
        #expect(f.bind() == .value(0))
        try f.kernel.pciTSM.unregister(f.tsm)
        #expect(f.kernel.pciTSM.boundTDIs.isEmpty)
        #expect(f.sample.statistics.shape == [0, 0, 0])
        #expect(f.guestRequest().0 == .errno(E.ENXIO))
        #expect(f.bind() == .errno(E.EINVAL))
    }

    @Test("disconnect while a vDEVICE is bound: the TDI goes; guest requests → ENXIO; bind → EINVAL")
    func disconnectWhileBound() throws {
        let f = try Fixture()
        try f.setUp()
        #expect(f.bind() == .value(0))
        try f.kernel.pciTSM.disconnect(Fixture.dsm, "tsm0")
        #expect(f.kernel.tdi(Fixture.function1) == nil)
        #expect(f.guestRequest().0 == .errno(E.ENXIO))
        #expect(f.bind() == .errno(E.EINVAL))
    }
}

@Suite("DSM discovery and the function walk (spec 6.2)")
struct DSMDiscoveryTests {
    static let pf0 = PCIFunctionAddress("0000:10:00.0")!

    /// fn0 (DSM, 2 VFs), fn1 (2 VFs), fn3 (no VFs); VFs on bus 0x11.
    static func topology() -> [KernelPCIFunction] {
        var functions = [KernelPCIFunction(address: pf0, hasIDE: true, teeIO: true, hasCMAMailbox: true)]
        functions.append(KernelPCIFunction(address: pf0.withFunction(1), teeIO: true))
        functions.append(KernelPCIFunction(address: pf0.withFunction(3), teeIO: true))
        for (index, parent) in [(0, pf0), (2, pf0.withFunction(1))] {
            for vf in 0..<2 {
                let address = PCIFunctionAddress(bus: 0x11, device: 0, function: UInt8(index + vf))
                functions.append(KernelPCIFunction(address: address, physicalFunction: parent, teeIO: true))
            }
        }
        return functions
    }

    @Test("canBeDSM: PCIe, not a VF, Endpoint/Upstream/RCiEP, IDE or TEE, function 0")
    func canBeDSM() {
        let a = PCIFunctionAddress(bus: 1, device: 0, function: 0)
        #expect(KernelPCIFunction(address: a, hasIDE: true).canBeDSM)
        #expect(KernelPCIFunction(address: a, teeIO: true).canBeDSM)
        #expect(!KernelPCIFunction(address: a).canBeDSM)
        #expect(!KernelPCIFunction(address: a.withFunction(1), teeIO: true).canBeDSM)
        #expect(!KernelPCIFunction(address: a, expressType: nil, teeIO: true).canBeDSM)
        #expect(!KernelPCIFunction(address: a, expressType: .rootPort, teeIO: true).canBeDSM)
        #expect(KernelPCIFunction(address: a, expressType: .upstreamPort, hasIDE: true).canBeDSM)
        #expect(KernelPCIFunction(address: a, expressType: .rootComplexIntegratedEndpoint, teeIO: true).canBeDSM)
        #expect(!KernelPCIFunction(address: a, physicalFunction: a.withFunction(1), teeIO: true).canBeDSM)
    }

    @Test("connect probes fn0's VFs, then fn1, fn1's VFs, fn3; disconnect removes in exact reverse")
    func walkOrder() throws {
        let kernel = try SimulatedKernel(functions: Self.topology())
        let recorder = RecordingTSM()
        _ = try kernel.pciTSM.register(link: recorder)
        try kernel.pciTSM.connect(Self.pf0, "tsm0")
        let probes = recorder.events.filter { $0.hasPrefix("probe") }
        #expect(probes == ["probe 0000:10:00.0", "probe 0000:11:00.0", "probe 0000:11:00.1", "probe 0000:10:00.1",
                           "probe 0000:11:00.2", "probe 0000:11:00.3", "probe 0000:10:00.3"])
        #expect(try kernel.pciTSM.dsmShow(PCIFunctionAddress("0000:11:00.3")!) == "0000:10:00.0\n")
        recorder.clear()
        try kernel.pciTSM.disconnect(Self.pf0, "tsm0")
        #expect(recorder.events == ["remove 0000:10:00.3", "remove 0000:11:00.3", "remove 0000:11:00.2", "remove 0000:10:00.1",
                                    "remove 0000:11:00.1", "remove 0000:11:00.0", "disconnect 0000:10:00.0", "remove 0000:10:00.0"])
    }

    @Test("a switch Upstream Port DSM manages the endpoints below its downstream ports")
    func upstreamPortDSM() throws {
        let usp = PCIFunctionAddress("0000:20:00.0")!
        let dsp = PCIFunctionAddress("0000:21:01.0")!
        let ep = PCIFunctionAddress("0000:22:00.0")!
        let kernel = try SimulatedKernel(functions: [
            KernelPCIFunction(address: usp, expressType: .upstreamPort, hasIDE: true, hasCMAMailbox: true),
            KernelPCIFunction(address: dsp, expressType: .downstreamPort, parentBridge: usp),
            KernelPCIFunction(address: ep, expressType: .endpoint, parentBridge: dsp),
        ])
        _ = try kernel.pciTSM.register(link: SampleLinkTSM())
        try kernel.pciTSM.connect(usp, "tsm0")
        // The Upstream Port has no DEVCAP.TEE here, so nothing is probed at connect; a hot-added
        // endpoint below it finds the switch DSM through its grandparent.
        #expect(kernel.pciTSM.state(ep)?.dsm == nil)
        let ep2 = PCIFunctionAddress("0000:22:00.1")!
        try kernel.pciTSM.addFunctions([KernelPCIFunction(address: ep2, expressType: .endpoint, parentBridge: dsp)])
        #expect(kernel.pciTSM.state(ep2)?.dsm == usp)
        #expect(throws: E.EEXIST) { try kernel.pciTSM.addFunctions([KernelPCIFunction(address: ep2)]) }
    }
}

/// A link TSM that records every call, in order.
final class RecordingTSM: PCITSMLinkOps, @unchecked Sendable {
    private let lock = NSLockLike()
    private var log: [String] = []
    var events: [String] { lock.run { log } }
    func clear() { lock.run { log.removeAll() } }
    private func record(_ event: String) { lock.run { log.append(event) } }

    func probe(tsm: TSMDevice, function: KernelPCIFunction, isDSM: Bool) -> PCITSMProbeResult {
        record("probe \(function.address)")
        return .context(nil)
    }
    func remove(_ context: PCITSMLinkContext) { record("remove \(context.function.address)") }
    func connect(_ context: PCITSMLinkContext) throws(Errno) { record("connect \(context.function.address)") }
    func disconnect(_ context: PCITSMLinkContext) { record("disconnect \(context.function.address)") }
    func bind(_ context: PCITSMLinkContext, vm: VMHandle, tdiID: UInt32) throws(Errno) -> PCITDI {
        record("bind \(context.function.address)")
        return PCITDI(function: context.function, vm: vm, tdiID: tdiID)
    }
    func unbind(_ tdi: PCITDI) { record("unbind \(tdi.function.address)") }
    func guestRequest(_ tdi: PCITDI, _ request: inout TSMGuestRequest) throws(Errno) -> Int { 0 }
}

import Sync
final class NSLockLike: Sendable {
    private let mutex = Locked(())
    func run<R>(_ body: () -> R) -> R { mutex.withLock { _ in body() } }
}
