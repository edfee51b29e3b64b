import UAPI

/// An iommufd object ID as the kernel hands it out (lowest free ID ≥ 1, per iommufd file, spec 0.1).
///
/// The ID types are plain values, not owners: an object lives until ``IOMMUFD/destroy(_:)``, until
/// its iommufd file is closed, or (for a DEVICE) until its VFIO device file is closed (spec 1.5).
public protocol IOMMUFDObjectID: Hashable, Sendable, CustomStringConvertible {
    /// The raw `u32` object ID.
    var id: UInt32 { get }
    /// The kernel's name for the object kind: `"DEVICE"`, `"IOAS"`, `"HWPT"`, `"vIOMMU"`, `"vDEVICE"`.
    static var kind: String { get }
}

extension IOMMUFDObjectID {
    /// `"<kind> <id>"`, e.g. `"vDEVICE 4"`.
    public var description: String { "\(Self.kind) \(id)" }
}

/// A DEVICE object ID (named after the uAPI field `dev_id`; swift-system already has a `DeviceID`):
/// a VFIO device bound to an iommufd (`out_devid` of `VFIO_DEVICE_BIND_IOMMUFD`,
/// spec 1.5). It goes away when the VFIO device file is closed; `IOMMU_DESTROY` of it is EBUSY.
public struct DevID: IOMMUFDObjectID {
    /// The kernel's name for the object kind.
    public static var kind: String { "DEVICE" }
    /// The raw `u32` object ID.
    public let id: UInt32
    /// The object with ID `id`.
    public init(_ id: UInt32) { self.id = id }
}

/// An IOAS object (`out_ioas_id` of `IOMMU_IOAS_ALLOC`, spec 1.4).
public struct IOASID: IOMMUFDObjectID {
    /// The kernel's name for the object kind.
    public static var kind: String { "IOAS" }
    /// The raw `u32` object ID.
    public let id: UInt32
    /// The object with ID `id`.
    public init(_ id: UInt32) { self.id = id }
}

/// A HWPT object (`out_hwpt_id` of `IOMMU_HWPT_ALLOC`, spec 1.4).
public struct HWPTID: IOMMUFDObjectID {
    /// The kernel's name for the object kind.
    public static var kind: String { "HWPT" }
    /// The raw `u32` object ID.
    public let id: UInt32
    /// The object with ID `id`.
    public init(_ id: UInt32) { self.id = id }
}

/// A vIOMMU object (`out_viommu_id` of `IOMMU_VIOMMU_ALLOC`, spec 1.6); it captures the DEVICE's VM.
public struct VIOMMUID: IOMMUFDObjectID {
    /// The kernel's name for the object kind.
    public static var kind: String { "vIOMMU" }
    /// The raw `u32` object ID.
    public let id: UInt32
    /// The object with ID `id`.
    public init(_ id: UInt32) { self.id = id }
}

/// A vDEVICE object (`out_vdevice_id` of `IOMMU_VDEVICE_ALLOC`, spec 1.7), with the `virt_id`
/// (guest BDF / vRID) it was allocated with. Its TSM bind uses `tdi_id = virt_id` low 32 bits
/// (spec 3). Two values are equal when their ``id``s are (``virtID`` is carried, not compared).
public struct VDeviceID: IOMMUFDObjectID {
    /// The kernel's name for the object kind.
    public static var kind: String { "vDEVICE" }
    /// The raw `u32` object ID.
    public let id: UInt32
    /// The `virt_id` given to `IOMMU_VDEVICE_ALLOC`, or nil when the ID was made from a number.
    public let virtID: UInt64?
    /// The vDEVICE with ID `id`, allocated with `virtID` if known.
    public init(_ id: UInt32, virtID: UInt64? = nil) {
        self.id = id
        self.virtID = virtID
    }

    /// Equal by ``id``.
    public static func == (lhs: VDeviceID, rhs: VDeviceID) -> Bool { lhs.id == rhs.id }

    /// Hashes ``id`` only.
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}

/// The answer to a successful `IOMMU_VDEVICE_TSM_REQ` (spec 4.4): the bytes the TSM wrote, the
/// residue the ioctl returned, and `tsm_code` (revised layouts).
///
/// | field | meaning |
/// |-------|---------|
/// | ``bytes`` | the first `responseCapacity - residue` bytes of the response buffer |
/// | ``residue`` | the ioctl's return value: bytes of the response buffer **not** filled; with no response buffer (capacity 0), bytes of the request **not** consumed |
/// | ``tsmCode`` | the TSM's opaque 64-bit status as the kernel wrote it at offset 40; nil for the v5 layout, which has none |
/// | ``responseCapacity`` | the `resp_len` that was issued |
public struct TSMResponse: Hashable, Sendable {
    /// The response bytes the TSM filled (`responseCapacity - residue` of them).
    public let bytes: [UInt8]
    /// The ioctl's non-negative return value (spec 4.4).
    public let residue: Int
    /// `tsm_code` (revised and v5+tsm_code layouts), nil for v5.
    public let tsmCode: UInt64?
    /// The `resp_len` issued.
    public let responseCapacity: Int

    /// A response with the given fields (the library builds these; tests and doubles may too).
    public init(bytes: [UInt8], residue: Int, tsmCode: UInt64?, responseCapacity: Int) {
        self.bytes = bytes
        self.residue = residue
        self.tsmCode = tsmCode
        self.responseCapacity = responseCapacity
    }
}
