import Device
import Firmware
import Guest
import Synchronization
import SystemPackage
import TDISP
import Testing
import UAPI

/// The acceptance flows of the three architectures on the real tee-io-endpoint-sriov dump,
/// served by the Firmware platform models (docs/guest.md §5).
@Suite("Guest acceptance flows")
struct AcceptanceTests {
    @Test("happy path: evidence verified, every reported MMIO range validated, TDI RUN, DMA enabled", arguments: TVMArch.allCases)
    func happyPath(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        let log = EventLog()
        let device = try await world.agent(observer: log.observer).accept(channel: world.channel, tsm: try world.tsm)
        #expect(device.tdiState == .run)
        #expect(world.deviceState == .run)
        #expect(world.platform.tdispState(function: world.function) == .run)
        #expect(device.dmaEnabled)
        #expect(device.reportBytes == world.report)
        #expect(device.report.mmioRanges == world.reportRanges)
        #expect(device.certificateChain.certificates.count == 3)
        // The standard record of docs/identity.md §5: six blocks, index 4 the version string.
        #expect(device.measurements.blocks.map(\.index) == [1, 2, 3, 4, 5, 0xFE])
        #expect(device.measurements.block(index: 4)?.value == Array("TSMKit-EMU 1.0.0".utf8))
        // Every reported range validated, at consecutive guest pages from the default base.
        #expect(device.mappings.map(\.pa) == world.reportRanges.map { $0.firstPage << 12 })
        #expect(device.mappings.map(\.pageCount) == world.reportRanges.map(\.numberOfPages))
        #expect(device.mappings.first?.gpa == GuestAgent.defaultGPABase)
        // The observer saw the same events as the result carries, in order, numbered from 1.
        #expect(log.events == device.events)
        #expect(device.events.map(\.index) == Array(1...device.events.count))
        #expect(device.events.allSatisfy { $0.status == .ok && $0.arch == arch })
        #expect(device.events.last?.step == "confirm" && device.events.last?.tdiState == .run)
        // RUN went all the way to the device.
        let run = try #require(device.events.first { $0.op == .setTDIState })
        #expect(run.path == [.guest, .vmm, .kernel, .tsm, .device])
        #expect(device.events.filter { $0.op == .validateMMIO }.count == world.reportRanges.count)
    }

