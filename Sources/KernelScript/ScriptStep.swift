/// One step of a script: one line of the JSON Lines file, typed.
///
/// The step kinds and their keys are documented in docs/script-format.md; ``ScriptParser``
/// builds steps from text and rejects unknown ops, unknown keys and ill-typed values with the
/// line number.
public struct ScriptStep: Sendable {
    /// 1-based line number in the script file.
    public var line: Int
    /// The `"name"` of the step (free text, printed back), if any.
    public var label: String?
    /// The `"why"` of the step: usually the spec section the step checks.
    public var why: String?
    /// What the step does.
    public var action: Action
    /// The `"expect"` of the step; nil means "must not fail" (no errno).
    public var expect: Expectation?

    /// The step kinds.
    public enum Action: Sendable {
        /// `comment`: does nothing; prints its text.
        case comment(String)
        /// `platform`: set-up of the fresh simulated kernel (must come before any other action).
        case platform(PlatformSpec)
        /// `open_iommufd`: open `/dev/iommu`; the fd is saved under `save`.
        case openIOMMUFD(save: String?)
        /// `close`: close a file descriptor (iommufd or VFIO device file).
        case close(fd: ScriptValue)
        /// `create_vm`: create a VM (KVM); the handle is saved under `save`.
        case createVM(save: String?)
        /// `vfio_open`: open the VFIO device file of a PCI function (`device` is its BDF).
        case vfioOpen(device: String, save: String?)
        /// `vfio_associate`: `KVM_DEV_VFIO_FILE_ADD` of a VFIO file to a VM's KVM VFIO device.
        case vfioAssociate(vfio: ScriptValue, vm: ScriptValue)
        /// `vfio_bind`: `VFIO_DEVICE_BIND_IOMMUFD`; `out_devid` is saved under `save`.
        case vfioBind(vfio: ScriptValue, iommufd: ScriptValue, save: String?)
        /// `connect`: write `tsm` (default `"tsm0"`) to the device's `tsm/connect` sysfs file;
        /// `signal_pending` makes the killable/interruptible waits fail with EINTR.
        case connect(device: String, input: String, signalPending: Bool)
        /// `disconnect`: write `tsm` (default `"tsm0"`) to the device's `tsm/disconnect`.
        case disconnect(device: String, input: String, signalPending: Bool)
        /// `devsec_lock`: the devsec TSM `tsm` (default `"tsm1"`) locks `device` (spec 7.3).
        case devsecLock(device: String, tsm: String)
        /// `sysfs_read`: read a `tsm/` attribute (`connect`, `bound`, `dsm`, `authenticated`)
        /// and compare with `expect_text`.
        case sysfsRead(device: String, attribute: String, expectText: String?)
        /// `buffer`: map a named user buffer of `size` bytes, optionally initialised from `hex`,
        /// optionally read-only.
        case buffer(name: String, size: Int, contents: [UInt8], readOnly: Bool)
        /// `protect`: make a buffer writable or read-only.
        case protect(buffer: String, writable: Bool)
        /// `hold_lock`: hold pci_tsm_rwsem (`global`) or a DSM mutex (`dsm` of `device`) until
        /// `release_lock`; the handle is saved under `save`.
        case holdLock(lock: String, device: String?, save: String?)
        /// `release_lock`: release a held lock.
        case releaseLock(ScriptValue)
        /// `check_buffer`: compare user memory with hex (same form as `expect_buffer`).
        case checkBuffer([BufferExpectation])
        /// `ioctl`: one `ioctl(fd, request, argument)`.
        case ioctl(IoctlSpec)
        /// `sample_tsm`: configure the sample link TSM's scripted `guest_req`.
        case sampleTSM(SampleTSMSpec)
        /// The architecture steps (`arch_platform`, `guest_request`, `guest_call`, `tdi_state`,
        /// `tdi_report`, `fault_plan`): ArchSteps.swift.
        case arch(ArchStep)
    }

    /// What the step's result must be.
    public enum Expectation: Sendable, Equatable, CustomStringConvertible {
        /// The call fails with this errno (its Linux name, e.g. `"EINVAL"`).
        case errno(String)
        /// The call returns exactly this non-negative value (`0`, or a residue).
        case value(UInt64)

        /// The Linux errno name, or the value in decimal (as printed in a step's `expected`).
        public var description: String {
            switch self {
            case let .errno(name): return name
            case let .value(value): return "\(value)"
            }
        }
    }
}

/// The `platform` step: which kernel to build.
public struct PlatformSpec: Sendable, Equatable {
    /// uAPI profile name (`revised`, `v5`, `rev-k`); nil = the default profile.
    public var profile: String?
    /// Which TSMs to register: `link` (the sample link TSM as tsm0), `devsec`, `link+devsec`
    /// (tsm0 link, tsm1 devsec), or `none`.
    public var tsm: String
    /// Devices: `"sample"` (the built-in devsec-like two-function device), or a path to an
    /// `lspci -vvv -xxxx` dump (relative paths are resolved against the script's folder).
    public var devices: [String]
    /// Whether the kernel is built with CONFIG_TSM (false: TSM ioctls give EOPNOTSUPP, spec 2.2).
    public var configTSM: Bool

