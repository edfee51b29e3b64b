import Device
import TDISP
import Wire

/// A PF at e1:00.0 with a 64 KiB BAR 0 (MSI-X table at 0x2000, PBA at 0x3000, 8 vectors), a
/// 16 KiB updatable BAR 2, PASID and ATS enabled; and its VF at e1:04.0 (offset 32, stride 1).
let pfID = FunctionID(bus: 0xE1, device: 0, function: 0)
let vfID = FunctionID(bus: 0xE1, device: 4, function: 0)
let pf = TDIFunction(
    functionID: pfID,
    bars: [
        TDIBAR(index: 2, address: 0x2_0018_010000, size: 0x4000, memoryAttributeUpdatable: true),
        TDIBAR(index: 0, address: 0x2_0014_000000, size: 0x10000, prefetchable: true),
    ],
    msix: TDIMSIX(tableBIR: 0, tableOffset: 0x2000, pbaBIR: 0, pbaOffset: 0x3000, vectors: 8, messageControl: 0x0007),
    pasidEnabled: true, atsEnabled: true)
let vf = TDIFunction(
    functionID: vfID, physicalFunction: pfID,
    bars: [TDIBAR(index: 0, address: 0x1_FFF8_000000, size: 0x2000)])

func makeDSM(_ profile: DSMProfile = .standard, seed: UInt64 = 7) throws -> DSM {
    try DSM(functions: [pf, vf], profile: profile, entropy: .seeded(seed))
}

extension TDISPResponse {
    var errorCode: TDISPErrorCode? {
        if case let .error(error) = self { return error.errorCode }
        return nil
    }
    var nonce: StartInterfaceNonce? {
        if case let .lockInterface(lock) = self { return lock.nonce }
        return nil
    }
}

/// Drives `id` of `dsm` into `state` (RUN also binds P2P stream 1) and returns the LOCK nonce.
@discardableResult
func drive(_ dsm: DSM, _ id: InterfaceID, to state: TDIState) throws -> StartInterfaceNonce? {
    guard state != .configUnlocked else { return nil }
    let lock = try dsm.exchange(LockInterfaceRequest(interfaceID: id, flags: [.lockMSIX, .bindP2P]))
    let nonce = lock.nonce
    switch state {
    case .configLocked:
        break
    case .run:
        if let nonce { _ = try dsm.exchange(StartInterfaceRequest(interfaceID: id, nonce: nonce)) }
        _ = try dsm.exchange(BindP2PStreamRequest(interfaceID: id, p2pStreamID: 1))
    case .error:
        dsm.detect(.lockedRegisterWrite(id.functionID, offset: 0x10))
    case .configUnlocked:
        break
    }
    return nonce
}

func hexLines(_ text: String) throws -> [UInt8] {
    try Hex.decode(text.split(separator: "\n").joined(separator: " "))
}
