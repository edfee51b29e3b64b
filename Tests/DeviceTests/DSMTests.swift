import Device
import Testing
import TDISP
import Wire

@Suite("DSM behaviour")
struct DSMTests {
    // MARK: Nonces (spec 2.6, EMU-TDISP-2)

    @Test func nonceIsSingleUseAcrossStop() throws {
        let dsm = try makeDSM()
        let id = pf.interfaceID
        let first = try #require(try dsm.exchange(LockInterfaceRequest(interfaceID: id, flags: [])).nonce)
        #expect(dsm.tdi(id)?.hasNonce == true)
        _ = try dsm.exchange(StopInterfaceRequest(interfaceID: id))
        #expect(dsm.tdi(id)?.hasNonce == false)
        let second = try #require(try dsm.exchange(LockInterfaceRequest(interfaceID: id, flags: [])).nonce)
        #expect(second != first)
        #expect(try dsm.exchange(StartInterfaceRequest(interfaceID: id, nonce: first)).errorCode == .invalidNonce)
        #expect(dsm.tdi(id)?.state == .configLocked)
        #expect(try dsm.exchange(StartInterfaceRequest(interfaceID: id, nonce: second)).header.messageType == .startInterfaceResponse)
        #expect(dsm.tdi(id)?.hasNonce == false)  // consumed by the successful START
        #expect(try dsm.exchange(StartInterfaceRequest(interfaceID: id, nonce: second)).errorCode == .invalidInterfaceState)
    }

    @Test func nonceIsDestroyedOnError() throws {
        let dsm = try makeDSM()
        let id = pf.interfaceID
        let first = try #require(try dsm.exchange(LockInterfaceRequest(interfaceID: id, flags: [])).nonce)
        #expect(dsm.detect(.barChange(pfID, barIndex: 0)) == [id])
        #expect(dsm.tdi(id)?.state == .error)
        #expect(dsm.tdi(id)?.hasNonce == false)
        #expect(try dsm.exchange(StartInterfaceRequest(interfaceID: id, nonce: first)).errorCode == .invalidInterfaceState)
        _ = try dsm.exchange(StopInterfaceRequest(interfaceID: id))
        #expect(dsm.tdi(id)?.state == .configUnlocked)
        _ = try dsm.exchange(LockInterfaceRequest(interfaceID: id, flags: []))
        #expect(try dsm.exchange(StartInterfaceRequest(interfaceID: id, nonce: first)).errorCode == .invalidNonce)
    }

    @Test func entropyFailureIsInsufficientEntropy() throws {
        let dsm = try DSM(functions: [pf], entropy: .unavailable)
        #expect(try dsm.exchange(LockInterfaceRequest(interfaceID: pf.interfaceID, flags: [])).errorCode == .insufficientEntropy)
        #expect(dsm.tdi(pf.interfaceID)?.state == .configUnlocked)
        #expect(dsm.tdi(pf.interfaceID)?.report == nil)
    }

    @Test func systemEntropyGivesDistinctNonces() throws {
        let dsm = try DSM(functions: [pf, vf])
        let a = try dsm.exchange(LockInterfaceRequest(interfaceID: pf.interfaceID, flags: [])).nonce
        let b = try dsm.exchange(LockInterfaceRequest(interfaceID: vf.interfaceID, flags: [])).nonce
        #expect(a != nil && b != nil && a != b)
    }

    // MARK: Report portions (spec 2.10, EMU-TDISP-7)

    static func lockedPF(_ profile: DSMProfile = .standard) throws -> (DSM, [UInt8]) {
        let dsm = try makeDSM(profile)
        _ = try dsm.exchange(LockInterfaceRequest(interfaceID: pf.interfaceID, flags: [.lockMSIX]))
        let report = try #require(dsm.tdi(pf.interfaceID)?.report).encoded()
        return (dsm, report)
    }

