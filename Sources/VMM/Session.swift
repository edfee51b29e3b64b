import UAPI

/// A shared owner of an ``IOMMUFD``, for code that must hand the iommufd to escaping closures,
/// tasks or other objects (the `assign` command's guest tunnel, benchmark workers).
///
/// ``IOMMUFD`` is `~Copyable` and cannot be captured by an escaping closure; this class holds it
/// as a stored property, so any number of references (and ``TSMTunnel`` values) can reach it.
/// The iommufd is closed when the last reference goes away (deterministically, by reference
/// counting): keep the session alive as long as its vDEVICEs are used.
///
/// Thread safety: the session adds no state; concurrent calls go to the backend, which is
/// thread-safe (``IOMMUFDBackend``).
public final class IOMMUFDSession: Sendable {
    /// The owned iommufd; call its methods directly (`session.iommufd.allocIOAS()`).
    public let iommufd: IOMMUFD

    /// Opens an iommufd (see ``IOMMUFD/open(backend:profile:path:)`` for the errors) and owns it.
    public init(backend: any IOMMUFDBackend, profile: UAPIProfile = .revised,
                path: String = IOMMUFD.defaultPath) throws(VMMError) {
        iommufd = try IOMMUFD.open(backend: backend, profile: profile, path: path)
    }

    /// Takes ownership of an open iommufd.
    public init(_ iommufd: consuming IOMMUFD) {
        self.iommufd = iommufd
    }

    /// The profile of the iommufd.
    public var profile: UAPIProfile { iommufd.profile }

    /// A copyable handle that tunnels guest requests for `vdevice` through this session.
    public func tunnel(for vdevice: VDeviceID) -> TSMTunnel {
        TSMTunnel(session: self, vdevice: vdevice)
    }
}

/// The guest-request tunnel of one vDEVICE: what a VMM hands the code that serves a TVM's exits
/// (DESIGN.md step 2: `vdevice.tsmRequest(op:tvmArch:request:responseCapacity:)`).
///
/// A plain value holding its ``IOMMUFDSession``; every call is the ``IOMMUFD`` call of the same
/// name on that session's iommufd, with the same errors.
public struct TSMTunnel: Sendable {
    /// The session whose iommufd the requests go through.
    public let session: IOMMUFDSession
    /// The vDEVICE the requests name.
    public let vdevice: VDeviceID

    /// Creates a tunnel for `vdevice` on `session`.
    public init(session: IOMMUFDSession, vdevice: VDeviceID) {
        self.session = session
        self.vdevice = vdevice
    }

    /// ``IOMMUFD/tsmRequest(_:op:tvmArch:request:responseCapacity:)`` for ``vdevice``.
    public func tsmRequest(op: GuestRequestOp, tvmArch: TVMArch, request: [UInt8],
                           responseCapacity: Int) throws(VMMError) -> TSMResponse {
        try session.iommufd.tsmRequest(vdevice, op: op, tvmArch: tvmArch, request: request,
                                       responseCapacity: responseCapacity)
    }

    /// ``IOMMUFD/tsmRequest(_:scope:request:responseCapacity:)`` for ``vdevice`` (v5 profile).
    public func tsmRequest(scope: TSMReqScope, request: [UInt8], responseCapacity: Int) throws(VMMError) -> TSMResponse {
        try session.iommufd.tsmRequest(vdevice, scope: scope, request: request, responseCapacity: responseCapacity)
    }

    /// ``IOMMUFD/tsmBind(_:)`` for ``vdevice``.
    public func bind() throws(VMMError) {
        try session.iommufd.tsmBind(vdevice)
    }

    /// ``IOMMUFD/tsmUnbind(_:)`` for ``vdevice``.
    public func unbind() throws(VMMError) {
        try session.iommufd.tsmUnbind(vdevice)
    }
}
