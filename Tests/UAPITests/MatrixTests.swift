import SystemPackage
import Testing
@testable import UAPI

/// The (op, tvm_arch) matrix, exhaustively for op, arch in 0...16 and 0xFFFFFFFF, per profile.
///
/// The oracle restates spec kernel-uapi.md 4.1 (c) and 4.3 step 1-2 directly:
/// * tvm_arch valid: CCA 1, SEV 2, TDX 3;
/// * revised (reply 2026-06-02): ops 1..5 any arch; 6, 7 (SEV_ENABLE_DMA, SEV_DISABLE_DMA) SEV only;
/// * rev-k: ops 1, 2 any arch; 3, 4 (SEV_ENABLE_DMA, SEV_DISABLE_DMA) SEV only;
/// * v5: no op/tvm_arch fields, nothing allowed.
@Suite struct MatrixTests {
    static let values: [UInt32] = Array(0...16) + [0xFFFF_FFFF]

    struct Pair: Sendable, CustomTestStringConvertible {
        let op: UInt32
        let arch: UInt32
        var testDescription: String { "op \(op) arch \(arch)" }
    }

    static let pairs: [Pair] = values.flatMap { op in values.map { Pair(op: op, arch: $0) } }

    static func oracle(_ profile: String, _ op: UInt32, _ arch: UInt32) -> Bool {
        let archValid = arch == 1 || arch == 2 || arch == 3
        switch profile {
        case "revised": return archValid && ((1...5).contains(op) || ((op == 6 || op == 7) && arch == 2))
        case "rev-k": return archValid && ((1...2).contains(op) || ((op == 3 || op == 4) && arch == 2))
        default: return false
        }
    }

    @Test(arguments: UAPIProfile.all, pairs)
    func matrix(_ profile: UAPIProfile, _ pair: Pair) {
        let verdict = profile.guestRequestVerdict(op: pair.op, tvmArch: pair.arch)
        #expect(verdict.isAllowed == Self.oracle(profile.name, pair.op, pair.arch))
        #expect(verdict.errno == (verdict.isAllowed ? nil : .invalidArgument))
        // Order of the checks (spec 4.3): arch before op.
        if profile.tsmReqLayout == .v5 {
            #expect(verdict == .notInLayout)
        } else if !(1...3).contains(pair.arch) {
            #expect(verdict == .invalidTVMArch(pair.arch))
        }
    }

    @Test func allowedCellsNameTheOp() {
        #expect(UAPIProfile.revised.guestRequestVerdict(op: 1, tvmArch: 1) == .allowed(.readObject, .cca))
        #expect(UAPIProfile.revised.guestRequestVerdict(op: 6, tvmArch: 2) == .allowed(.sevEnableDMA, .sev))
        #expect(UAPIProfile.revised.guestRequestVerdict(op: 7, tvmArch: 3) == .opRequiresSEV(.sevDisableDMA, .tdx))
        #expect(UAPIProfile.revised.guestRequestVerdict(op: 8, tvmArch: 2) == .invalidOp(8))
        #expect(UAPIProfile.revised.guestRequestVerdict(op: 0, tvmArch: 0) == .invalidTVMArch(0))
        #expect(UAPIProfile.revK.guestRequestVerdict(op: 1, tvmArch: 3) == .allowed(.validateMMIO, .tdx))
        #expect(UAPIProfile.revK.guestRequestVerdict(op: 3, tvmArch: 1) == .opRequiresSEV(.sevEnableDMA, .cca))
        #expect(UAPIProfile.revK.guestRequestVerdict(op: 5, tvmArch: 2) == .invalidOp(5))
    }

    @Test func opAndArchNames() {
        #expect(GuestRequestOp(kernelName: "validate_mmio") == .validateMMIO)
        #expect(GuestRequestOp(kernelName: "TSM_REQ_SET_TDI_STATE") == .setTDIState)
        #expect(GuestRequestOp(kernelName: "nope") == nil)
        #expect(TVMArch(name: "SEV") == .sev)
        #expect(TVMArch(name: "x86") == nil)
        #expect(TVMArch.tdx.kernelName == "IOMMU_VDEVICE_TSM_GUEST_TVM_ARCH_TDX")
        #expect(TSMReqScope.pciLast.rawValue == 3)
        #expect(VDeviceTSMOpType.unbind.rawValue == 2)
    }
}