    @Test("happy path on the physical function too", arguments: TVMArch.allCases)
    func physicalFunction(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch, function: FirmwareWorld.pf)
        let device = try await world.agent().accept(channel: world.channel, tsm: try world.tsm)
        #expect(device.tdiState == .run && world.deviceState == .run)
        #expect(device.mappings.count == world.reportRanges.count)
    }

    @Test("arch-specific firmware effects of acceptance")
    func firmwareEffects() async throws {
        let cca = try FirmwareWorld(.cca)
        _ = try await cca.agent().accept(channel: cca.channel, tsm: try cca.tsm)
        let vdev = try #require((cca.platform as? CCAPlatform)?.vdevInfo(function: cca.function))
        #expect(vdev.state == .started && vdev.dmaEnabled)
        #expect(!vdev.mappings.isEmpty && vdev.mappings.allSatisfy(\.validated))

        let sev = try FirmwareWorld(.sev)
        _ = try await sev.agent().accept(channel: sev.channel, tsm: try sev.tsm)
        let tdi = try #require((sev.platform as? SEVPlatform)?.tdiInfo(function: sev.function))
        #expect(tdi.tsmEnabled && !tdi.fenceUp)
        #expect(tdi.validatedPages.count == sev.reportRanges.reduce(0) { $0 + Int($1.numberOfPages) })

        let tdx = try FirmwareWorld(.tdx)
        _ = try await tdx.agent().accept(channel: tdx.channel, tsm: try tdx.tsm)
        let info = try #require((tdx.platform as? TDXPlatform)?.tdiInfo(function: tdx.function))
        #expect(info.dmarAccepted && info.state == .run)
        #expect(info.acceptedPages.count == tdx.reportRanges.reduce(0) { $0 + Int($1.numberOfPages) })
    }

    static let tamperCases: [(TVMArch, TamperingChannel.Target)] =
        TVMArch.allCases.flatMap { arch in TamperingChannel.Target.allCases.map { (arch, $0) } }

    @Test("a host that alters an evidence object gets the device refused with the object's code", arguments: tamperCases)
    func tampering(arch: TVMArch, target: TamperingChannel.Target) async throws {
        let world = try FirmwareWorld(arch)
        let log = EventLog()
        let channel = TamperingChannel(world.channel, tampering: target)
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent(observer: log.observer).accept(channel: channel, tsm: try world.tsm)
        }
        let expected: GuestAcceptanceError.Code = switch target {
        case .report: .reportDigestMismatch
        case .measurements: .measurementsInvalid
        case .certificate: .certificateUntrusted
        }
        #expect(error?.code == expected)
        #expect(target.expectedRefusal == expected)
        #expect(error?.reason.isEmpty == false)
        // Refused before anything was validated or started: the device stays locked.
        #expect(log.events.last?.status == .refused)
        #expect(!log.events.contains { $0.op == .validateMMIO || $0.op == .setTDIState })
        #expect(world.deviceState == .configLocked)
    }

    @Test("the evidence error underneath a tampering refusal", arguments: TVMArch.allCases)
    func tamperingCauses(arch: TVMArch) async throws {
        for (target, cause) in [(TamperingChannel.Target.report, EvidenceError.Code.digestMismatch),
                                (.measurements, .signatureInvalid)] {
            let world = try FirmwareWorld(arch)
            do {
                _ = try await world.agent().accept(channel: TamperingChannel(world.channel, tampering: target), tsm: try world.tsm)
                Issue.record("\(target) tampering was accepted")
            } catch let error as GuestAcceptanceError {
                #expect(error.evidenceError?.code == cause)
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test("another validly signed measurements exchange of the same device fails the TSM digest")
    func measurementsSwappedForAnotherValidReport() async throws {
        // The host replaces the measurements by another validly signed exchange of the same device
        // (another nonce): the signature verifies, the TSM's digest does not match.
        let other = try FirmwareWorld.identity.signMeasurements(requesterNonce: [UInt8](repeating: 0x11, count: 32)).report
        for arch in TVMArch.allCases {
            let world = try FirmwareWorld(arch)
            let channel = TamperingChannel(world.channel, tampering: .measurements, alter: { _ in other })
            await #expect(throws: GuestAcceptanceError(.measurementsDigestMismatch, "", step: "")) {
                try await world.agent().accept(channel: channel, tsm: try world.tsm)
            }
        }
    }

    @Test("a trust anchor the device does not chain to is refused", arguments: TVMArch.allCases)
    func wrongTrustAnchor(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent(anchor: FirmwareWorld.otherRoot).accept(channel: world.channel, tsm: try world.tsm)
        }
        #expect(error?.code == .certificateUntrusted)
        #expect(error?.evidenceError?.code == .chainUntrusted)
        #expect(error?.step == "verify certificate chain")
        #expect(world.deviceState == .configLocked)
    }

    @Test("an MMIO range the report does not contain is refused before anything is validated", arguments: TVMArch.allCases)
    func unreportedMMIORange(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        let first = try #require(world.reportRanges.first)
        // One page past the end of the first reported range, unless another range starts there.
        let past = (first.firstPage + UInt64(first.numberOfPages)) << 12
        let outside = world.reportRanges.contains { $0.firstPage << 12 == past } ? UInt64(0xDEAD_0000_0000) : past
        let log = EventLog()
        let plan = GuestMMIOPlan.explicit([GuestMMIOMapping(gpa: GuestAgent.defaultGPABase, pa: first.firstPage << 12, pageCount: 1),
                                           GuestMMIOMapping(gpa: GuestAgent.defaultGPABase + 0x1000, pa: outside, pageCount: 1)])
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent(mmio: plan, observer: log.observer).accept(channel: world.channel, tsm: try world.tsm)
        }
        #expect(error?.code == .mmioRangeNotReported)
        #expect(error?.step == "check MMIO ranges")
        #expect(!log.events.contains { $0.op == .validateMMIO || $0.op == .setTDIState })
        #expect(world.deviceState == .configLocked)
    }

    @Test("a range that straddles the end of a reported range is refused", arguments: TVMArch.allCases)
    func straddlingRange(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        let last = try #require(world.reportRanges.max { $0.firstPage < $1.firstPage })
        let plan = GuestMMIOPlan.explicit([GuestMMIOMapping(gpa: GuestAgent.defaultGPABase, pa: last.firstPage << 12,
                                                            pageCount: last.numberOfPages + 1)])
        await #expect(throws: GuestAcceptanceError(.mmioRangeNotReported, "", step: "")) {
            try await world.agent(mmio: plan).accept(channel: world.channel, tsm: try world.tsm)
        }
    }

    @Test("an explicit plan inside the report validates exactly those ranges", arguments: TVMArch.allCases)
    func explicitPlan(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        // Reverse order, one guard page between ranges: another layout than the automatic plan's.
        var gpa: UInt64 = 0x80_0000_0000
        var mappings: [GuestMMIOMapping] = []
        for range in world.reportRanges.reversed() {
            mappings.append(GuestMMIOMapping(gpa: gpa, pa: range.firstPage << 12, pageCount: range.numberOfPages))
            gpa += (UInt64(range.numberOfPages) + 1) << 12
        }
        let device = try await world.agent(mmio: .explicit(mappings)).accept(channel: world.channel, tsm: try world.tsm)
        #expect(device.mappings == mappings)
        #expect(world.deviceState == .run)
    }

    /// What each architecture's host path answers when two ranges claim the same guest page:
    /// CCA EINVAL (EMU-CCA-2 overlap), TDX EINVAL with INVALID_OPERAND, SEV MMIO_VALIDATE NOT_UNIFORM (5).
    @Test("two ranges at one guest address: the second validation fails and the TDI is not started", arguments: TVMArch.allCases)
    func overlappingGuestRanges(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        let ranges = world.reportRanges
        try #require(ranges.count >= 2)
        let plan = GuestMMIOPlan.explicit([GuestMMIOMapping(gpa: GuestAgent.defaultGPABase, pa: ranges[0].firstPage << 12, pageCount: 1),
                                           GuestMMIOMapping(gpa: GuestAgent.defaultGPABase, pa: ranges[1].firstPage << 12, pageCount: 1)])
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent(mmio: plan).accept(channel: world.channel, tsm: try world.tsm)
        }
        #expect(error?.code == .mmioValidationFailed)
        switch arch {
        case .cca:
            #expect(error?.errno == .invalidArgument && error?.status == 0)
            #expect(world.deviceState == .configLocked)
        case .tdx:
            #expect(error?.errno == .invalidArgument && error?.status == TDX.Status.invalidOperand)
            #expect(world.deviceState == .configLocked)
        case .sev:
            #expect(error?.reason.contains("status 5") == true)
            #expect(error?.errno == nil)
        }
    }

    @Test("a device that fails START_INTERFACE: SET_TDI_STATE fails with the architecture's errno and tsm_code", arguments: TVMArch.allCases)
    func startFailure(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        world.platform.setFaultPlan(try FaultPlan(parsing: ["tdisp:0x86=error:0x1"]))
        let log = EventLog()
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent(observer: log.observer).accept(channel: world.channel, tsm: try world.tsm)
        }
        #expect(error?.code == .hostRequestFailed)
        #expect(error?.step == "SET_TDI_STATE")
        // docs/firmware.md "Fault injection": CCA EPROTO; SEV EIO with SPDM_ERROR 0x33; TDX EIO with DEVICE_ERROR.
        switch arch {
        case .cca: #expect(error?.errno == .protocolError && error?.status == 0)
        case .sev: #expect(error?.errno == .ioError && error?.status == 0x33)
        case .tdx: #expect(error?.errno == .ioError && error?.status == TDX.Status.tdiDeviceError)
        }
        let failed = try #require(log.events.last)
        #expect(failed.status == .failed && failed.op == .setTDIState && failed.errno == error?.errno)
        #expect(world.deviceState != .run)
    }

    @Test("a TDI already started is not accepted again (CCA VDEV STARTED, TDX RUN)", arguments: [TVMArch.cca, .tdx])
    func notLocked(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        _ = try await world.agent().accept(channel: world.channel, tsm: try world.tsm)
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent().accept(channel: world.channel, tsm: try world.tsm)
        }
        #expect(error?.code == .unexpectedTDIState)
        #expect(error?.step == (arch == .cca ? "RSI_VDEV_GET_INFO" : "TDG.TDI.RD TDISP state"))
    }

    @Test("a host with no copy of the evidence: SEV and TDX cannot learn it", arguments: [TVMArch.sev, .tdx])
    func noHostEvidence(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent().accept(channel: RequestsOnly(base: world.channel), tsm: try world.tsm)
        }
        #expect(error?.code == .hostRequestFailed)
        #expect(world.deviceState == .configLocked)
    }

    @Test("a TDI the host never bound: the guest's TSM says so", arguments: TVMArch.allCases)
    func unboundTDI(arch: TVMArch) async throws {
        let world = try FirmwareWorld(arch)
        world.platform.unbind(function: world.function)
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent().accept(channel: world.channel, tsm: try world.tsm)
        }
        // CCA RSI ERROR_INPUT, TDX TDI_NOT_PRESENT, SEV no tdi_id from the host.
        #expect(error?.code == (arch == .sev ? .hostRequestFailed : .tsmCallFailed))
        switch arch {
        case .cca: #expect(error?.status == 1 && error?.step == "RSI_VDEV_GET_INFO")  // RSI ERROR_INPUT
        case .tdx: #expect(error?.status == TDX.Status.tdiNotPresent && error?.step == "TDG.TDI.RD TDISP state")
        case .sev: #expect(error?.step == "SEV_TIO_OP BIND (tdi_id)")
        }
    }

    @Test("transcript: each step names the layers it crossed; TDI state follows the flow")
    func transcriptShape() async throws {
        let world = try FirmwareWorld(.cca)
        let device = try await world.agent().accept(channel: world.channel, tsm: try world.tsm)
        let steps = device.events.map(\.step)
        #expect(steps.first == "RSI_VDEV_GET_INFO")
        #expect(Array(steps[1...6]) == ["OBJECT_INFO certificate chain", "READ_OBJECT certificate chain",
                                        "OBJECT_INFO measurements", "READ_OBJECT measurements",
                                        "OBJECT_INFO interface report", "READ_OBJECT interface report"])
        for event in device.events {
            switch event.step {
            case let step where step.hasPrefix("RSI_"): #expect(event.path == [.guest, .tsm])
            case let step where step.hasPrefix("verify") || step.hasPrefix("check") || step.hasPrefix("decode") || step == "confirm":
                #expect(event.path == [.guest] && event.op == nil && event.request.isEmpty)
            case "SET_TDI_STATE": #expect(event.path == [.guest, .vmm, .kernel, .tsm, .device])
            default: #expect(event.path == [.guest, .vmm, .kernel, .tsm] && event.op != nil)
            }
        }
        // READ_OBJECT of the certificate chain carried exactly the SPDM chain.
        let read = try #require(device.events.first { $0.step == "READ_OBJECT certificate chain" })
        #expect(read.request == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])  // object_type 1, offset 0
        #expect(read.response == FirmwareWorld.identity.spdmCertificateChain)
        // LOCKED before RUN, RUN from SET_TDI_STATE on.
        let states = device.events.compactMap(\.tdiState)
        #expect(states.first == .configLocked && states.last == .run)
        #expect(states.firstIndex(of: .run).map { states[$0...].allSatisfy { $0 == .run } } == true)
    }

    @Test("TamperingChannel alters only its target object")
    func tamperingChannelScope() async throws {
        let world = try FirmwareWorld(.cca)
        let honest = world.channel
        let tampered = TamperingChannel(honest, tampering: .report)
        func read(_ channel: any GuestRequestChannel, _ type: UInt32) async throws -> [UInt8] {
            let response = try await channel.request(op: .readObject, tvmArch: .cca,
                                                     payload: CCA.ReadObjectRequest(objectType: type).encoded(), responseCapacity: 8192)
            return Array(response.bytes.prefix(8192 - response.residue))
        }
        for type: UInt32 in [1, 2] {
            #expect(try await read(tampered, type) == read(honest, type))
        }
        let original = try await read(honest, 3)
        let altered = try await read(tampered, 3)
        #expect(altered.count == original.count)
        #expect(zip(original, altered).filter { $0 != $1 }.count == 1)
        #expect(altered[original.count / 2] == original[original.count / 2] ^ 1)
        let evidence = try await TamperingChannel(honest, tampering: .certificate).hostEvidence(tvmArch: .cca)
        #expect(evidence.measurements == world.hostEvidence.measurements)
        #expect(evidence.interfaceReport == world.hostEvidence.interfaceReport)
        #expect(evidence.certificateChain != world.hostEvidence.certificateChain)
        // Other ops pass through untouched.
        let info = try await tampered.request(op: .objectInfo, tvmArch: .cca, payload: CCA.ObjectInfoRequest(objectType: 3).encoded(),
                                              responseCapacity: 4)
        #expect(info.bytes == CCA.ObjectInfoResponse(objectSize: UInt32(original.count)).encoded())
    }
}

