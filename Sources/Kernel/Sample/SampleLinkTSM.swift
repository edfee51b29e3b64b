import Synchronization
import Sync
import SystemPackage

/// The sample link TSM: the test TSM of spec 7.2 / 7.4 (after Linux samples/devsec/link_tsm.c),
/// a named test fixture, not a model of any architecture.
///
/// Behaviour:
/// - `probe`: in ``Mode/kernelSample`` only functions under the sample's host bridges (PCI domains
///   0x10000 and 0x10001) get a context, as in the kernel; in ``Mode/testing`` every function does.
/// - `connect`: takes one of ``Configuration/streamCount`` IDE stream IDs (default 4, spec 7.2);
///   none left → `EBUSY`. `disconnect` gives it back.
/// - `bind` allocates a TDI (only failure: the configurable ``Configuration/bindError``, e.g.
///   `ENOMEM`); `unbind` frees it.
/// - `guestRequest`:
///   - ``Mode/kernelSample``: a request whose input is a user pointer → `ENXIO` (every request
///     through iommufd); a kernel-originated one → 0, writing nothing.
///   - ``Mode/testing``: optional own-arch check (``Configuration/ownArch``; another `tvm_arch` →
///     `EINVAL`, as the CCA sketch in the thread does); then the response: the scripted bytes, or
///     an echo of the request, written at the start of the response buffer (at most its capacity;
///     a copy fault → `EFAULT`); `tsm_code` set to ``Configuration/tsmCode``; then the scripted
///     ``Configuration/error`` if any, else the residue: ``Configuration/residue`` if set, else
///     the bytes of the response buffer not filled (or, with no response buffer, 0: the whole
///     request counts as consumed).
///
/// Thread safety: configuration, stream pool and counters are behind one mutex; the guest-request
/// counter is an atomic, and a common configuration (testing mode, echo or no response, no
/// scripted residue, code or error) is also published as a small atomic code, so the
/// per-request path takes no lock then (else it takes the mutex once); it does not allocate.
public final class SampleLinkTSM: PCITSMLinkOps {
    /// How faithfully to follow the kernel sample.
    public enum Mode: String, Sendable, Hashable {
        /// Exactly the kernel sample: probe only under the devsec host bridges; user-pointer guest
        /// requests → `ENXIO`.
        case kernelSample = "kernel-sample"
        /// Useful for tests (spec 7.4 [emulator]): every function probes; guest requests answered.
        case testing
    }

    /// What the guest-request handler answers.
    public enum Response: Sendable, Hashable {
        /// Copy the request into the response buffer (up to the smaller length).
        case echo
        /// These bytes (truncated to the response capacity).
        case bytes([UInt8])
        /// Write nothing.
        case none
    }

    /// The fixture's knobs; change them at any time with ``configure(_:)``.
    public struct Configuration: Sendable {
        /// Faithful or useful.
        public var mode: Mode = .testing
        /// The `tvm_arch` this TSM accepts (1 CCA, 2 SEV, 3 TDX); `nil` accepts any.
        public var ownArch: UInt32? = nil
        /// The response policy.
        public var response: Response = .echo
        /// A fixed residue to return; `nil` computes it (see the type's documentation).
        public var residue: Int? = nil
        /// The `tsm_code` to report (ignored when the caller passed no code pointer, v5).
        public var tsmCode: UInt64 = 0
        /// An errno to return from every guest request after writing the response and code.
        public var error: Errno? = nil
        /// An errno for `bind` to fail with (the sample's only failure is `ENOMEM`).
        public var bindError: Errno? = nil
        /// Size of the IDE stream pool (spec 7.2: 4).
        public var streamCount: Int = 4

        /// The default configuration (testing mode, echo, no arch check, 4 streams).
        public init() {}
    }

    /// Counters and pool state, for tests.
    public struct Statistics: Sendable, Equatable {
        /// Stream IDs in use, one per connected DSM.
        public var streamsInUse: Int
        /// TDIs allocated by `bind` and not yet freed by `unbind`.
        public var liveTDIs: Int
        /// Contexts made by `probe` and not yet removed.
        public var liveContexts: Int
        /// Guest requests that reached the driver.
        public var guestRequests: Int
    }