    /// A `platform` step; the defaults are the step's (docs/script-format.md "platform"): default
    /// profile, the sample link TSM as tsm0, the built-in `sample` device, CONFIG_TSM on. Not
    /// validated here: an unknown profile or dump is a ``ScriptRunError`` when the kernel is built.
    public init(profile: String? = nil, tsm: String = "link", devices: [String] = ["sample"], configTSM: Bool = true) {
        self.profile = profile
        self.tsm = tsm
        self.devices = devices
        self.configTSM = configTSM
    }
}

/// The `ioctl` step.
public struct IoctlSpec: Sendable, Equatable {
    /// The fd; nil = the most recently opened iommufd.
    public var fd: ScriptValue?
    /// Kernel name of the command (`IOMMU_VDEVICE_TSM_REQ`): gives the request code and the
    /// struct layout in the platform's profile.
    public var command: String?
    /// An explicit request code, overriding the command's (to send a wrong code).
    public var request: ScriptValue?
    /// Struct fields by name, in the order given.
    public var fields: [FieldValue]
    /// Raw argument bytes (any length) instead of `fields`.
    public var raw: [UInt8]?
    /// Value of the `size` word (default: the struct size in the profile). The argument buffer
    /// is `max(size, struct size)` bytes, zero beyond the struct unless `tail` is given.
    public var size: ScriptValue?
    /// Bytes placed right after the struct (at offset = struct size), e.g. a non-zero tail.
    public var tail: [UInt8]
    /// Where the argument lives: nil = a fresh mapping; a value = this exact address (the bytes
    /// are written there first if it is inside a buffer and `fields`/`raw` are given).
    public var argument: ScriptValue?
    /// Whether a signal is pending for the caller (interruptible waits return EINTR).
    public var signalPending: Bool
    /// Whether the fresh argument mapping is made read-only after the struct is written (the
    /// kernel's write-back then faults).
    public var readOnlyArgument: Bool
    /// `save`: variable name → output field name.
    public var save: [(name: String, field: String)]
    /// `expect_fields`: field name → value, read back from the argument after the call.
    public var expectFields: [FieldValue]
    /// `expect_buffer`: user memory checks after the call.
    public var expectBuffer: [BufferExpectation]

    /// Field-by-field equality (`save` compared by its names and fields: tuples are not `Equatable`).
    public static func == (lhs: IoctlSpec, rhs: IoctlSpec) -> Bool {
        lhs.fd == rhs.fd && lhs.command == rhs.command && lhs.request == rhs.request && lhs.fields == rhs.fields
            && lhs.raw == rhs.raw && lhs.size == rhs.size && lhs.tail == rhs.tail && lhs.argument == rhs.argument
            && lhs.signalPending == rhs.signalPending && lhs.readOnlyArgument == rhs.readOnlyArgument && lhs.save.map(\.name) == rhs.save.map(\.name)
            && lhs.save.map(\.field) == rhs.save.map(\.field) && lhs.expectFields == rhs.expectFields
            && lhs.expectBuffer == rhs.expectBuffer
    }
}

/// A struct field named in a step, with its value.
public struct FieldValue: Sendable, Equatable {
    /// The field's name in the uAPI header (`req_uptr`, `tvm_arch`, …).
    public var name: String
    /// Its value.
    public var value: ScriptValue

    /// A field `name` set to `value` (resolved when the step runs).
    public init(name: String, value: ScriptValue) {
        self.name = name
        self.value = value
    }
}

/// An `expect_buffer` entry: the bytes at `base` (a buffer name plus offset) must equal `bytes`.
public struct BufferExpectation: Sendable, Equatable {
    /// The buffer's name.
    public var buffer: String
    /// Offset into the buffer.
    public var offset: Int
    /// Expected bytes.
    public var bytes: [UInt8]

    /// Expects `bytes` at byte `offset` of the buffer called `buffer`; an unknown buffer or a range
    /// outside it is a ``ScriptRunError`` when the step runs.
    public init(buffer: String, offset: Int, bytes: [UInt8]) {
        self.buffer = buffer
        self.offset = offset
        self.bytes = bytes
    }
}

/// The `sample_tsm` step: how the sample link TSM answers `guest_req` from now on (spec 7.4).
public struct SampleTSMSpec: Sendable, Equatable {
    /// `"testing"` (useful for tests, the default) or `"kernel-sample"` (user-pointer requests
    /// → ENXIO, exactly as samples/devsec/link_tsm.c); nil = unchanged.
    public var mode: String?
    /// Response bytes written to `resp_uptr` (at most `resp_len` of them); `echo` = copy the
    /// request (the sample's default); nil = unchanged.
    public var response: SampleResponse?
    /// What the sample TSM answers with.
    public enum SampleResponse: Sendable, Equatable {
        /// Copy the request bytes into the response buffer.
        case echo
        /// These bytes.
        case bytes([UInt8])
    }
    /// Residue to return; nil = computed (resp_len − bytes written).
    public var residue: ScriptValue?
    /// `tsm_code` to report.
    public var tsmCode: ScriptValue?
    /// An errno the driver's `guest_req` returns instead of a residue (its Linux name; `"none"`
    /// clears it).
    public var errno: String?
    /// An errno the driver's `bind` returns (`"none"` clears it).
    public var bindErrno: String?
    /// Size of the IDE stream pool (spec 7.2: 4).
    public var streams: Int?
    /// The TSM's own `tvm_arch` (`cca`, `sev`, `tdx`, or a number); other arches → EINVAL.
    /// `"any"` switches the check off.
    public var arch: String?
}
