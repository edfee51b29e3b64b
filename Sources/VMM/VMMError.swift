import SystemPackage
import UAPI

/// Which call of the VMM library failed: the step carried by every ``VMMError``.
///
/// An iommufd or VFIO command step is spelled as the kernel macro (`"IOMMU_VDEVICE_TSM_REQ"`,
/// `"VFIO_DEVICE_BIND_IOMMUFD"`); the other steps name the system call or the local check.
/// The set is open: new steps do not break clients that compare with the ones they know.
public struct VMMStep: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The step's name, e.g. `"IOMMU_IOAS_ALLOC"` or `"open iommufd"`.
    public let rawValue: String

    /// A step named `rawValue`.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// The ioctl `id` (its kernel macro name).
    public static func command(_ id: CommandID) -> VMMStep { VMMStep(rawValue: id.kernelName) }

    /// `open(2)` of the iommufd character device (`/dev/iommu`).
    public static let openIOMMUFD = VMMStep(rawValue: "open iommufd")
    /// `close(2)` of the iommufd file.
    public static let closeIOMMUFD = VMMStep(rawValue: "close iommufd")
    /// `open(2)` of a VFIO device cdev (`/dev/vfio/devices/vfioN`).
    public static let openVFIODevice = VMMStep(rawValue: "open VFIO device")
    /// `close(2)` of a VFIO device cdev (destroys its iommufd DEVICE object, spec 1.5).
    public static let closeVFIODevice = VMMStep(rawValue: "close VFIO device")
    /// The backend's check that the running kernel fits the uAPI profile (spec 2.1
    /// "Mainline today"), done before the iommufd is opened.
    public static let checkKernel = VMMStep(rawValue: "check kernel")
    /// `KVM_DEV_VFIO_FILE_ADD`: associating a VFIO file with a VM (Appendix B step 2).
    public static let kvmVFIOFileAdd = VMMStep(rawValue: "KVM_DEV_VFIO_FILE_ADD")
    /// `open(2)` of the KVM device (`/dev/kvm`).
    public static let openKVM = VMMStep(rawValue: "open /dev/kvm")
    /// `KVM_GET_API_VERSION` on `/dev/kvm` (must answer 12, `KVM_API_VERSION`).
    public static let kvmGetAPIVersion = VMMStep(rawValue: "KVM_GET_API_VERSION")
    /// `KVM_CREATE_VM` on `/dev/kvm` (Appendix B step 2).
    public static let kvmCreateVM = VMMStep(rawValue: "KVM_CREATE_VM")
    /// `KVM_CREATE_DEVICE` with `KVM_DEV_TYPE_VFIO` on a VM (the VM's KVM-VFIO device).
    public static let kvmCreateDevice = VMMStep(rawValue: "KVM_CREATE_DEVICE")
    /// The host administrator's DSM connect: writing a TSM name to the DSM's sysfs `tsm/connect`
    /// (kernel-uapi.md §6.5).
    public static let tsmConnect = VMMStep(rawValue: "sysfs tsm/connect")
    /// The host administrator's DSM disconnect: sysfs `tsm/disconnect` (kernel-uapi.md §6.5).
    public static let tsmDisconnect = VMMStep(rawValue: "sysfs tsm/disconnect")
    /// Placing a request or response buffer in the backend's user memory.
    public static let userMemory = VMMStep(rawValue: "user memory")
    /// A check of the caller's arguments made before any call reached the kernel.
    public static let validateArguments = VMMStep(rawValue: "validate arguments")

    /// `IOMMU_DESTROY`.
    public static let destroy = command(.destroy)
    /// `IOMMU_IOAS_ALLOC`.
    public static let ioasAlloc = command(.ioasAlloc)
    /// `IOMMU_HWPT_ALLOC`.
    public static let hwptAlloc = command(.hwptAlloc)
    /// `IOMMU_VIOMMU_ALLOC`.
    public static let viommuAlloc = command(.viommuAlloc)
    /// `IOMMU_VDEVICE_ALLOC`.
    public static let vdeviceAlloc = command(.vdeviceAlloc)
    /// `IOMMU_VDEVICE_TSM_OP`.
    public static let tsmOp = command(.vdeviceTSMOp)
    /// `IOMMU_VDEVICE_TSM_REQ`.
    public static let tsmReq = command(.vdeviceTSMReq)
    /// `VFIO_DEVICE_BIND_IOMMUFD`.
    public static let vfioBind = command(.vfioDeviceBindIOMMUFD)

    /// The step's name.
    public var description: String { rawValue }

    /// True for the two TSM commands, whose ENOTTY means "no vDevice TSM uAPI here".
    var isTSMCommand: Bool { self == .tsmOp || self == .tsmReq }
}