@Suite("Guest evidence cache")
struct EvidenceCacheTests {
    @Test("the second TDI of a DSM reuses the chain and measurements verification; digests are still checked", arguments: TVMArch.allCases)
    func reuse(arch: TVMArch) async throws {
        let cache = GuestEvidenceCache()
        let first = try FirmwareWorld(arch, function: FirmwareWorld.vf)
        var agent = try first.agent()
        agent.evidenceCache = cache
        let one = try await agent.accept(channel: first.channel, tsm: try first.tsm)
        #expect(cache.count == (1, 1))
        #expect(one.events.first { $0.step == "verify certificate chain" }?.result.contains("earlier") == false)
        let second = try FirmwareWorld(arch, function: FirmwareWorld.pf)
        let two = try await agent.accept(channel: second.channel, tsm: try second.tsm)
        #expect(two.events.first { $0.step == "verify certificate chain" }?.result.contains("verified earlier") == true)
        #expect(two.events.first { $0.step == "verify measurements" }?.result.contains("verified earlier") == true)
        #expect(two.events.contains { $0.step == "check certificate chain digest" && $0.status == .ok })
        #expect(two.measurements == one.measurements)
    }

    /// `tsmctl bench assign`'s cache: the chain once per DSM, every measurements signature verified.
    @Test("cachesMeasurements false: the chain is reused, the measurements are verified again", arguments: TVMArch.allCases)
    func chainsOnly(arch: TVMArch) async throws {
        let cache = GuestEvidenceCache(cachesMeasurements: false)
        let first = try FirmwareWorld(arch, function: FirmwareWorld.vf)
        var agent = try first.agent()
        agent.evidenceCache = cache
        _ = try await agent.accept(channel: first.channel, tsm: try first.tsm)
        #expect(cache.count == (1, 0))
        let second = try FirmwareWorld(arch, function: FirmwareWorld.pf)
        let two = try await agent.accept(channel: second.channel, tsm: try second.tsm)
        #expect(two.events.first { $0.step == "verify certificate chain" }?.result.contains("verified earlier") == true)
        let measurements = try #require(two.events.first { $0.step == "verify measurements" })
        #expect(measurements.status == .ok && !measurements.result.contains("earlier"))
        #expect(cache.count == (1, 0))
    }

