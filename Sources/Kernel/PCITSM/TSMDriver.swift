import SystemPackage

/// The VM a TDI is bound to: the kernel's `struct kvm *` taken from the VM file (spec 1.5, 6.7).
/// Opaque; two handles are the same VM when equal.
public struct VMHandle: Hashable, Sendable, CustomStringConvertible {
    /// A number unique per simulated kernel.
    public let id: Int
    /// Creates a handle (the kernel creates them for `KVM_CREATE_VM`; tests may make their own).
    public init(id: Int) { self.id = id }
    /// `vmN`, N the VM's id, as transcripts print it.
    public var description: String { "vm\(id)" }
}

/// What a link TSM driver gets about a function it manages: the function, its DSM, the owning TSM
/// and the driver's own data returned by `probe` (the driver's wrapper of `struct pci_tsm`).
public struct PCITSMLinkContext: Sendable {
    /// The function this context belongs to (`pci_tsm.pdev`).
    public let function: KernelPCIFunction
    /// The function's DSM (`pci_tsm.dsm_dev`); equal to `function` for the DSM's own context.
    public let dsm: KernelPCIFunction
    /// The TSM that owns the context (`pci_tsm.tsm_dev`).
    public let tsm: TSMDevice
    /// What the driver's `probe` returned for this function.
    public let driverData: (any Sendable)?
}

/// A TEE Device Interface bound to a VM: the kernel's `struct pci_tdi` (spec 6.1, 6.7), built by
/// the driver's `bind` through this constructor (`pci_tsm_tdi_constructor`: no validation) and
/// kept by pci-tsm in exactly one place, the function's context, until `unbind`.
public final class PCITDI: Sendable {
    /// The function the TDI is on (`pdev`).
    public let function: KernelPCIFunction
    /// The VM it is bound to (`kvm`).
    public let vm: VMHandle
    /// The TDI id given at bind: the vDEVICE `virt_id`, truncated to 32 bits (spec 3 notes).
    public let tdiID: UInt32
    /// The driver's per-TDI state (its wrapper of `struct pci_tdi`).
    public let driverData: (any Sendable)?

    /// Creates a TDI (`pci_tsm_tdi_constructor(pdev, tdi, kvm, tdi_id)`).
    public init(function: KernelPCIFunction, vm: VMHandle, tdiID: UInt32, driverData: (any Sendable)? = nil) {
        self.function = function
        self.vm = vm
        self.tdiID = tdiID
        self.driverData = driverData
    }
}

/// The link-TSM half of `struct pci_tsm_ops` (spec 6.1): the interface every host TSM driver
/// implements — the sample link TSM of spec 7.2 and, later, the CCA, SEV-TIO and TDX Connect
/// drivers.
///
/// Calling conventions (spec 6.4), which the kernel guarantees and drivers may rely on:
/// - `probe`, `remove`, `connect`, `disconnect` run with the global pci-tsm lock held for writing;
///   `connect` and `disconnect` also hold the DSM mutex.
/// - `bind`, `unbind`, `guestRequest` run with the global lock held for reading and the DSM mutex
///   of the function's DSM held, so calls for functions of one DSM are serialised, and calls for
///   different DSMs may run in parallel: driver state shared across DSMs needs its own lock.
/// - Every method is synchronous; errors are `Errno` values the kernel returns unchanged.
public protocol PCITSMLinkOps: AnyObject, Sendable {
    /// Allocates the driver's context for `function` (`link_ops.probe`), or returns `nil` when the
    /// driver cannot manage it (then `connect` fails `ENXIO`, and a dependent function simply gets
    /// no context). The kernel has already run the core constructor checks (a DSM needs a CMA DOE
    /// mailbox, `ENODEV`; a function needs a DSM, `ENXIO`, spec 6.2), so `probe` sees only
    /// functions that passed them. `isDSM` tells whether the context is the DSM's own.
    ///
    /// - Returns: `.some(data)` (data may be `nil`) to create a context, `.none` to refuse.
    func probe(tsm: TSMDevice, function: KernelPCIFunction, isDSM: Bool) -> PCITSMProbeResult

    /// Frees the driver's context of a function (`link_ops.remove`).
    func remove(_ context: PCITSMLinkContext)

