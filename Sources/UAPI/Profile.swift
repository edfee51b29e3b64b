import SystemPackage

/// Which of the three layouts of `struct iommu_vdevice_tsm_req` a tree uses (spec 4.1).
public enum TSMReqLayout: String, Sendable, CaseIterable, Codable {
    /// (a) v5 as posted: `scope` + `__reserved`, 40 bytes, minimum 40 (end of `resp_uptr`).
    case v5
    /// (b) the reply's base: v5 plus `tsm_code` at 40, 48 bytes; minimum taken as the end of
    /// `tsm_code` [inferred: no tree with this layout could be read].
    case v5TSMCode = "v5+tsm_code"
    /// (c) revised: `op` + `tvm_arch`, `tsm_code` at 40, 48 bytes, minimum 48 (end of `tsm_code`).
    case revised

    /// The struct layout.
    public var layout: StructLayout {
        switch self {
        case .v5: .iommuVDeviceTSMReqV5
        case .v5TSMCode: .iommuVDeviceTSMReqV5TSMCode
        case .revised: .iommuVDeviceTSMReqRevised
        }
    }

    /// The field whose end is the dispatcher's minimum size.
    public var minimumField: String {
        switch self {
        case .v5: "resp_uptr"
        case .v5TSMCode, .revised: "tsm_code"
        }
    }

    /// True when the layout has `op` and `tvm_arch` (only ``revised``).
    public var hasOpAndArch: Bool { self == .revised }
    /// True when the layout has `scope` and `__reserved` (``v5``, ``v5TSMCode``).
    public var hasScope: Bool { self != .revised }
    /// True when the layout carries `tsm_code` at offset 40.
    public var hasTSMCode: Bool { self != .v5 }
}

/// A Linux kernel version `major.minor[.patch]`, as `uname -r` starts.
public struct KernelVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The major version (7 in 7.3.4).
    public let major: Int
    /// The minor version (3 in 7.3.4).
    public let minor: Int
    /// The patch level (4 in 7.3.4; 0 if absent).
    public let patch: Int

    /// `major.minor.patch`.
    public init(_ major: Int, _ minor: Int, _ patch: Int = 0) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Parses the leading `major.minor[.patch]` of a release string such as `"7.3.4-amd64"`;
    /// nil if it does not start that way.
    public init?(release: String) {
        var numbers: [Int] = []
        var current = ""
        for character in release {
            if character.isASCII, character.isNumber {
                current.append(character)
                guard current.count <= 6 else { return nil }
            } else {
                guard !current.isEmpty, let value = Int(current) else { break }
                numbers.append(value)
                current = ""
                if character != "." || numbers.count == 3 { break }
            }
        }
        if !current.isEmpty, numbers.count < 3, let value = Int(current) { numbers.append(value) }
        guard numbers.count >= 2 else { return nil }
        self.init(numbers[0], numbers[1], numbers.count > 2 ? numbers[2] : 0)
    }

    /// Version order.
    public static func < (lhs: KernelVersion, rhs: KernelVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }

    /// `"7.3.4"`.
    public var description: String { "\(major).\(minor).\(patch)" }
}

/// Whether a profile's command numbers can be used on a given real (mainline) kernel.
public enum KernelCompatibility: Sendable, Hashable {
    /// No command number of the profile means something else on that kernel.
    case compatible
    /// A command number of the profile is taken by another command there; `reason` says which.
    case conflict(reason: String)
}

