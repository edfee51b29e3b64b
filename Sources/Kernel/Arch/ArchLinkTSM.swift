// The three architecture TSM drivers of the simulated kernel: a link TSM (kernel-uapi.md §6.1
// `link_ops`) in front of each firmware model of the `Firmware` module (docs/firmware.md), so a
// guest request entering through iommufd reaches the firmware, and through it the DSM of the
// device, over TDISP. Spec: docs/spec/arch-backends.md §0, §4, §6.
import Device
import Firmware
import Synchronization
import Sync
import SystemPackage
import TDISP
import UAPI
import Wire

/// A link TSM driver for one architecture (`tvm_arch` CCA, SEV or TDX), as the simulated kernel
/// sees it: the `link_ops` of ``PCITSMLinkOps`` plus what a platform builder and `tsmctl script`
/// need (attach a device's DSM, install a fault plan, compare the firmware's TDI state with the
/// device's). Implemented by ``ArchLinkTSM``; the per-architecture names are ``CCALinkTSM``,
/// ``SEVLinkTSM`` and ``TDXLinkTSM``.
public protocol ArchTSMDriver: PCITSMLinkOps {
    /// The architecture: the only `tvm_arch` the driver accepts (others → `EINVAL`).
    var arch: TVMArch { get }
    /// The firmware/uAPI profile switches of arch-backends.md §6.4 the platform runs with.
    var firmwareProfile: FirmwareProfile { get }
    /// The firmware model behind the driver.
    var linkFirmware: any LinkTSMDriver { get }
    /// Makes `dsm` the device model answering TDISP for the DSM function at `address`, with the
    /// SPDM evidence the firmware caches at connect (arch-backends.md §1.3). Replaces an earlier
    /// attachment; takes effect at the next `connect`.
    func attach(dsm: DSM, at address: PCIFunctionAddress, evidence: DeviceEvidence)
    /// The device port of the DSM attached at `address` (TDISP message counter and message
    /// observer, ``DSMPort/observe(_:)``), if any.
    func port(at address: PCIFunctionAddress) -> DSMPort?
    /// Installs a fault plan in the firmware (docs/firmware.md "Fault injection"), resetting its
    /// counters; an empty plan removes every fault.
    func setFaultPlan(_ plan: FaultPlan)
    /// Every firmware call and TDISP request the firmware made, in order (`RMI_VDEV_LOCK`,
    /// `TDI_BIND`, `TDH.TDI.START`, `TDISP 0x84`, ...).
    var callLog: [String] { get }
    /// The firmware's view of the TDISP state of `function`'s TDI; nil when it has none.
    func firmwareTDIState(_ function: PCIFunctionAddress) -> TDIState?
    /// The firmware's VM value for a kernel VM (the `vm` its bind and guest calls take).
    func firmwareVM(_ vm: VMHandle) -> UInt64
}

/// One TDISP message crossing a ``DSMPort``, as its observer sees it (``DSMPort/observe(_:)``).
///
/// The bytes are exactly what crossed the port: a request as the firmware's TDISP requester sent
/// it (before the DSM parsed it) and the DSM's response as it came back (a TDISP_ERROR answer is
/// a response like any other). Decode them with `TDISPRequest(decoding:)` /
/// `TDISPResponse(decoding:)` (tdisp-spdm.md §2).
public struct TDISPMessageEvent: Sendable, Hashable {
    /// Which way a message crossed the port.
    public enum Direction: String, Sendable, Hashable {
        /// TSM → DSM: a request (MessageType ≥ 0x80).
        case request = "TSM→DSM"
        /// DSM → TSM: the response to the request before it.
        case response = "DSM→TSM"
    }

