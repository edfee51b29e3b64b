// The guest's direct calls into the firmware that the walks to RUN need next to the tunnelled
// guest requests (arch-backends.md §1.1, §1.5 for CCA's RSI; §3.1 for TDX's TDCALLs), addressed
// by kernel PCI address and VM handle so a VMM model or a script can make them.
import Firmware
import TDISP

extension ArchLinkTSM where Platform == CCAPlatform {
    /// RSI_VDEV_GET_INFO (0xC400019D) for the Realm `vm`: (RSI status, info). ERROR_INPUT (1) when
    /// the function has no VDEV of that Realm (or its PCI domain has no FUNCTION_ID).
    public func rsiVDEVGetInfo(_ function: PCIFunctionAddress, vm: VMHandle) -> (status: UInt64, info: CCAPlatform.RSIVDEVInfo?) {
        guard let id = function.functionID else { return (CCA.RSIStatus.errorInput.rawValue, nil) }
        return platform.rsiVDEVGetInfo(function: id, vm: firmwareVM(vm))
    }

    /// RSI_VDEV_VALIDATE_MAPPING (0xC400019F): the Realm accepts one range the host mapped with
    /// VALIDATE_MMIO. Returns the RSI status (0 SUCCESS, 1 ERROR_INPUT, 2 ERROR_STATE).
    public func rsiVDEVValidateMapping(_ function: PCIFunctionAddress, vm: VMHandle, gpaBase: UInt64, gpaTop: UInt64,
                                       paBase: UInt64) -> UInt64 {
        guard let id = function.functionID else { return CCA.RSIStatus.errorInput.rawValue }
        return platform.rsiVDEVValidateMapping(function: id, vm: firmwareVM(vm), gpaBase: gpaBase, gpaTop: gpaTop, paBase: paBase)
    }

    /// RSI_VDEV_DMA_ENABLE (0xC400019C) with the nonces the Realm read with RSI_VDEV_GET_INFO
    /// (`nil` = read them now, as a well-behaved Realm does). Returns the RSI status
    /// (ERROR_STATE when the VDEV is not STARTED, ERROR_INPUT for a stale nonce).
    public func rsiVDEVDMAEnable(_ function: PCIFunctionAddress, vm: VMHandle,
                                 nonces: (lock: UInt64, measurements: UInt64, report: UInt64)? = nil) -> UInt64 {
        guard let id = function.functionID else { return CCA.RSIStatus.errorInput.rawValue }
        let chosen: (lock: UInt64, measurements: UInt64, report: UInt64)
        if let nonces {
            chosen = nonces
        } else {
            let got = platform.rsiVDEVGetInfo(function: id, vm: firmwareVM(vm))
            guard let info = got.info else { return got.status }
            chosen = (info.lockNonce, info.measurementsNonce, info.reportNonce)
        }
        return platform.rsiVDEVDMAEnable(function: id, vm: firmwareVM(vm), lockNonce: chosen.lock,
                                         measurementsNonce: chosen.measurements, reportNonce: chosen.report)
    }

    /// RSI_VDEV_DMA_DISABLE (0xC40001A4). Returns the RSI status.
    public func rsiVDEVDMADisable(_ function: PCIFunctionAddress, vm: VMHandle) -> UInt64 {
        guard let id = function.functionID else { return CCA.RSIStatus.errorInput.rawValue }
        return platform.rsiVDEVDMADisable(function: id, vm: firmwareVM(vm))
    }

    /// The RMM's VDEV of `function` (state, vdev_id, nonces, mappings, DMA), for assertions.
    public func vdevInfo(_ function: PCIFunctionAddress) -> CCAPlatform.VDEVInfo? {
        function.functionID.flatMap { platform.vdevInfo(function: $0) }
    }
}

extension ArchLinkTSM where Platform == SEVPlatform {
    /// The firmware tdi_id of `function`'s TDI (what TIO messages name under `tdiId64`).
    public func tdiID(_ function: PCIFunctionAddress) -> UInt64? {
        function.functionID.flatMap { platform.tdiID(function: $0) }
    }

    /// The msg_seqno the PSP expects next from the guest `vm` (FW-SEV-2: requests use last + 1).
    public func nextSequenceNumber(vm: VMHandle) -> UInt64 { platform.nextSequenceNumber(vm: firmwareVM(vm)) }

    /// The PSP's TDI of `function` (state, fence, validated pages, SDTE, tsm_enabled).
    public func tdiInfo(_ function: PCIFunctionAddress) -> SEVPlatform.TDIInfo? {
        function.functionID.flatMap { platform.tdiInfo(function: $0) }
    }
}

extension ArchLinkTSM where Platform == TDXPlatform {
    /// TDG.TDI.RD (leaf 67): `field` 2 = TDISP state, 5 = bind session id. Returns (TDX status, value).
    public func tdgTDIRead(_ function: PCIFunctionAddress, vm: VMHandle, field: UInt64) -> (status: UInt64, value: UInt64) {
        guard let id = function.functionID else { return (TDX.Status.tdiNotPresent, 0) }
        return platform.tdgTDIRead(function: id, vm: firmwareVM(vm), field: field)
    }

    /// TDG.TDI.START (leaf 68) with `bindSessionID` (`nil` = the current session, read with
    /// TDG.TDI.RD as the guest does). Returns the TDX status.
    public func tdgTDIStart(_ function: PCIFunctionAddress, vm: VMHandle, bindSessionID: UInt64? = nil) -> UInt64 {
        guard let id = function.functionID else { return TDX.Status.tdiNotPresent }
        let session: UInt64
        if let bindSessionID {
            session = bindSessionID
        } else {
            let read = platform.tdgTDIRead(function: id, vm: firmwareVM(vm), field: TDX.TDIField.bindSessionID.rawValue)
            guard read.status == 0 else { return read.status }
            session = read.value
        }
        return platform.tdgTDIStart(function: id, vm: firmwareVM(vm), bindSessionID: session)
    }

    /// TDG.MMIO.ACCEPT (leaf 71) of the 4 KiB page at `gpa`. Returns the TDX status.
    public func tdgMMIOAccept(_ function: PCIFunctionAddress, vm: VMHandle, gpa: UInt64) -> UInt64 {
        guard let id = function.functionID else { return TDX.Status.tdiNotPresent }
        return platform.tdgMMIOAccept(function: id, vm: firmwareVM(vm), gpa: gpa)
    }

    /// TDG.DMAR.ACCEPT (leaf 70). Returns the TDX status (RUN only).
    public func tdgDMARAccept(_ function: PCIFunctionAddress, vm: VMHandle) -> UInt64 {
        guard let id = function.functionID else { return TDX.Status.tdiNotPresent }
        return platform.tdgDMARAccept(function: id, vm: firmwareVM(vm))
    }

    /// The module's TDI of `function` (state, session, maps, accepted pages, DMAR).
    public func tdiInfo(_ function: PCIFunctionAddress) -> TDXPlatform.TDIInfo? {
        function.functionID.flatMap { platform.tdiInfo(function: $0) }
    }
}