/// The answer to "is (op, tvm_arch) allowed" for a revised `IOMMU_VDEVICE_TSM_REQ`.
///
/// Produced only by ``UAPIProfile/guestRequestVerdict(op:tvmArch:)``. Every rejection is
/// EINVAL (spec 4.3 steps 1-2 in iommufd, repeated as steps 6-7 in pci-tsm); the cases say which
/// check failed, in the kernel's order: arch first, then op.
public enum GuestRequestVerdict: Sendable, Hashable {
    /// Allowed: the op and arch by meaning.
    case allowed(GuestRequestOp, TVMArch)
    /// `tvm_arch` is not CCA (1), SEV (2) or TDX (3) (step 1).
    case invalidTVMArch(UInt32)
    /// `op` is not in the profile's valid set (step 2).
    case invalidOp(UInt32)
    /// A SEV-only op with a `tvm_arch` other than SEV (step 2).
    case opRequiresSEV(GuestRequestOp, TVMArch)
    /// The profile's TSM_REQ layout has no `op`/`tvm_arch` (v5): nothing is allowed.
    case notInLayout

    /// The errno the kernel returns for this verdict: nil when allowed, EINVAL
    /// (`Errno.invalidArgument`) for every rejection (spec 4.3 steps 1-2, 6-7).
    public var errno: Errno? { isAllowed ? nil : .invalidArgument }

    /// True for ``allowed(_:_:)``.
    public var isAllowed: Bool {
        if case .allowed = self { return true }
        return false
    }
}

/// A uAPI profile: what the TSM commands mean in one kernel tree, as data (spec Appendix A,
/// section 8 items 1-3). Everything that issues or dispatches TSM ioctls takes a profile.
///
/// | profile | TSM_OP | TSM_REQ | TSM_REQ layout | ops | table ends |
/// |---------|--------|---------|----------------|-----|------------|
/// | `revised` (default) | 0x95 | 0x96 | revised, 48 B | reply 1..7 (6, 7 SEV only) | 0x96 |
/// | `v5` | 0x95 | 0x96 | v5 (scope), 40 B | none (scope 0..3) | 0x96 |
/// | `rev-k` | 0x96 | 0x97 | revised, 48 B | rev-K 1..4 (3, 4 SEV only) | 0x97 (0x95 = IOAS_NOIOMMU_GET_PA) |
public struct UAPIProfile: Sendable, Hashable, CustomStringConvertible {
    /// The CLI name: `"revised"`, `"v5"`, `"rev-k"`.
    public let name: String
    /// One line saying which tree it follows.
    public let summary: String
    /// Which `iommu_vdevice_tsm_req` layout TSM_REQ takes.
    public let tsmReqLayout: TSMReqLayout
    /// `IOMMUFD_CMD_VDEVICE_TSM_OP`'s nr.
    public let tsmOpNr: UInt8
    /// `IOMMUFD_CMD_VDEVICE_TSM_REQ`'s nr.
    public let tsmReqNr: UInt8
    /// The op numbering: wire value → op. Empty for v5 (no `op` field).
    public let opNumbering: [UInt32: GuestRequestOp]
    /// Ops valid only with `tvm_arch` SEV.
    public let sevOnlyOps: Set<GuestRequestOp>
    /// The last nr of the simulated command table; nr above it (or below 0x80) takes the
    /// VFIO-compat path (ENOTTY without touching the argument, spec 0.1).
    public let lastCommandNr: UInt8
    /// The first mainline kernel whose table gives one of this profile's numbers to another
    /// command, or nil (Linux 7.3 assigns 0x95 to IOAS_NOIOMMU_GET_PA, spec 2.1).
    public let mainlineConflictSince: KernelVersion?
    /// The iommufd dispatch table, 0x80 through ``lastCommandNr`` in nr order.
    public let commands: [CommandSpec]

    /// The profile called `"revised"` (default): the 2026-06-02 reply. TSM_OP 0x95, TSM_REQ 0x96,
    /// revised 48-byte layout, ops 1..7 (READ_OBJECT, REGEN_OBJECT, OBJECT_INFO, VALIDATE_MMIO,
    /// SET_TDI_STATE, SEV_ENABLE_DMA, SEV_DISABLE_DMA; the last two SEV only).
    public static let revised = UAPIProfile(
        name: "revised",
        summary: "2026-06-02 reply to v5 5/5: op + tvm_arch + tsm_code (48 B), ops 1..7, TSM_OP 0x95, TSM_REQ 0x96",
        tsmReqLayout: .revised, tsmOpNr: 0x95, tsmReqNr: 0x96,
        opNumbering: [1: .readObject, 2: .regenObject, 3: .objectInfo, 4: .validateMMIO,
                      5: .setTDIState, 6: .sevEnableDMA, 7: .sevDisableDMA],
        sevOnlyOps: [.sevEnableDMA, .sevDisableDMA],
        lastCommandNr: 0x96, mainlineConflictSince: KernelVersion(7, 3), hasNoIOMMUGetPA: false)