    /// Which way it went.
    public let direction: Direction
    /// The message as it crossed the port (16-byte TDISP header, then the payload).
    public let bytes: [UInt8]
    /// The PCI address of the DSM function the port is attached at.
    public let dsm: PCIFunctionAddress
    /// The TDI the message names: the INTERFACE_ID at bytes 4..<16 of the header
    /// (tdisp-spdm.md §2.1); nil when the message is shorter than the 16-byte header.
    public let interfaceID: InterfaceID?
    /// The MessageType byte (byte 1); nil for a message shorter than 2 bytes.
    public var messageType: TDISPMessageType? { bytes.count > 1 ? TDISPMessageType(rawValue: bytes[1]) : nil }

    /// An event for `bytes` crossing in `direction` at the DSM at `dsm`; the INTERFACE_ID is read
    /// from the header (never traps: a short message has none).
    public init(direction: Direction, bytes: [UInt8], dsm: PCIFunctionAddress) {
        self.direction = direction
        self.bytes = bytes
        self.dsm = dsm
        if bytes.count >= TDISPHeader.size {
            var reader = ByteReader(bytes, offset: 4)
            interfaceID = try? InterfaceID(from: &reader)
        } else {
            interfaceID = nil
        }
    }
}

/// The device side of a DSM as a firmware model reaches it: a ``Firmware/TDISPTransport`` over
/// the `Device` module's ``Device/DSM`` that counts the TDISP requests that reached the device,
/// so tests and scripts can assert "reached no device" (arch-backends.md §0: a rejected envelope
/// never gets past the driver), and shows each request and response to an optional observer
/// (``observe(_:)``: `tsmctl assign --trace`).
///
/// Thread safety: the counter is atomic and the observer sits behind a `Sync.Locked`; with no
/// observer an exchange costs one relaxed atomic load more than the DSM's own work (the lock is
/// not taken).
public final class DSMPort: TDISPTransport {
    /// A message observer: called on the exchanging thread, once for the request before the DSM
    /// sees it and once for the response after, in that order. It must not call back into the
    /// port's DSM from the same thread's exchange (the DSM's state lock is not held while it runs).
    public typealias Observer = @Sendable (TDISPMessageEvent) -> Void

    /// The device model.
    public let dsm: DSM
    /// The PCI address of the DSM function (the `dsm` of every ``TDISPMessageEvent``).
    public let address: PCIFunctionAddress
    private let count = Atomic<Int>(0)
    /// Fast path: whether an observer is set (read before taking `observer`'s lock).
    private let observed = Atomic<Bool>(false)
    private let observer = Locked<Observer?>(nil)

    /// Wraps `dsm`, the DSM function at `address`.
    public init(_ dsm: DSM, address: PCIFunctionAddress) {
        self.dsm = dsm
        self.address = address
    }

    /// TDISP requests delivered to the DSM so far (every request, answered or TDISP_ERROR).
    public var messages: Int { count.load(ordering: .relaxed) }

    /// Makes `observer` see every later request and response crossing the port (replacing an
    /// earlier one); nil removes it. Exchanges already running may or may not report to it.
    /// Never fails.
    public func observe(_ observer: Observer?) {
        self.observer.withLock { $0 = observer }
        observed.store(observer != nil, ordering: .releasing)
    }

    /// Delivers `request` to the DSM and returns its response (``Device/DSM/respond(_:)``),
    /// reporting both to the observer, if any. Never throws (the DSM answers every request,
    /// malformed ones with TDISP_ERROR).
    public func exchange(_ request: [UInt8]) throws -> [UInt8] {
        count.wrappingAdd(1, ordering: .relaxed)
        guard observed.load(ordering: .acquiring), let observer = observer.withLock({ $0 }) else {
            return dsm.respond(request)
        }
        observer(TDISPMessageEvent(direction: .request, bytes: request, dsm: address))
        let response = dsm.respond(request)
        observer(TDISPMessageEvent(direction: .response, bytes: response, dsm: address))
        return response
    }
}