    private struct State {
        var configuration: Configuration
        var streams: [PCIFunctionAddress: Int] = [:]
        var liveTDIs = 0
        var liveContexts = 0
    }

    private let state: Locked<State>
    /// Guest requests that reached the driver (``Statistics/guestRequests``): an atomic, so
    /// counting a request takes no lock.
    private let guestRequestCount = Atomic<Int>(0)
    /// The common configurations (testing mode; echo or no response; no residue, `tsm_code` 0, no
    /// error; any or one own arch) as a ``RequestPlan`` code, 0 for any other: written by `init`
    /// and ``configure(_:)`` with the lock held, read by a guest request without it.
    private let fastPlan: Atomic<UInt8>

    /// Creates the fixture with `configuration`.
    public init(_ configuration: Configuration = Configuration()) {
        fastPlan = Atomic(RequestPlan.code(of: configuration))
        state = Locked(State(configuration: configuration))
    }

    /// Creates the fixture in `mode` with default knobs.
    public convenience init(mode: Mode) {
        var configuration = Configuration()
        configuration.mode = mode
        self.init(configuration)
    }

    /// Changes the configuration.
    public func configure(_ change: (inout Configuration) -> Void) {
        state.withLock { state in
            change(&state.configuration)
            fastPlan.store(RequestPlan.code(of: state.configuration), ordering: .releasing)
        }
    }

    /// The current configuration.
    public var configuration: Configuration { state.withLock { $0.configuration } }

    /// Pool and object counters.
    public var statistics: Statistics {
        state.withLock {
            Statistics(streamsInUse: $0.streams.count, liveTDIs: $0.liveTDIs,
                       liveContexts: $0.liveContexts, guestRequests: guestRequestCount.load(ordering: .relaxed))
        }
    }

    /// Stream ID held by a connected DSM, if any.
    public func stream(of dsm: PCIFunctionAddress) -> Int? { state.withLock { $0.streams[dsm] } }

    // MARK: PCITSMLinkOps

    /// `probe` (spec 7.2): in `kernelSample` mode only functions under the devsec host bridges (PCI domains 0x10000 and 0x10001) get a context (others: refused, so `connect` fails `ENXIO`); otherwise every function does.
    public func probe(tsm: TSMDevice, function: KernelPCIFunction, isDSM: Bool) -> PCITSMProbeResult {
        state.withLock { state in
            if state.configuration.mode == .kernelSample {
                let domain = function.address.domain
                guard domain == 0x10000 || domain == 0x10001 else { return .refuse }
            }
            state.liveContexts += 1
            return .context(nil)
        }
    }

    /// `remove`: frees the context made by ``probe(tsm:function:isDSM:)``.
    public func remove(_ context: PCITSMLinkContext) {
        state.withLock { $0.liveContexts -= 1 }
    }

    /// `connect` (spec 7.2): takes the lowest free of `streamCount` (default 4) IDE stream IDs for the DSM; none free → `EBUSY`, nothing changed.
    public func connect(_ context: PCITSMLinkContext) throws(Errno) {
        try state.withLock { state throws(Errno) in
            let used = Set(state.streams.values)
            guard let id = (0..<max(0, state.configuration.streamCount)).first(where: { !used.contains($0) }) else {
                throw .resourceBusy
            }
            state.streams[context.dsm.address] = id
        }
    }

    /// `disconnect` (spec 7.2): releases the DSM's IDE stream ID.
    public func disconnect(_ context: PCITSMLinkContext) {
        state.withLock { _ = $0.streams.removeValue(forKey: context.dsm.address) }
    }

    /// `bind` (spec 7.2): allocates a TDI for (function, VM, `tdiID`); fails only with the configured `bindError` (the kernel sample's only failure is `ENOMEM`).
    public func bind(_ context: PCITSMLinkContext, vm: VMHandle, tdiID: UInt32) throws(Errno) -> PCITDI {
        try state.withLock { state throws(Errno) in
            if let error = state.configuration.bindError { throw error }
            state.liveTDIs += 1
        }
        return PCITDI(function: context.function, vm: vm, tdiID: tdiID)
    }