    @Test func reportOffsetsAndLengths() throws {
        let (dsm, report) = try Self.lockedPF()
        let id = pf.interfaceID
        let size = report.count
        #expect(size == 20 + 16 * 5)  // BAR 0 in four ranges around the MSI-X pages, BAR 2 in one
        func get(_ offset: Int, _ length: UInt16) throws -> TDISPResponse {
            try dsm.exchange(GetDeviceInterfaceReport(interfaceID: id, offset: UInt16(offset), length: length))
        }
        #expect(try get(0, 0xFFFF) == .deviceInterfaceReport(DeviceInterfaceReportResponse(interfaceID: id, remainderLength: 0, portion: report)))
        #expect(try get(0, 1) == .deviceInterfaceReport(DeviceInterfaceReportResponse(interfaceID: id, remainderLength: UInt16(size - 1), portion: [report[0]])))
        #expect(try get(size - 1, 0xFFFF) == .deviceInterfaceReport(DeviceInterfaceReportResponse(interfaceID: id, remainderLength: 0, portion: [report[size - 1]])))
        #expect(try get(size - 1, 1) == .deviceInterfaceReport(DeviceInterfaceReportResponse(interfaceID: id, remainderLength: 0, portion: [report[size - 1]])))
        #expect(try get(size, 1).errorCode == .invalidRequest)
        #expect(try get(size + 1, 0xFFFF).errorCode == .invalidRequest)
        #expect(try get(0xFFFF, 0xFFFF).errorCode == .invalidRequest)
        #expect(try get(0, 0).errorCode == .invalidRequest)
        #expect(try get(size - 1, 0).errorCode == .invalidRequest)
    }

    @Test func portion64CapsAtSixtyFourBytes() throws {
        let (dsm, report) = try Self.lockedPF(.portion64)
        var reader = InterfaceReportReader(maxPortion: 0xFFFF)
        var portions = [Int]()
        while !reader.isComplete {
            let response = try dsm.exchange(reader.nextRequest(interfaceID: pf.interfaceID))
            guard case let .deviceInterfaceReport(portion) = response else { Issue.record("\(response)"); return }
            portions.append(portion.portion.count)
            try reader.accept(portion)
        }
        #expect(portions == [0x40, report.count - 0x40])
        #expect(reader.received == report)
    }

    // MARK: INTERFACE_ID routing

    @Test func nonZeroFunctionIDFindsItsOwnReport() throws {
        let dsm = try makeDSM()
        #expect(vf.interfaceID.functionID.rawValue == 0xE120)
        _ = try dsm.exchange(LockInterfaceRequest(interfaceID: vf.interfaceID, flags: [], mmioReportingOffset: 0x1000))
        let response = try dsm.exchange(GetDeviceInterfaceReport(interfaceID: vf.interfaceID, offset: 0, length: 0xFFFF))
        guard case let .deviceInterfaceReport(portion) = response else { Issue.record("\(response)"); return }
        #expect(portion.interfaceID.functionID == vfID)
        let report = try DeviceInterfaceReport(decoding: portion.portion)
        // The VF's 8 KiB BAR 0 at 0x1fff8000000, moved by 0x1000: FIRST_PAGE 0x1fff8001, 2 pages.
        #expect(report.mmioRanges == [MMIORange(firstPage: 0x1FF_F800_1, numberOfPages: 2, attributes: [], rangeID: 0)])
        // The PF is still unlocked: its report is refused.
        #expect(try dsm.exchange(GetDeviceInterfaceReport(interfaceID: pf.interfaceID, offset: 0, length: 1)).errorCode == .invalidInterfaceState)
        // A function this DSM does not serve, and a non-zero reserved INTERFACE_ID part.
        let stranger = InterfaceID(functionID: FunctionID(bus: 0xE2, device: 0, function: 0))
        #expect(try dsm.exchange(GetDeviceInterfaceState(interfaceID: stranger)).errorCode == .invalidInterface)
        let reserved = InterfaceID(functionID: vfID, reserved: 1)
        #expect(try dsm.exchange(GetDeviceInterfaceState(interfaceID: reserved)).errorCode == .invalidInterface)
    }

    @Test func duplicateFunctionsAreRefused() {
        #expect(throws: DSMConfigurationError.duplicateInterface(pf.interfaceID)) { try DSM(functions: [pf, pf]) }
        #expect(throws: DSMConfigurationError.noFunctions) { try DSM(functions: []) }
    }

    // MARK: The walk