    /// The profile called `"v5"`: the series as posted 2026-05-25. TSM_OP 0x95, TSM_REQ 0x96, the
    /// 40-byte scope layout; no op numbering.
    public static let v5 = UAPIProfile(
        name: "v5",
        summary: "[PATCH v5] as posted 2026-05-25: scope + __reserved (40 B), TSM_OP 0x95, TSM_REQ 0x96",
        tsmReqLayout: .v5, tsmOpNr: 0x95, tsmReqNr: 0x96,
        opNumbering: [:], sevOnlyOps: [],
        lastCommandNr: 0x96, mainlineConflictSince: KernelVersion(7, 3), hasNoIOMMUGetPA: false)

    /// The profile called `"rev-k"`: kamalca/linux @58252340. IOAS_NOIOMMU_GET_PA at 0x95, TSM_OP
    /// 0x96, TSM_REQ 0x97, revised 48-byte layout (minimum 48), ops 1..4 (VALIDATE_MMIO,
    /// SET_TDI_STATE, SEV_ENABLE_DMA, SEV_DISABLE_DMA; the last two SEV only).
    public static let revK = UAPIProfile(
        name: "rev-k",
        summary: "rev-K tree (kamalca/linux @58252340): op + tvm_arch + tsm_code (48 B), ops 1..4, TSM_OP 0x96, TSM_REQ 0x97",
        tsmReqLayout: .revised, tsmOpNr: 0x96, tsmReqNr: 0x97,
        opNumbering: [1: .validateMMIO, 2: .setTDIState, 3: .sevEnableDMA, 4: .sevDisableDMA],
        sevOnlyOps: [.sevEnableDMA, .sevDisableDMA],
        lastCommandNr: 0x97, mainlineConflictSince: nil, hasNoIOMMUGetPA: true)

    /// Every profile, default first.
    public static let all: [UAPIProfile] = [.revised, .v5, .revK]

    /// The default profile (``revised``).
    public static let `default`: UAPIProfile = .revised

    /// The profile called `name` (exact, as in ``all``); throws ``UAPIProfileError/unknown(_:valid:)``
    /// naming the valid choices.
    public static func named(_ name: String) throws(UAPIProfileError) -> UAPIProfile {
        guard let profile = all.first(where: { $0.name == name }) else {
            throw .unknown(name, valid: all.map(\.name))
        }
        return profile
    }

    // MARK: The (op, tvm_arch) matrix

    /// Is (op, tvm_arch) allowed in this profile? The only place that knows the matrix.
    ///
    /// Order as in the kernel (spec 4.3): `tvm_arch ∉ {1, 2, 3}` → ``GuestRequestVerdict/invalidTVMArch(_:)``;
    /// `op` not numbered by this profile → ``GuestRequestVerdict/invalidOp(_:)``; a SEV-only op
    /// with another arch → ``GuestRequestVerdict/opRequiresSEV(_:_:)``. All are EINVAL. A v5
    /// profile answers ``GuestRequestVerdict/notInLayout`` for every pair.
    public func guestRequestVerdict(op: UInt32, tvmArch: UInt32) -> GuestRequestVerdict {
        guard tsmReqLayout.hasOpAndArch else { return .notInLayout }
        guard let arch = TVMArch(rawValue: tvmArch) else { return .invalidTVMArch(tvmArch) }
        guard let named = opNumbering[op] else { return .invalidOp(op) }
        if sevOnlyOps.contains(named) && arch != .sev { return .opRequiresSEV(named, arch) }
        return .allowed(named, arch)
    }