/// The kernel's user address space is the firmware's ``Firmware/UserMemory`` as it is: its
/// `read`/`write` throw `EFAULT` when any byte is unmapped (or, for a write, read-only), which each
/// driver turns into its architecture's copy-fault errno (`EFAULT`; `EIO` for CCA's READ_OBJECT
/// copy-out, arch-backends.md §1.2).
extension UserAddressSpace: UserMemory {}

/// A host TSM driver for one architecture: the glue between pci-tsm's `link_ops` and a firmware
/// model (`Firmware.CCAPlatform`, `SEVPlatform`, `TDXPlatform`).
///
/// | link op | what the driver does |
/// |---|---|
/// | `probe` | a DSM function gets a context only when a device model is attached at its address (``attach(dsm:at:evidence:)``); any function needs a TDISP FUNCTION_ID (PCI domain ≤ 255) |
/// | `connect` | the firmware's link set-up (CCA PDEV, SEV DEV_CREATE/CONNECT, TDX SPDM/IDE) then TDISP version/capabilities with the DSM; no device → `ENXIO`; errors of the firmware |
/// | `disconnect` | the firmware's teardown (unbinds every TDI of the DSM first) |
/// | `bind` | the architecture's TDI creation and TDISP LOCK_INTERFACE + report fetch (CONFIG_LOCKED); `vm` → ``firmwareVM(_:)``, `tdiID` (the vDEVICE `virt_id`) → the guest-visible id |
/// | `unbind` | TDISP STOP_INTERFACE (CONFIG_UNLOCKED) and the TDI's destruction |
/// | `guest_req` | below |
///
/// `guest_req`, in order (arch-backends.md §1.2, §6.1-§6.3, docs/firmware.md "guest_req envelope"):
/// 1. v5 scope form (`tvm_arch` absent): SEV serves it with its scope API; CCA and TDX, which
///    implement only the op API, answer `EINVAL` (EMU-ARCH-3).
/// 2. the op is mapped from the kernel profile's numbering to arch-backends.md §0's by name
///    (rev-K's 1..4 are VALIDATE_MMIO..SEV_DISABLE_DMA);
/// 3. ``Firmware/FirmwareProfile/objectOpsTunnelled`` false: ops 1-3 → `EINVAL` before the firmware
///    (EMU-ARCH-2; the iommufd layer's own rejection is the `rev-k` uAPI profile);
/// 4. the firmware driver: own `tvm_arch` only (`EINVAL`, reaching no device), a kernel sockptr →
///    `EINVAL`, exact request length per op (`EINVAL`), copy-in fault → `EFAULT`, then the op.
///
/// `tsm_code` is what the architecture fills: CCA never writes it (0), SEV the PSP status
/// (SEV_RET_*), TDX the 64-bit module status (EMU-TDX); with no `tsm_code` pointer (v5) nothing
/// is written. The return value is the firmware's residue or errno, unchanged.
///
/// Thread safety: the attachment table is behind a `Sync.Locked` (pthread mutex, which the thread
/// sanitizer sees); the firmware models lock their own
/// state, so calls for different DSMs may run in parallel (kernel-uapi.md §6.4).
public final class ArchLinkTSM<Platform: LinkTSMDriver>: ArchTSMDriver {
    /// The firmware model (typed: CCA's RSI calls, TDX's TDCALLs, SEV's sequence numbers).
    public let platform: Platform
    /// The profile switches (arch-backends.md §6.4).
    public let firmwareProfile: FirmwareProfile
    /// The kernel's uAPI profile: its op numbering is mapped onto the firmware's by name.
    public let uapiProfile: UAPIProfile

    private struct Attached {
        var port: DSMPort
        var evidence: DeviceEvidence
    }
    private let attached = Locked<[PCIFunctionAddress: Attached]>([:])