    @Test func versionCapabilitiesLockReportStartRunStop() throws {
        let dsm = try makeDSM(.portion64)
        let id = pf.interfaceID
        #expect(try dsm.exchange(GetTDISPVersion(interfaceID: id)) == .version(TDISPVersionResponse(interfaceID: id, versions: [0x10])))
        guard case let .capabilities(caps) = try dsm.exchange(GetTDISPCapabilities(interfaceID: id)) else { Issue.record("caps"); return }
        #expect(caps.requestMessagesSupported.bytes[0] == 0xFE && caps.requestMessagesSupported.bytes[1] == 0x07)
        #expect(caps.lockInterfaceFlagsSupported == .defined)
        let nonce = try #require(try dsm.exchange(LockInterfaceRequest(interfaceID: id, flags: [.noFirmwareUpdate, .lockMSIX],
                                                                       mmioReportingOffset: 0x1_0000_0000)).nonce)
        var reader = InterfaceReportReader(maxPortion: 0x40, capacity: 0x1000)
        var rounds = 0
        while !reader.isComplete {
            guard case let .deviceInterfaceReport(portion) = try dsm.exchange(reader.nextRequest(interfaceID: id)) else {
                Issue.record("report"); return
            }
            try reader.accept(portion)
            rounds += 1
        }
        #expect(rounds == 2)
        let report = try reader.report()
        #expect(report.interfaceInfo == [.noFirmwareUpdate, .dmaWithoutPASID, .dmaWithPASID, .atsEnabled])
        #expect(report.msixMessageControl == 0x0007)
        #expect(try dsm.exchange(StartInterfaceRequest(interfaceID: id, nonce: nonce)) == .startInterface(StartInterfaceResponse(interfaceID: id)))
        #expect(try dsm.exchange(GetDeviceInterfaceState(interfaceID: id)) == .deviceInterfaceState(DeviceInterfaceStateResponse(interfaceID: id, state: .run)))
        #expect(try dsm.exchange(StopInterfaceRequest(interfaceID: id)) == .stopInterface(StopInterfaceResponse(interfaceID: id)))
        #expect(try dsm.exchange(GetDeviceInterfaceState(interfaceID: id)) == .deviceInterfaceState(DeviceInterfaceStateResponse(interfaceID: id, state: .configUnlocked)))
        #expect(dsm.tdi(id)?.report == nil && dsm.tdi(id)?.lock == nil)
    }

    // MARK: Change detectors

    @Test func detectorsMoveOnlyLockedOrRunningMatchingTDIs() throws {
        let dsm = try makeDSM()
        try drive(dsm, pf.interfaceID, to: .run)
        try drive(dsm, vf.interfaceID, to: .configLocked)
        #expect(dsm.detect(.lockedRegisterWrite(vfID, offset: 0x04)) == [vf.interfaceID])
        #expect(dsm.tdi(pf.interfaceID)?.state == .run)
        #expect(dsm.detect(.barChange(vfID, barIndex: 0)).isEmpty)  // already in ERROR
        #expect(dsm.detect(.functionLevelReset(pfID)) == [pf.interfaceID])
        #expect(dsm.tdi(pf.interfaceID)?.state == .error)
        _ = try dsm.exchange(StopInterfaceRequest(interfaceID: pf.interfaceID))
        _ = try dsm.exchange(StopInterfaceRequest(interfaceID: vf.interfaceID))
        #expect(dsm.detect(.linkLoss).isEmpty)  // nothing locked
        try drive(dsm, vf.interfaceID, to: .run)
        #expect(dsm.detect(.functionLevelReset(pfID)) == [vf.interfaceID])  // a PF FLR resets its VFs
        try drive(dsm, pf.interfaceID, to: .configLocked)
        #expect(dsm.detect(.linkLoss) == [pf.interfaceID])
    }

    @Test func concurrentRequestsKeepOneStatePerTDI() async throws {
        let dsm = try makeDSM()
        await withTaskGroup(of: Void.self) { group in
            for id in [pf.interfaceID, vf.interfaceID] {
                group.addTask {
                    for _ in 0..<50 {
                        _ = dsm.respond(LockInterfaceRequest(interfaceID: id, flags: []).encoded())
                        _ = dsm.respond(StopInterfaceRequest(interfaceID: id).encoded())
                    }
                }
            }
        }
        #expect(dsm.tdi(pf.interfaceID)?.state == .configUnlocked)
        #expect(dsm.tdi(vf.interfaceID)?.state == .configUnlocked)
    }
}
