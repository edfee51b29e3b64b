import SystemPackage
import UAPI

/// Field offsets of `struct iommu_vdevice_tsm_req` in the profile's layout, read once from the
/// `UAPI` layout so the per-request path reads the kernel copy without decoding into arrays.
///
/// Every stored property is a plain integer or Bool, so reading the table on every request costs
/// no reference counting.
struct TSMRequestFields: Sendable {
    /// The layout has `op` and `tvm_arch` (revised) rather than `scope` and `__reserved` (v5).
    let hasOpAndArch: Bool
    /// `UAPIProfile.guestRequestVerdict(op:tvmArch:).isAllowed` for ops 0...63, by arch 1...3
    /// (bit `op` of `allowed.0` for CCA, `.1` SEV, `.2` TDX), answered once at boot so the
    /// per-request check is a shift and a mask. Ops above 63 are never valid in any profile
    /// (checked at build). `UAPI` stays the only place that knows the matrix.
    let allowed: (UInt64, UInt64, UInt64)
    let vdeviceID: Int
    /// `op` (revised) or `scope` (v5).
    let selector: Int
    /// `tvm_arch` (revised), -1 otherwise.
    let tvmArch: Int
    /// `__reserved` (v5), -1 otherwise.
    let reserved: Int
    let reqLen: Int
    let respLen: Int
    let reqUptr: Int
    let respUptr: Int
    /// `tsm_code`, -1 when the layout has none (v5).
    let tsmCode: Int

    init(_ profile: UAPIProfile) {
        let layout = profile.tsmReqLayout
        let fields = layout.layout
        func mask(_ arch: UInt32) -> UInt64 {
            (UInt32(0)..<64).reduce(UInt64(0)) { mask, op in
                profile.guestRequestVerdict(op: op, tvmArch: arch).isAllowed ? mask | (1 << UInt64(op)) : mask
            }
        }
        allowed = (mask(1), mask(2), mask(3))
        func offset(_ name: String) -> Int { fields.field(named: name)?.offset ?? -1 }
        hasOpAndArch = layout.hasOpAndArch
        vdeviceID = offset("vdevice_id")
        selector = layout.hasOpAndArch ? offset("op") : offset("scope")
        tvmArch = offset("tvm_arch")
        reserved = offset("__reserved")
        reqLen = offset("req_len")
        respLen = offset("resp_len")
        reqUptr = offset("req_uptr")
        respUptr = offset("resp_uptr")
        tsmCode = offset("tsm_code")
    }

    /// (op, arch) allowed by the profile (spec 4.3 steps 1-2 / 6-7).
    @inline(__always)
    func isAllowed(op: UInt32, arch: UInt32) -> Bool {
        guard op < 64 else { return false }
        let mask: UInt64
        switch arch {
        case 1: mask = allowed.0
        case 2: mask = allowed.1
        case 3: mask = allowed.2
        default: return false
        }
        return mask & (1 << UInt64(op)) != 0
    }
}

extension IOMMUFDHandlers {
    /// IOMMU_VDEVICE_TSM_OP (spec 3). Order:
    /// 1. `flags != 0` → `EOPNOTSUPP`;
    /// 2. `vdevice_id` lookup (VDEVICE) → `ENOENT`;
    /// 3. the VM of the vDEVICE's **vIOMMU**; none → `ENODEV` (UNBIND too);
    /// 4. BIND (1): `tsm_bind(dev, vm, virt_id)` — non-PCI → `EINVAL`, then `pci_tsm_bind` with the
    ///    low 32 bits of `virt_id` (spec 6.6); UNBIND (2): `tsm_unbind(dev)` — non-PCI → `EINVAL`,
    ///    else 0; any other `type` → `EINVAL`;
    /// 5. on success only, write the struct back unchanged → `EFAULT` (the bind stays done,
    ///    spec 8 item 7).
    static let vdeviceTSMOp: IOMMUFDHandler = { kernel, context, ucmd throws(Errno) in
        let cmd = try ucmd.decode(IOMMUVDeviceTSMOp.self)
        guard cmd.flags == 0 else { throw .notSupported }
        let object = try context.lookup(cmd.vdeviceID, .vdevice)
        defer { context.release(object) }
        let vdevice = unsafeDowncast(object, to: VDeviceObject.self)
        guard let vm = vdevice.viommu.vm else { throw .operationNotSupportedByDevice }
        switch cmd.type {
        case VDeviceTSMOpType.bind.rawValue:
            guard let node = vdevice.device.node else { throw .invalidArgument }
            try kernel.pciTSM.bind(node, vm: vm, tdiID: UInt32(truncatingIfNeeded: vdevice.virtID))
        case VDeviceTSMOpType.unbind.rawValue:
            guard let node = vdevice.device.node else { throw .invalidArgument }
            kernel.pciTSM.unbind(node)
        default:
            throw .invalidArgument
        }
        try ucmd.respond()
        return 0
    }