    /// Creates the driver in front of `platform`.
    /// - Parameters:
    ///   - platform: the firmware model (its own profile is the one that governs the firmware).
    ///   - firmwareProfile: the switches; must be the profile `platform` was made with.
    ///   - uapiProfile: the kernel's uAPI profile (`kernel.profile`).
    public init(platform: Platform, firmwareProfile: FirmwareProfile, uapiProfile: UAPIProfile = .default) {
        self.platform = platform
        self.firmwareProfile = firmwareProfile
        self.uapiProfile = uapiProfile
    }

    /// The architecture (the firmware's).
    public var arch: TVMArch { platform.arch }
    /// The firmware model as the common protocol.
    public var linkFirmware: any LinkTSMDriver { platform }

    /// Makes `dsm` answer TDISP for the DSM function at `address` (wrapped in a fresh ``DSMPort``,
    /// message count 0) with `evidence` (certificate chain, measurements, VCA; EMU-ARCH-4) for the
    /// firmware to cache at the next `connect`. Replaces an earlier attachment at `address`. Never
    /// fails. Source: docs/arch.md "Drivers", arch-backends.md §1.3.
    public func attach(dsm: DSM, at address: PCIFunctionAddress, evidence: DeviceEvidence) {
        attached.withLock { $0[address] = Attached(port: DSMPort(dsm, address: address), evidence: evidence) }
    }

    /// The ``DSMPort`` attached at `address` by ``attach(dsm:at:evidence:)``; nil when none (such a
    /// DSM function is refused at `probe`, and `connect` answers `ENXIO`). Source: docs/arch.md "Drivers".
    public func port(at address: PCIFunctionAddress) -> DSMPort? { attached.withLock { $0[address]?.port } }

    /// Installs `plan` in the firmware model (docs/firmware.md "Fault injection": `fw#N`,
    /// `fw:NAME[#K]`, `tdisp:CODE[#K]`), resetting its counters; an empty plan removes every fault.
    /// Never fails. Script step: `fault_plan` (docs/script-format.md).
    public func setFaultPlan(_ plan: FaultPlan) { platform.setFaultPlan(plan) }

    /// The firmware's log, oldest first: one string per firmware call (`RMI_VDEV_LOCK`, `TDI_BIND`,
    /// `TDH.TDI.START`, ...) and per TDISP request it sent (`TDISP 0x84`). Printed by `guest_request`
    /// as `firmware_calls` (docs/script-format.md).
    public var callLog: [String] { platform.callLog }

    /// The firmware's view of the TDISP state of `function`'s TDI (TDISP 1.0 §11.1: CONFIG_UNLOCKED,
    /// CONFIG_LOCKED, RUN, ERROR); nil when the firmware has no TDI for it or the address has no TDISP
    /// FUNCTION_ID (PCI domain > 255). Script step: `tdi_state` `expect_firmware`.
    public func firmwareTDIState(_ function: PCIFunctionAddress) -> TDIState? {
        function.functionID.flatMap { platform.tdispState(function: $0) }
    }

    /// `UInt64(vm.id)`: the kernel's VM number is the firmware's Realm / guest / TD handle.
    public func firmwareVM(_ vm: VMHandle) -> UInt64 { UInt64(truncatingIfNeeded: vm.id) }

    // MARK: PCITSMLinkOps

    /// `link_ops.probe` (kernel-uapi.md §6.1, `pci-tsm.c`): ``PCITSMProbeResult/refuse`` when the
    /// function has no TDISP FUNCTION_ID (PCI domain > 255), or is a DSM (`isDSM`) with no device model
    /// attached at its address; otherwise a context with no private data. Never touches the firmware.
    public func probe(tsm: TSMDevice, function: KernelPCIFunction, isDSM: Bool) -> PCITSMProbeResult {
        guard function.address.functionID != nil else { return .refuse }
        if isDSM && port(at: function.address) == nil { return .refuse }
        return .context(nil)
    }

    /// `link_ops.remove` (kernel-uapi.md §6.1): nothing to free (the context holds no private data);
    /// `disconnect` has already torn the link down.
    public func remove(_ context: PCITSMLinkContext) {}