    @Test("a warm cache does not let tampered objects through", arguments: TamperingChannel.Target.allCases)
    func tamperingWithWarmCache(target: TamperingChannel.Target) async throws {
        let cache = GuestEvidenceCache()
        let warm = try FirmwareWorld(.sev, function: FirmwareWorld.pf)
        var agent = try warm.agent()
        agent.evidenceCache = cache
        _ = try await agent.accept(channel: warm.channel, tsm: try warm.tsm)
        let world = try FirmwareWorld(.sev)
        await #expect(throws: GuestAcceptanceError(target.expectedRefusal, "", step: "")) {
            try await agent.accept(channel: TamperingChannel(world.channel, tampering: target), tsm: try world.tsm)
        }
    }
}

@Suite("Guest on kernels without object ops")
struct UntunnelledObjectTests {
    /// arch-backends.md §0 "Latest direction": ops 1-3 rejected; the evidence comes from the host's copy.
    @Test("CCA and TDX with objectOpsTunnelled off: READ_OBJECT is EINVAL; the host's copy is verified instead", arguments: [TVMArch.cca, .tdx])
    func hostCopy(arch: TVMArch) async throws {
        var profile = FirmwareProfile.defaults(for: arch)
        profile.objectOpsTunnelled = false
        let world = try FirmwareWorld(arch, profile: profile)
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent().accept(channel: world.channel, tsm: try world.tsm)
        }
        #expect(error?.code == .hostRequestFailed && error?.errno == .invalidArgument)
        var agent = try world.agent()
        agent.objectOpsTunnelled = false
        let device = try await agent.accept(channel: world.channel, tsm: try world.tsm)
        #expect(device.tdiState == .run && world.deviceState == .run)
        #expect(!device.events.contains { $0.op == .readObject || $0.op == .objectInfo })
        // The host's copy is still checked against the TSM's digests.
        let fresh = try FirmwareWorld(arch, profile: profile)
        await #expect(throws: GuestAcceptanceError(.reportDigestMismatch, "", step: "")) {
            try await agent.accept(channel: TamperingChannel(fresh.channel, tampering: .report), tsm: try fresh.tsm)
        }
    }
}