/// The error of every VMM library call: an extensible ``code``, the ``step`` that failed, the
/// ``errno`` underneath (when a call reached the kernel or the C library) and a plain ``reason``.
///
/// Two errors are **equal by code only** (the swift-certificates pattern), so a test or a client
/// compares `error.code` (or the error itself) with a known code and reads ``errno`` and
/// ``step`` for the detail; new codes do not break existing clients.
///
/// Values that are not failures are not thrown: a TSM request's residue and `tsm_code` come back
/// in ``TSMResponse``. When the revised `IOMMU_VDEVICE_TSM_REQ` fails after the kernel wrote the
/// struct back (spec 4.3 step 14), ``tsmCode`` carries the `tsm_code` it wrote.
public struct VMMError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, by kind. Compare with the static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The kernel (or C library) returned ``VMMError/errno`` and no more specific code applies.
        public static let kernelError = Code("kernel error")
        /// `/dev/iommu` is missing or has no driver (ENOENT, ENODEV, ENXIO on open): the running
        /// kernel has no iommufd (CONFIG_IOMMUFD not set, or the module not loaded).
        public static let iommufdUnavailable = Code("iommufd unavailable")
        /// The VFIO device cdev is missing or has no driver (ENOENT, ENODEV, ENXIO on open).
        public static let vfioDeviceUnavailable = Code("VFIO device unavailable")
        /// EACCES or EPERM from any step.
        public static let permissionDenied = Code("permission denied")
        /// ENOTTY from an iommufd command other than the TSM ones: the file is not an iommufd.
        public static let notIOMMUFD = Code("not an iommufd")
        /// ENOTTY from `VFIO_DEVICE_BIND_IOMMUFD`: the file is not a VFIO device cdev.
        public static let notVFIODevice = Code("not a VFIO device cdev")
        /// ENOTTY from `IOMMU_VDEVICE_TSM_OP` / `IOMMU_VDEVICE_TSM_REQ`: the kernel has no vDevice
        /// TSM uAPI, or gives the profile's numbers no command (another profile).
        public static let tsmUAPIUnavailable = Code("vDevice TSM uAPI unavailable")
        /// The running kernel uses one of the profile's command numbers for another command
        /// (Linux 7.3+ gives 0x95 to IOMMU_IOAS_NOIOMMU_GET_PA, spec 2.1).
        public static let profileMismatch = Code("profile does not fit the kernel")
        /// The kernel release string does not start with `major.minor`, so the profile cannot be
        /// checked against it.
        public static let unknownKernelVersion = Code("unknown kernel version")
        /// A caller argument does not fit the uAPI (a length above `UInt32.max`, a negative
        /// capacity, an op the profile does not number); nothing was issued.
        public static let invalidArgument = Code("invalid argument")
        /// The call needs the other `iommu_vdevice_tsm_req` form: `op` + `tvm_arch` on a v5
        /// profile, or `scope` on a revised one; nothing was issued.
        public static let requestFormMismatch = Code("request form does not match the profile")
        /// The kernel returned a residue larger than the buffer it refers to (spec 4.4).
        public static let invalidResidue = Code("invalid residue")
        /// The iommufd and the VFIO device come from different backends.
        public static let backendMismatch = Code("backend mismatch")
        /// `/dev/kvm` is missing or has no driver (ENOENT, ENODEV, ENXIO on open): the kernel has
        /// no KVM (CONFIG_KVM not set, the module not loaded, or no hardware virtualization).
        public static let kvmUnavailable = Code("KVM unavailable")
        /// The file opened as `/dev/kvm` is not the KVM device: ENOTTY from `KVM_GET_API_VERSION`
        /// or `KVM_CREATE_VM`, or an API version other than 12.
        public static let notKVM = Code("not the KVM device")
        /// KVM cannot take the VFIO device cdev: `KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO)` answered
        /// ENODEV (no CONFIG_KVM_VFIO) or ENOTTY (not a VM, or no device control), or
        /// `KVM_DEV_VFIO_FILE_ADD` answered EINVAL / ENXIO (not a VFIO file, or a kernel whose
        /// KVM-VFIO device takes only VFIO group files).
        public static let kvmVFIOUnsupported = Code("KVM-VFIO device cannot take the file")
        /// The DSM's sysfs `tsm/` attribute does not exist (ENOENT): the kernel lacks
        /// CONFIG_PCI_TSM, no link TSM is registered, the device is not DSM-capable, or there is
        /// no such PCI device (kernel-uapi.md §6.5).
        public static let tsmSysfsUnavailable = Code("TSM sysfs attribute unavailable")
        /// The argument struct came back with a different size than it was issued with.
        public static let malformedReply = Code("malformed reply")

        /// The code's name, e.g. `"iommufd unavailable"`.
        public var description: String { name }
    }

    /// The kind of failure.
    public let code: Code
    /// The call that failed.
    public let step: VMMStep
    /// The errno underneath, or nil for a check made before any call.
    public let errno: Errno?
    /// One plain sentence saying what happened and, where known, what to do.
    public let reason: String
    /// `tsm_code` as the kernel wrote it back with a failing revised TSM request, else nil.
    public let tsmCode: UInt64?

    /// Creates an error; ``tsmCode`` defaults to nil.
    public init(_ code: Code, step: VMMStep, errno: Errno? = nil, reason: String, tsmCode: UInt64? = nil) {
        self.code = code
        self.step = step
        self.errno = errno
        self.reason = reason
        self.tsmCode = tsmCode
    }

    /// `"<step>: <reason> (<ERRNO>)"`, e.g.
    /// `"open iommufd: /dev/iommu does not exist: ... (ENOENT)"`; the errno is not repeated when
    /// the reason already names it in parentheses.
    public var description: String {
        var text = "\(step): \(reason)"
        if let errno, !reason.contains("(\(errno.linuxName))") { text += " (\(errno.linuxName))" }
        if let tsmCode { text += " [tsm_code 0x\(String(tsmCode, radix: 16))]" }
        return text
    }

    /// Equal by ``code`` only.
    public static func == (lhs: VMMError, rhs: VMMError) -> Bool { lhs.code == rhs.code }

    /// Hashes ``code`` only (consistent with `==`).
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension VMMError {
    /// Turns an errno from `step` into a ``VMMError`` with the most specific code, in this fixed
    /// order:
    ///
    /// | errno | step | code |
    /// |-------|------|------|
    /// | EACCES, EPERM | any | ``Code/permissionDenied`` |
    /// | ENOENT, ENODEV, ENXIO | ``VMMStep/openIOMMUFD`` | ``Code/iommufdUnavailable`` |
    /// | ENOENT, ENODEV, ENXIO | ``VMMStep/openVFIODevice`` | ``Code/vfioDeviceUnavailable`` |
    /// | ENOTTY | TSM_OP, TSM_REQ | ``Code/tsmUAPIUnavailable`` |
    /// | ENOTTY | VFIO_DEVICE_BIND_IOMMUFD | ``Code/notVFIODevice`` |
    /// | ENOTTY | other iommufd command | ``Code/notIOMMUFD`` |
    /// | anything else | any | ``Code/kernelError`` |
    ///
    /// `subject` names the file or object (a path, `"vDEVICE 3"`), `environment` the backend
    /// (``IOMMUFDBackend/environment``), `detail` adds command numbers to ENOTTY messages.
    public static func classify(_ errno: Errno, step: VMMStep, subject: String, environment: String,
                                detail: String = "", tsmCode: UInt64? = nil) -> VMMError {
        let name = errno.linuxName
        let missing: Set<Errno> = [.noSuchFileOrDirectory, .operationNotSupportedByDevice, .noSuchAddressOrDevice]
        if errno == .permissionDenied || errno == .notPermitted {
            return VMMError(.permissionDenied, step: step, errno: errno,
                            reason: "permission denied for \(subject) on \(environment): run as root or grant this user read/write access (udev rule, group), and CAP_SYS_RAWIO where the command needs it",
                            tsmCode: tsmCode)
        }
        if missing.contains(errno) && step == .openIOMMUFD {
            return VMMError(.iommufdUnavailable, step: step, errno: errno,
                            reason: "\(subject) is not available on \(environment) (\(name)): the kernel has no iommufd (CONFIG_IOMMUFD not set, or the iommufd module not loaded: try 'modprobe iommufd')")
        }
        if missing.contains(errno) && step == .openVFIODevice {
            return VMMError(.vfioDeviceUnavailable, step: step, errno: errno,
                            reason: "VFIO device cdev \(subject) is not available on \(environment) (\(name)): bind the device to vfio-pci; the kernel needs CONFIG_VFIO_DEVICE_CDEV")
        }
        if errno == .inappropriateIOCTLForDevice && step.isTSMCommand {
            return VMMError(.tsmUAPIUnavailable, step: step, errno: errno,
                            reason: "\(environment) answered ENOTTY to \(step)\(detail): the kernel has no iommufd vDevice TSM uAPI, or numbers it as another profile does",
                            tsmCode: tsmCode)
        }
        if errno == .inappropriateIOCTLForDevice && step == .vfioBind {
            return VMMError(.notVFIODevice, step: step, errno: errno,
                            reason: "\(subject) does not answer \(step)\(detail) on \(environment): it is not a VFIO device cdev")
        }
        if errno == .inappropriateIOCTLForDevice && step.rawValue.hasPrefix("IOMMU_") {
            return VMMError(.notIOMMUFD, step: step, errno: errno,
                            reason: "\(subject) does not answer \(step)\(detail) on \(environment): it is not an iommufd (/dev/iommu)")
        }
        return VMMError(.kernelError, step: step, errno: errno,
                        reason: "\(step) on \(subject) failed with \(name) on \(environment)", tsmCode: tsmCode)
    }
}
