import SystemPackage

/// Linux errno names and numbers, for printing (`"ENOENT"`) and parsing results of the
/// simulated kernel.
///
/// Code uses swift-system's names; this table maps them to the kernel's:
///
/// | kernel | value | swift-system `Errno` |
/// |--------|-------|----------------------|
/// | EPERM | 1 | `.notPermitted` |
/// | ENOENT | 2 | `.noSuchFileOrDirectory` |
/// | EINTR | 4 | `.interrupted` |
/// | EIO | 5 | `.ioError` |
/// | ENXIO | 6 | `.noSuchAddressOrDevice` |
/// | E2BIG | 7 | `.argListTooLong` |
/// | EBADF | 9 | `.badFileDescriptor` |
/// | EAGAIN | 11 | `.resourceTemporarilyUnavailable` |
/// | ENOMEM | 12 | `.noMemory` |
/// | EACCES | 13 | `.permissionDenied` |
/// | EFAULT | 14 | `.badAddress` |
/// | EBUSY | 16 | `.resourceBusy` |
/// | EEXIST | 17 | `.fileExists` |
/// | ENODEV | 19 | `.operationNotSupportedByDevice` |
/// | EINVAL | 22 | `.invalidArgument` |
/// | ENOTTY | 25 | `.inappropriateIOCTLForDevice` |
/// | ENOSPC | 28 | `.noSpace` |
/// | ERANGE | 34 | `.outOfRange` |
/// | ENOSYS | 38 | `.noFunction` |
/// | EPROTO | 71 | `.protocolError` (CCA SET_TDI_STATE, arch-backends.md §1.2) |
/// | EOVERFLOW | 75 | `.overflow` |
/// | EBADFD | 77 | `.fileDescriptorInBadState` (defined here) |
/// | EMSGSIZE | 90 | `.messageTooLong` |
/// | EOPNOTSUPP | 95 | `.notSupportedOnSocket` (on Linux also `.notSupported`, ENOTSUP = 95) |
/// | ETIMEDOUT | 110 | `.timedOut` |
///
/// The numbers are the Linux generic/x86/arm64 values (spec kernel-uapi.md section 0): the
/// kernel ABI TSMKit models, whatever the host. On Linux they equal the C library's constants
/// (checked by the tests).
public enum ErrnoName {
    /// Every errno TSMKit names, as (name, Linux value), in value order.
    public static let table: [(name: String, value: CInt)] = [
        ("EPERM", 1), ("ENOENT", 2), ("EINTR", 4), ("EIO", 5), ("ENXIO", 6), ("E2BIG", 7),
        ("EBADF", 9), ("EAGAIN", 11), ("ENOMEM", 12), ("EACCES", 13), ("EFAULT", 14),
        ("EBUSY", 16), ("EEXIST", 17), ("ENODEV", 19), ("EINVAL", 22), ("ENOTTY", 25),
        ("ENOSPC", 28), ("ERANGE", 34), ("ENOSYS", 38), ("EPROTO", 71), ("EOVERFLOW", 75), ("EBADFD", 77),
        ("EMSGSIZE", 90), ("EOPNOTSUPP", 95), ("ETIMEDOUT", 110),
    ]

    /// The name of `errno` (`"EINVAL"`), or `"E<number>"` for a value not in ``table``.
    public static func name(of errno: Errno) -> String {
        table.first { $0.value == errno.rawValue }?.name ?? "E\(errno.rawValue)"
    }

    /// The errno called `name` (exact upper-case name from ``table``, or `"E<number>"`), or nil.
    public static func errno(named name: String) -> Errno? {
        if let entry = table.first(where: { $0.name == name }) { return Errno(rawValue: entry.value) }
        if name.hasPrefix("E"), let value = CInt(name.dropFirst()), value > 0 { return Errno(rawValue: value) }
        return nil
    }
}

extension Errno {
    /// The Linux name, e.g. `"ENOTTY"` (see ``ErrnoName``).
    public var linuxName: String { ErrnoName.name(of: self) }

    /// The errno called `linuxName` (`"EFAULT"`), or nil (see ``ErrnoName/errno(named:)``).
    public init?(linuxName: String) {
        guard let errno = ErrnoName.errno(named: linuxName) else { return nil }
        self = errno
    }

    /// `EBADFD` (77, "file descriptor in bad state"), which swift-system does not name.
    public static var fileDescriptorInBadState: Errno { Errno(rawValue: 77) }
}