@Suite("Guest SEV replay check")
struct SEVReplayTests {
    /// A host that answers the second MMIO_VALIDATE with the first one's response (a replay).
    final class ReplayingChannel: GuestRequestChannel {
        let base: DirectFirmwareChannel
        let first = Mutex<[UInt8]?>(nil)
        init(base: DirectFirmwareChannel) { self.base = base }
        func request(op: GuestRequestOp, tvmArch: TVMArch, payload: [UInt8], responseCapacity: Int) async throws -> GuestResponse {
            let response = try await base.request(op: op, tvmArch: tvmArch, payload: payload, responseCapacity: responseCapacity)
            guard op == .validateMMIO else { return response }
            if let earlier = first.withLock({ $0 }) { return GuestResponse(bytes: earlier, residue: response.residue) }
            first.withLock { $0 = response.bytes }
            return response
        }
        func hostEvidence(tvmArch: TVMArch) async throws -> HostEvidence { try await base.hostEvidence(tvmArch: tvmArch) }
    }

    @Test("a replayed MMIO_VALIDATE response (old msg_seqno) is refused")
    func replay() async throws {
        let world = try FirmwareWorld(.sev)
        try #require(world.reportRanges.count >= 2)
        let error = await #expect(throws: GuestAcceptanceError.self) {
            try await world.agent().accept(channel: ReplayingChannel(base: world.channel), tsm: try world.tsm)
        }
        #expect(error?.code == .mmioValidationFailed)
        #expect(error?.reason.contains("msg_seqno") == true)
    }
}

/// A host path without the default evidence service (the protocol's default: unsupported).
struct RequestsOnly: GuestRequestChannel {
    let base: DirectFirmwareChannel
    func request(op: GuestRequestOp, tvmArch: TVMArch, payload: [UInt8], responseCapacity: Int) async throws -> GuestResponse {
        try await base.request(op: op, tvmArch: tvmArch, payload: payload, responseCapacity: responseCapacity)
    }
}