    /// The op with wire value `rawValue` in this profile, or nil.
    public func op(rawValue: UInt32) -> GuestRequestOp? { opNumbering[rawValue] }

    /// The wire value of `op` in this profile, or nil if the profile does not have it.
    public func rawValue(of op: GuestRequestOp) -> UInt32? {
        opNumbering.first { $0.value == op }?.key
    }

    /// The valid ops in wire-value order, with their values.
    public var validOps: [(rawValue: UInt32, op: GuestRequestOp)] {
        opNumbering.sorted { $0.key < $1.key }.map { (rawValue: $0.key, op: $0.value) }
    }

    // MARK: Commands

    /// The command `id` in this profile's table (or ``CommandSpec/vfioDeviceBindIOMMUFD`` for the
    /// VFIO bind), nil if the profile has no such command.
    public func command(_ id: CommandID) -> CommandSpec? {
        if id == .vfioDeviceBindIOMMUFD { return .vfioDeviceBindIOMMUFD }
        return commands.first { $0.id == id }
    }

    /// The command whose kernel name is `name` (e.g. `"IOMMU_VDEVICE_TSM_REQ"`), including
    /// `"VFIO_DEVICE_BIND_IOMMUFD"`; nil otherwise.
    public func command(named name: String) -> CommandSpec? {
        guard let id = CommandID(rawValue: name) else { return nil }
        return command(id)
    }

    /// `IOMMU_VDEVICE_TSM_OP` in this profile.
    public var tsmOp: CommandSpec {
        CommandSpec(.vdeviceTSMOp, nr: tsmOpNr, layout: .iommuVDeviceTSMOp, minimumField: "vdevice_id")
    }

    /// `IOMMU_VDEVICE_TSM_REQ` in this profile.
    public var tsmReq: CommandSpec {
        CommandSpec(.vdeviceTSMReq, nr: tsmReqNr, layout: tsmReqLayout.layout,
                    minimumField: tsmReqLayout.minimumField)
    }

    /// Steps 1 and 3 of the dispatcher (spec 2.2) as a table lookup on `request`'s nr only:
    /// outside the table, an empty slot, or a command (whose full request code the caller
    /// compares after reading the size word).
    public func dispatchSlot(forRequest request: UInt32) -> DispatchSlot {
        let nr = IoctlCode.nr(of: request)
        guard nr >= 0x80, nr <= lastCommandNr else { return .outsideTable }
        guard let command = commands.first(where: { $0.nr == nr }) else { return .emptySlot }
        return .command(command)
    }

    /// Whether this profile's numbers can be used on a real kernel of version `version`
    /// (spec 2.1 "Mainline today", 0.1).
    public func compatibility(with version: KernelVersion) -> KernelCompatibility {
        if let since = mainlineConflictSince, version >= since {
            return .conflict(reason: "Linux \(since.major).\(since.minor)+ assigns nr 0x95 to IOMMU_IOAS_NOIOMMU_GET_PA; profile '\(name)' uses 0x95 for IOMMU_VDEVICE_TSM_OP (use profile 'rev-k')")
        }
        return .compatible
    }

    /// The profile's name.
    public var description: String { name }

