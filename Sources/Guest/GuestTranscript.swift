// The structured events of an acceptance flow: one per step, with the layers it crossed, what was
// sent, the result and the TDI state when known. `tsmctl assign` prints them as a transcript,
// JSON, a trace and a Mermaid diagram (issue 6 deliverable 3).
import SystemPackage
import TDISP
import UAPI
import Wire

/// One step of an acceptance flow as the guest saw it.
public struct GuestTranscriptEvent: Sendable, Equatable {
    /// A layer a step crosses, in the order of the transcript (guest → VMM → kernel →
    /// TSM → device and back).
    public enum Layer: String, Sendable, CaseIterable {
        /// The TVM (this agent).
        case guest
        /// The VMM (user space on the host).
        case vmm
        /// The host kernel (iommufd, pci-tsm, the TSM driver).
        case kernel
        /// The TSM firmware (RMM, PSP, TDX module).
        case tsm
        /// The device's DSM (TDISP).
        case device
    }

    /// How a step ended.
    public enum Status: String, Sendable {
        /// It succeeded.
        case ok
        /// The call failed (an errno, a firmware status, a TIO message status).
        case failed
        /// The guest checked what came back and refused it (evidence, MMIO range, state).
        case refused
    }

    /// 1-based position in the flow.
    public var index: Int
    /// The architecture of the flow.
    public var arch: TVMArch
    /// The step's name: the call or check, e.g. "RSI_VDEV_GET_INFO", "READ_OBJECT certificate chain",
    /// "verify certificate chain".
    public var step: String
    /// The layers crossed, outward; a local check is `[.guest]`.
    public var path: [Layer]
    /// The guest request op when the step is an `IOMMU_VDEVICE_TSM_REQ`.
    public var op: GuestRequestOp?
    /// What was sent, in words (fields and values).
    public var sent: String
    /// The request payload bytes (empty for a local step).
    public var request: [UInt8]
    /// The response bytes (empty when none).
    public var response: [UInt8]
    /// The result, in words.
    public var result: String
    /// The outcome.
    public var status: Status
    /// The errno of a failed host request.
    public var errno: Errno?
    /// `tsm_code` of a host request, or the firmware status of a direct TSM call.
    public var tsmCode: UInt64?
    /// The TDI's TDISP state when the step reveals it.
    public var tdiState: TDIState?

    /// Creates the value from its fields.
    public init(index: Int, arch: TVMArch, step: String, path: [Layer], op: GuestRequestOp? = nil, sent: String,
                request: [UInt8] = [], response: [UInt8] = [], result: String, status: Status, errno: Errno? = nil,
                tsmCode: UInt64? = nil, tdiState: TDIState? = nil) {
        self.index = index
        self.arch = arch
        self.step = step
        self.path = path
        self.op = op
        self.sent = sent
        self.request = request
        self.response = response
        self.result = result
        self.status = status
        self.errno = errno
        self.tsmCode = tsmCode
        self.tdiState = tdiState
    }
}

/// Receives each event as the flow emits it (synchronously, in order).
public typealias GuestTranscriptObserver = @Sendable (GuestTranscriptEvent) -> Void

/// JSON form for `tsmctl assign --json` and traces: every field under its Swift name; `arch` as
/// "cca"/"sev"/"tdx", `path` as layer names, `op` as the uAPI enumerator name
/// (`TSM_REQ_READ_OBJECT`), `request`/`response` as lower-case hex, `errno` as the Linux name
/// (`EINVAL`), `tdiState` as the TDISP name (`CONFIG_LOCKED`); absent optionals are omitted.
extension GuestTranscriptEvent: Encodable {
    private enum CodingKeys: String, CodingKey {
        case index, arch, step, path, op, sent, request, response, result, status, errno, tsmCode, tdiState
    }

    /// Encodes the form described on the extension.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encode(arch.name, forKey: .arch)
        try container.encode(step, forKey: .step)
        try container.encode(path.map(\.rawValue), forKey: .path)
        try container.encodeIfPresent(op?.rawValue, forKey: .op)
        try container.encode(sent, forKey: .sent)
        try container.encode(Hex.encode(request), forKey: .request)
        try container.encode(Hex.encode(response), forKey: .response)
        try container.encode(result, forKey: .result)
        try container.encode(status.rawValue, forKey: .status)
        try container.encodeIfPresent(errno.map { ErrnoName.name(of: $0) }, forKey: .errno)
        try container.encodeIfPresent(tsmCode, forKey: .tsmCode)
        try container.encodeIfPresent(tdiState?.description, forKey: .tdiState)
    }
}