    /// Establishes the secure link with the DSM (`link_ops.connect`): SPDM session, IDE streams.
    /// - Throws: the errno `connect` returns (the context is then discarded).
    func connect(_ context: PCITSMLinkContext) throws(Errno)

    /// Tears down the link (`link_ops.disconnect`). Every TDI of the DSM has been unbound and every
    /// dependent function's context removed before this runs.
    func disconnect(_ context: PCITSMLinkContext)

    /// Creates a TDI for the function, bound to `vm` (`link_ops.bind`).
    /// - Throws: the errno of the failure (e.g. `ENOMEM`); nothing is stored then.
    func bind(_ context: PCITSMLinkContext, vm: VMHandle, tdiID: UInt32) throws(Errno) -> PCITDI

    /// Destroys a TDI made by `bind` (`link_ops.unbind`). Cannot fail.
    func unbind(_ tdi: PCITDI)

    /// Serves a guest request for a bound TDI (`link_ops.guest_req`, spec 4.2 step 12 / 4.3
    /// step 13). Read the request and write the response through `request` (sockptr semantics:
    /// user pointers resolve in the caller's address space; a fault is `EFAULT`).
    ///
    /// - Returns: the residue (spec 4.4): bytes of the response buffer not filled, or, with no
    ///   response buffer, bytes of the request not consumed; 0 when all was used.
    /// - Throws: the errno to return; `request.tsmCode` is written back either way (revised uAPI).
    func guestRequest(_ tdi: PCITDI, _ request: inout TSMGuestRequest) throws(Errno) -> Int
}

/// The result of ``PCITSMLinkOps/probe(tsm:function:isDSM:)``.
public enum PCITSMProbeResult: Sendable {
    /// Create a context carrying this driver data.
    case context((any Sendable)?)
    /// No context (the kernel's `probe` returning NULL).
    case refuse
}

/// The devsec half of `struct pci_tsm_ops` (spec 6.1, 7.3): a guest-side TSM that locks a
/// function's security state. In the host model it only matters that a function locked by a devsec
/// TSM has a context that is not a link context, so host bind and guest requests fail `ENXIO`.
public protocol PCITSMDevsecOps: AnyObject, Sendable {
    /// Builds a devsec context for `function` (`devsec_ops.lock`); `nil` refuses (`ENXIO`).
    func lock(tsm: TSMDevice, function: KernelPCIFunction) -> PCITSMProbeResult
    /// Frees it (`devsec_ops.unlock`).
    func unlock(function: KernelPCIFunction)
}

/// Which group of ops a TSM implements (rev-K `pci_mode`: `link` or `devsec`).
public enum TSMKind: String, Sendable, Hashable {
    /// A host link TSM (platform TSM managing SPDM/IDE with DSMs).
    case link
    /// A guest devsec TSM.
    case devsec
}

/// A registered TSM device (`struct tsm_dev`, spec 5.1): `/sys/class/tsm/tsmN`.
public final class TSMDevice: Sendable, Hashable, CustomStringConvertible {
    /// The IDA id, first is 0.
    public let id: Int
    /// `link` or `devsec`.
    public let kind: TSMKind
    let linkOps: (any PCITSMLinkOps)?
    let devsecOps: (any PCITSMDevsecOps)?

    init(id: Int, link: (any PCITSMLinkOps)?, devsec: (any PCITSMDevsecOps)?) {
        self.id = id
        self.linkOps = link
        self.devsecOps = devsec
        self.kind = link != nil ? .link : .devsec
    }

    /// The device name, `tsm<id>`.
    public var name: String { "tsm\(id)" }
    /// The TSM's device name, `tsmN` (tsm-core, spec 5.1).
    public var description: String { name }

    /// Identity: two values are equal only if they are the same registered TSM device.
    public static func == (a: TSMDevice, b: TSMDevice) -> Bool { a === b }
    /// Hashes the object identity, matching `==`.
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// A pointer as the TSM driver sees it (`sockptr_t`): a user address in the calling process, or
/// a kernel buffer (requests the kernel itself originates, e.g. the sample's `tsm_request` hook).
public enum SockPtr: Sendable {
    /// A user virtual address.
    case user(UInt64)
    /// A kernel buffer.
    case kernel(KernelBuffer)