    init(name: String, summary: String, tsmReqLayout: TSMReqLayout, tsmOpNr: UInt8, tsmReqNr: UInt8,
         opNumbering: [UInt32: GuestRequestOp], sevOnlyOps: Set<GuestRequestOp>,
         lastCommandNr: UInt8, mainlineConflictSince: KernelVersion?, hasNoIOMMUGetPA: Bool) {
        self.name = name
        self.summary = summary
        self.tsmReqLayout = tsmReqLayout
        self.tsmOpNr = tsmOpNr
        self.tsmReqNr = tsmReqNr
        self.opNumbering = opNumbering
        self.sevOnlyOps = sevOnlyOps
        self.lastCommandNr = lastCommandNr
        self.mainlineConflictSince = mainlineConflictSince
        var table = UAPIProfile.commonCommands
        if hasNoIOMMUGetPA {
            table.append(CommandSpec(.ioasNoIOMMUGetPA, nr: 0x95, layout: .iommuIOASNoIOMMUGetPA,
                                     minimumField: "out_phys"))
        }
        table.append(CommandSpec(.vdeviceTSMOp, nr: tsmOpNr, layout: .iommuVDeviceTSMOp, minimumField: "vdevice_id"))
        table.append(CommandSpec(.vdeviceTSMReq, nr: tsmReqNr, layout: tsmReqLayout.layout,
                                 minimumField: tsmReqLayout.minimumField))
        self.commands = table.filter { $0.nr <= lastCommandNr }.sorted { $0.nr < $1.nr }
    }

    /// 0x80-0x94: the commands every profile shares (Linux 7.2's table), spec 2.1.
    static let commonCommands: [CommandSpec] = [
        CommandSpec(.destroy, nr: 0x80, layout: .iommuDestroy, minimumField: "id"),
        CommandSpec(.ioasAlloc, nr: 0x81, layout: .iommuIOASAlloc, minimumField: "out_ioas_id"),
        CommandSpec(.ioasAllowIOVAs, nr: 0x82, layout: nil, minimumField: nil),
        CommandSpec(.ioasCopy, nr: 0x83, layout: nil, minimumField: nil),
        CommandSpec(.ioasIOVARanges, nr: 0x84, layout: nil, minimumField: nil),
        CommandSpec(.ioasMap, nr: 0x85, layout: nil, minimumField: nil),
        CommandSpec(.ioasUnmap, nr: 0x86, layout: nil, minimumField: nil),
        CommandSpec(.option, nr: 0x87, layout: nil, minimumField: nil),
        CommandSpec(.vfioIOAS, nr: 0x88, layout: nil, minimumField: nil),
        CommandSpec(.hwptAlloc, nr: 0x89, layout: .iommuHWPTAlloc, minimumField: "__reserved"),
        CommandSpec(.getHWInfo, nr: 0x8A, layout: nil, minimumField: nil),
        CommandSpec(.hwptSetDirtyTracking, nr: 0x8B, layout: nil, minimumField: nil),
        CommandSpec(.hwptGetDirtyBitmap, nr: 0x8C, layout: nil, minimumField: nil),
        CommandSpec(.hwptInvalidate, nr: 0x8D, layout: nil, minimumField: nil),
        CommandSpec(.faultQueueAlloc, nr: 0x8E, layout: nil, minimumField: nil),
        CommandSpec(.ioasMapFile, nr: 0x8F, layout: nil, minimumField: nil),
        CommandSpec(.viommuAlloc, nr: 0x90, layout: .iommuVIOMMUAlloc, minimumField: "out_viommu_id"),
        CommandSpec(.vdeviceAlloc, nr: 0x91, layout: .iommuVDeviceAlloc, minimumField: "virt_id"),
        CommandSpec(.ioasChangeProcess, nr: 0x92, layout: nil, minimumField: nil),
        CommandSpec(.veventqAlloc, nr: 0x93, layout: nil, minimumField: nil),
        CommandSpec(.hwQueueAlloc, nr: 0x94, layout: nil, minimumField: nil),
    ]
}

/// Why a profile name was rejected.
public enum UAPIProfileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `name` is not a profile; `valid` lists the valid names.
    case unknown(String, valid: [String])

    /// `unknown uAPI profile 'NAME'; valid profiles: revised, v5, rev-k`.
    public var description: String {
        switch self {
        case let .unknown(name, valid):
            return "unknown uAPI profile '\(name)'; valid profiles: \(valid.joined(separator: ", "))"
        }
    }
}