    /// `unbind` (spec 7.2): frees the TDI made by `bind`.
    public func unbind(_ tdi: PCITDI) {
        state.withLock { $0.liveTDIs -= 1 }
    }

    /// `guest_req` (spec 7.2, 7.4): in `kernelSample` mode a user-pointer request → `ENXIO`; otherwise the configured own-arch check (`EINVAL`), error, response bytes (written to the response buffer), `tsm_code` and residue (bytes; returned as the ioctl value).
    public func guestRequest(_ tdi: PCITDI, _ request: inout TSMGuestRequest) throws(Errno) -> Int {
        guestRequestCount.wrappingAdd(1, ordering: .relaxed)
        // A common configuration is one atomic load; any other is read under the lock, and only
        // the knobs this call needs leave it (plain values, plus the scripted bytes if any).
        let code = fastPlan.load(ordering: .acquiring)
        let plan = code != 0
            ? RequestPlan(code: code)
            : state.withLock { state -> RequestPlan in RequestPlan(state.configuration) }
        if plan.kernelSample {
            guard !request.request.isUser else { throw .noSuchAddressOrDevice }
            return 0
        }
        if let own = plan.ownArch, let arch = request.tvmArch, arch != own {
            throw .invalidArgument
        }
        var written = 0
        if request.hasResponseBuffer {
            if let bytes = plan.bytes {
                let count = min(bytes.count, request.responseLength)
                try bytes.withUnsafeBytes { buffer in
                    Result { () throws(Errno) in try request.writeResponse(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) }
                }.get()
                written = count
            } else if plan.echo {
                let count = min(request.requestLength, request.responseLength)
                if case .user(let source) = request.request, case .user(let destination) = request.response {
                    try request.memory.copyWithin(from: source, to: destination, count: count)
                } else {
                    let bytes = try request.readRequest()
                    try request.writeResponse(Array(bytes.prefix(count)))
                }
                written = count
            }
        }
        if request.tsmCode != nil { request.tsmCode = plan.tsmCode }
        if let error = plan.error { throw error }
        if let residue = plan.residue { return residue }
        return request.hasResponseBuffer ? request.responseLength - written : 0
    }

    /// What one guest request needs of the ``Configuration``, taken under the lock.
    private struct RequestPlan {
        let kernelSample: Bool
        let ownArch: UInt32?
        let echo: Bool
        /// The scripted response (``Response/bytes(_:)``), nil otherwise.
        let bytes: [UInt8]?
        let residue: Int?
        let tsmCode: UInt64
        let error: Errno?

        /// A plan from a non-zero ``code(of:)``.
        @inline(__always)
        init(code: UInt8) {
            kernelSample = false
            let arch = UInt32(code >> 2)
            ownArch = arch == 0 ? nil : arch
            echo = code & 2 != 0
            bytes = nil
            residue = nil
            tsmCode = 0
            error = nil
        }

        /// The configuration as a code when it is a common one (bit 0 set; bit 1: echo, else no
        /// response; bits 2-3: own arch 1-3, 0 for any), else 0 (read it under the lock).
        static func code(of configuration: Configuration) -> UInt8 {
            guard configuration.mode == .testing, configuration.residue == nil, configuration.tsmCode == 0,
                  configuration.error == nil else { return 0 }
            var code: UInt8 = 1
            switch configuration.response {
            case .echo: code |= 2
            case .none: break
            case .bytes: return 0
            }
            if let arch = configuration.ownArch {
                guard (1...3).contains(arch) else { return 0 }
                code |= UInt8(arch) << 2
            }
            return code
        }

        @inline(__always)
        init(_ configuration: borrowing Configuration) {
            kernelSample = configuration.mode == .kernelSample
            ownArch = configuration.ownArch
            switch configuration.response {
            case .echo: echo = true; bytes = nil
            case .bytes(let scripted): echo = false; bytes = scripted
            case .none: echo = false; bytes = nil
            }
            residue = configuration.residue
            tsmCode = configuration.tsmCode
            error = configuration.error
        }
    }
}