    /// True for a user pointer (`!sockptr.is_kernel`).
    public var isUser: Bool {
        if case .user = self { return true }
        return false
    }
}

/// A kernel-side byte buffer a driver can read and fill (the kernel half of ``SockPtr``).
public final class KernelBuffer: @unchecked Sendable {
    // @unchecked: a kernel buffer belongs to one in-flight request; the request's caller hands it
    // to exactly one driver call at a time.
    /// The bytes.
    public var bytes: [UInt8]
    /// Creates a buffer holding `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
}

/// The parameter block of a guest request as the TSM driver receives it (`struct
/// tsm_guest_req_info` plus the `tsm_code` pointer, spec 5.2).
///
/// Field meanings: `op` is the revised `op` (or the v5 `scope`, then `tvmArch` is `nil`); the
/// request is `requestLength` bytes at `request`; the response buffer has room for
/// `responseLength` bytes at `response`; `tsmCode` is `nil` when the caller passed no code pointer
/// (v5, spec 4.2), else starts at 0 and is what the driver leaves in it.
public struct TSMGuestRequest: Sendable {
    /// Revised: the `op`; v5: the `scope`.
    public var op: UInt32
    /// Revised: the `tvm_arch` (1 CCA, 2 SEV, 3 TDX); `nil` in the v5 form.
    public var tvmArch: UInt32?
    /// Where the request payload is.
    public var request: SockPtr
    /// Request length in bytes (`req_len`).
    public var requestLength: Int
    /// Where the response goes.
    public var response: SockPtr
    /// Response capacity in bytes (`resp_len`).
    public var responseLength: Int
    /// The firmware/TSM status for the guest; `nil` = no `tsm_code` pointer (v5).
    public var tsmCode: UInt64?
    /// The address space user pointers resolve in.
    public let memory: UserAddressSpace

    /// Creates a request block.
    public init(op: UInt32, tvmArch: UInt32?, request: SockPtr, requestLength: Int, response: SockPtr,
                responseLength: Int, tsmCode: UInt64?, memory: UserAddressSpace) {
        self.op = op
        self.tvmArch = tvmArch
        self.request = request
        self.requestLength = requestLength
        self.response = response
        self.responseLength = responseLength
        self.tsmCode = tsmCode
        self.memory = memory
    }

    /// "No response buffer" (spec 4.4, our reading): `resp_uptr == 0 || resp_len == 0`.
    public var hasResponseBuffer: Bool {
        if responseLength == 0 { return false }
        if case .user(let address) = response, address == 0 { return false }
        return true
    }

    /// Copies the first `buffer.count` request bytes into `buffer` (no allocation).
    /// - Throws: `EFAULT` if `buffer.count > requestLength` or the user range is unmapped.
    public func readRequest(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) {
        guard buffer.count <= requestLength else { throw .badAddress }
        switch request {
        case .user(let address): try memory.copyIn(from: address, into: buffer)
        case .kernel(let kernel):
            guard buffer.count <= kernel.bytes.count else { throw .badAddress }
            kernel.bytes.withUnsafeBytes { source in
                if let d = buffer.baseAddress, let s = source.baseAddress { d.copyMemory(from: s, byteCount: buffer.count) }
            }
        }
    }

    /// The whole request payload (`requestLength` bytes).
    /// - Throws: `EFAULT` when the user range is unmapped.
    public func readRequest() throws(Errno) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: requestLength)
        try bytes.withUnsafeMutableBytes { buffer in Result { () throws(Errno) in try readRequest(into: buffer) } }.get()
        return bytes
    }

    /// Writes `bytes` at the start of the response buffer.
    /// - Throws: `EFAULT` when `bytes.count > responseLength` or the user range is unmapped
    ///   (nothing written then).
    public func writeResponse(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
        guard bytes.count <= responseLength else { throw .badAddress }
        switch response {
        case .user(let address): try memory.copyOut(to: address, from: bytes)
        case .kernel(let kernel):
            let count = min(bytes.count, kernel.bytes.count)
            kernel.bytes.withUnsafeMutableBytes { destination in
                if let d = destination.baseAddress, let s = bytes.baseAddress { d.copyMemory(from: s, byteCount: count) }
            }
        }
    }

    /// Writes `bytes` at the start of the response buffer (see the raw-buffer form).
    public func writeResponse(_ bytes: [UInt8]) throws(Errno) {
        try bytes.withUnsafeBytes { buffer in Result { () throws(Errno) in try writeResponse(buffer) } }.get()
    }
}