    /// IOMMU_VDEVICE_TSM_REQ (spec 4.2 v5, 4.3 revised), the guest-request tunnel.
    ///
    /// Revised order: `tvm_arch` ∉ {1,2,3} → `EINVAL`; (op, arch) not allowed by the profile →
    /// `EINVAL`; VDEVICE lookup → `ENOENT`; kernel `tsm_code = 0`; device not PCI → `EINVAL`;
    /// pci-tsm (arch, op again → `EINVAL`; read lock → `EINTR`; no context / not link → `ENXIO`;
    /// DSM mutex → `EINTR`; no TDI → `ENXIO`); the driver. Then **always** (success or failure
    /// after the lookup) write back `min(size, 48)` bytes carrying `tsm_code`; a failed write-back
    /// → `EFAULT`, overriding the residue or the driver's errno.
    ///
    /// v5 order: `__reserved != 0` → `EOPNOTSUPP`; `scope > 3` → `EINVAL`; lookup → `ENOENT`;
    /// not PCI → `EINVAL`; pci-tsm (`scope > 1` → `EINVAL`; then as above) with no `tsm_code`;
    /// no write-back. The reply's base layout (v5 + `tsm_code`) runs the v5 checks and the revised
    /// write-back (EMU-KERNEL-8).
    ///
    /// Returns the residue (spec 4.4); a residue above `Int32.max` → `EOVERFLOW` (EMU-KERNEL-9:
    /// the kernel would return it through an `int`, spec 8 item 8).
    static let vdeviceTSMReq: IOMMUFDHandler = { kernel, context, ucmd throws(Errno) in
        let fields = kernel.pciTSM.requestFields
        let selector = ucmd.u32(fields.selector)
        var tvmArch: UInt32? = nil
        if fields.hasOpAndArch {
            let arch = ucmd.u32(fields.tvmArch)
            guard TVMArch(rawValue: arch) != nil else { throw .invalidArgument }
            guard fields.isAllowed(op: selector, arch: arch) else { throw .invalidArgument }
            tvmArch = arch
        } else {
            guard ucmd.u32(fields.reserved) == 0 else { throw .notSupported }
            guard selector <= TSMReqScope.pciLast.rawValue else { throw .invalidArgument }
        }
        let object = try context.lookup(ucmd.u32(fields.vdeviceID), .vdevice)
        defer { context.release(object) }
        let vdevice = unsafeDowncast(object, to: VDeviceObject.self)
        let writesBack = fields.tsmCode >= 0
        var request = TSMGuestRequest(
            op: selector, tvmArch: tvmArch,
            request: .user(ucmd.u64(fields.reqUptr)), requestLength: Int(ucmd.u32(fields.reqLen)),
            response: .user(ucmd.u64(fields.respUptr)), responseLength: Int(ucmd.u32(fields.respLen)),
            tsmCode: writesBack ? 0 : nil, memory: ucmd.memory)
        var failure: Errno? = nil
        var residue = 0
        // The node is borrowed (no retain): the vDEVICE's `let device` and the device's
        // `let node` hold it strongly, and this lookup's reference holds the vDEVICE until the
        // deferred release, after the call.
        if let node = vdevice.device.borrowedNode {
            let outcome = node._withUnsafeGuaranteedRef { node -> Result<Int, Errno> in
                Result { () throws(Errno) -> Int in
                    try kernel.pciTSM.guestRequest(node, &request, signalPending: ucmd.signalPending)
                }
            }
            switch outcome {
            case .success(let value): residue = value
            case .failure(let error): failure = error
            }
        } else {
            failure = .invalidArgument
        }
        if writesBack {
            ucmd.setU64(fields.tsmCode, request.tsmCode ?? 0)
            try ucmd.respond()
        }
        if let failure { throw failure }
        guard residue >= 0, residue <= Int(Int32.max) else { throw .overflow }
        return Int32(residue)
    }
}