    /// `link_ops.connect` (kernel-uapi.md §6.1): the firmware's link set-up (CCA PDEV create and
    /// communicate, SEV DEV_CREATE/DEV_CONNECT, TDX SPDM/IDE/IOMMU set-up) then TDISP GET_VERSION (0x81)
    /// and GET_CAPABILITIES (0x82) with the DSM.
    /// - Throws: `ENXIO` when no device model is attached at the DSM's address or it has no TDISP
    ///   FUNCTION_ID; otherwise the firmware's errno (docs/firmware.md), with nothing changed.
    public func connect(_ context: PCITSMLinkContext) throws(Errno) {
        guard let dsm = context.dsm.address.functionID,
              let device = attached.withLock({ $0[context.dsm.address] }) else { throw .noSuchAddressOrDevice }
        try platform.connect(dsm: dsm, transport: device.port, evidence: device.evidence)
    }

    /// `link_ops.disconnect` (kernel-uapi.md §6.1): the firmware unbinds every TDI of the DSM
    /// (TDISP STOP_INTERFACE 0x87) then tears the link down. Cannot fail (the kernel's disconnect path
    /// has no error return); a DSM with no FUNCTION_ID is a no-op.
    public func disconnect(_ context: PCITSMLinkContext) {
        guard let dsm = context.dsm.address.functionID else { return }
        platform.disconnect(dsm: dsm)
    }

    /// `link_ops.bind` (kernel-uapi.md §6.1): the architecture's TDI creation then TDISP LOCK_INTERFACE
    /// (0x83) and GET_DEVICE_INTERFACE_REPORT (0x84), leaving the TDI CONFIG_LOCKED. `vm` reaches the
    /// firmware as ``firmwareVM(_:)``, `tdiID` (the vDEVICE `virt_id`, truncated to 32 bits) as the
    /// guest-visible TDI id (EMU-ARCH-5).
    /// - Returns: the ``PCITDI`` pci-tsm records for the function.
    /// - Throws: `ENXIO` when the function or its DSM has no TDISP FUNCTION_ID; otherwise the
    ///   firmware's errno (docs/firmware.md), with nothing changed.
    public func bind(_ context: PCITSMLinkContext, vm: VMHandle, tdiID: UInt32) throws(Errno) -> PCITDI {
        guard let function = context.function.address.functionID, let dsm = context.dsm.address.functionID else {
            throw .noSuchAddressOrDevice
        }
        try platform.bind(function: function, dsm: dsm, vm: firmwareVM(vm), guestID: tdiID)
        return PCITDI(function: context.function, vm: vm, tdiID: tdiID)
    }

    /// `link_ops.unbind` (kernel-uapi.md §6.1): TDISP STOP_INTERFACE (0x87, the DSM goes to
    /// CONFIG_UNLOCKED) and the firmware's TDI destruction. Cannot fail; a function with no
    /// FUNCTION_ID is a no-op.
    public func unbind(_ tdi: PCITDI) {
        guard let function = tdi.function.address.functionID else { return }
        platform.unbind(function: function)
    }

    /// `link_ops.guest_req` (kernel-uapi.md §6.1; arch-backends.md §0, §1.2, §6.1-§6.3), in the order
    /// of the type's documentation: v5 scope form (SEV only, EMU-ARCH-3), op mapped by name from the
    /// kernel profile to arch-backends.md §0, EMU-ARCH-2 object-op gate, then the firmware driver.
    /// - Parameter request: the envelope (`op`, `tvm_arch`, request/response sockptrs and lengths in
    ///   bytes, user memory); its `tsmCode` is set to the firmware's code (CCA 0, SEV PSP status,
    ///   TDX 64-bit module status) when the caller passed a `tsm_code` pointer and the firmware was
    ///   reached, also when it then fails; untouched on the driver's own rejections.
    /// - Returns: the firmware's residue (bytes of the response buffer not written).
    /// - Throws: `ENXIO` (function without FUNCTION_ID, or no TDI); `EINVAL` (v5 form on CCA/TDX,
    ///   object op with `objectOpsTunnelled` false, foreign `tvm_arch`, kernel sockptr, op not served,
    ///   wrong `req_len`); `EFAULT` (copy-in/out fault; `EIO` for CCA's READ_OBJECT copy-out); any
    ///   other errno of the firmware model.
    public func guestRequest(_ tdi: PCITDI, _ request: inout TSMGuestRequest) throws(Errno) -> Int {
        guard let function = tdi.function.address.functionID else { throw .noSuchAddressOrDevice }
        var envelope = GuestRequest(op: 0, tvmArch: request.tvmArch ?? 0, requestAddress: 0,
                                    requestLength: UInt32(clamping: request.requestLength),
                                    responseAddress: 0, responseLength: UInt32(clamping: request.responseLength),
                                    isUserPointer: request.request.isUser)
        if case .user(let address) = request.request { envelope.requestAddress = address }
        if case .user(let address) = request.response { envelope.responseAddress = address }
        let memory = request.memory
        let outcome: GuestRequestOutcome
        if request.tvmArch == nil {
            // v5: `op` is the scope. Only SEV's driver has a scope form (EMU-ARCH-3).
            guard let sev = platform as? SEVPlatform else { throw .invalidArgument }
            envelope.tvmArch = TVMArch.sev.rawValue
            outcome = sev.scopeRequest(function: function, scope: request.op, envelope, memory: memory)
        } else {
            // Map the profile's op numbering onto §0's; an op the profile does not number is 0,
            // which every firmware driver refuses (EINVAL). The kernel has already refused it.
            let op = uapiProfile.op(rawValue: request.op).map(GuestOp.init)
            envelope.op = op?.rawValue ?? 0
            if let op, op.isObjectOp, !firmwareProfile.objectOpsTunnelled, request.tvmArch == arch.rawValue {
                throw .invalidArgument  // EMU-ARCH-2
            }
            outcome = platform.guestRequest(function: function, envelope, memory: memory)
        }
        if request.tsmCode != nil { request.tsmCode = outcome.tsmCode }
        if let errno = outcome.errno { throw errno }
        return outcome.residue
    }
}

/// The Arm CCA host driver (`arm-cca.c` `cca_tsm_guest_req`) over the RMM model.
public typealias CCALinkTSM = ArchLinkTSM<CCAPlatform>
/// The AMD SEV-TIO host driver (`sev-dev-tsm.c`) over the PSP model.
public typealias SEVLinkTSM = ArchLinkTSM<SEVPlatform>
/// The Intel TDX Connect host driver (EMU-TDX-2) over the TDX module model.
public typealias TDXLinkTSM = ArchLinkTSM<TDXPlatform>

/// Builds the driver of an architecture.
public enum ArchTSM {
    /// A fresh driver and firmware model for `arch` with `profile` (default: the spec's defaults
    /// for `arch`, arch-backends.md §6.4) on a kernel running `uapiProfile`.
    public static func make(_ arch: TVMArch, profile: FirmwareProfile? = nil,
                            uapiProfile: UAPIProfile = .default) -> any ArchTSMDriver {
        let chosen = profile ?? .defaults(for: arch)
        switch arch {
        case .cca: return CCALinkTSM(platform: CCAPlatform(profile: chosen), firmwareProfile: chosen, uapiProfile: uapiProfile)
        case .sev: return SEVLinkTSM(platform: SEVPlatform(profile: chosen), firmwareProfile: chosen, uapiProfile: uapiProfile)
        case .tdx: return TDXLinkTSM(platform: TDXPlatform(profile: chosen), firmwareProfile: chosen, uapiProfile: uapiProfile)
        }
    }
}
