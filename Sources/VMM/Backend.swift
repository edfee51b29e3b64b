import SystemPackage
import UAPI

/// What the VMM library needs from a kernel: one raw `ioctl`, files, and user memory.
///
/// Two backends implement it and the same typed code (``IOMMUFD``, ``VFIODevice``) runs on both:
/// ``LinuxBackend`` (real `/dev/iommu` and VFIO cdevs, real `ioctl(2)`, real pointers to pinned
/// buffers) and the simulated kernel's adapter. This is the "raw entry point plus small typed
/// conveniences" shape of swift-system (docs/STYLE.md): nothing above this protocol knows which
/// kernel answers.
///
/// **User memory.** The kernel reads `req_uptr` / `resp_uptr` (spec 4.1) from the calling process's
/// memory. A backend therefore places buffers in *its* user memory and hands out their user
/// addresses: real heap addresses for Linux, addresses in the simulated process's address space
/// for the simulated kernel. Reads and writes through the protocol accept only addresses inside a
/// buffer the backend mapped (anything else is EFAULT, never a crash).
///
/// **File descriptors** are the backend's own numbers (real fds on Linux, simulated fds in the
/// simulated kernel); `VFIO_DEVICE_BIND_IOMMUFD` passes the iommufd's number inside its struct, so
/// both files must come from the same backend (checked by identity, ``VMMError/Code/backendMismatch``).
///
/// Backends are reference types (they own state with identity: open files, mapped buffers) and
/// must be safe to call from several threads.
public protocol IOMMUFDBackend: AnyObject, Sendable {
    /// One phrase naming the kernel for messages, e.g. `"Linux 7.3.4-amd64"` or
    /// `"the simulated kernel (profile revised)"`.
    var environment: String { get }

    /// Refuses a profile whose command numbers mean something else on this kernel.
    ///
    /// Called by ``IOMMUFD/open(backend:profile:path:)`` before anything is opened.
    /// Errors: ``VMMError/Code/profileMismatch`` or ``VMMError/Code/unknownKernelVersion`` at step
    /// ``VMMStep/checkKernel``.
    func admit(_ profile: UAPIProfile) throws(VMMError)

    /// Opens `path` read-write (close-on-exec) and returns the file descriptor.
    ///
    /// Errors: the errno of `open(2)` (ENOENT, EACCES, ENODEV, ...).
    func open(_ path: String) throws(Errno) -> Int32

    /// Closes `fd`. Errors: the errno of `close(2)` (EBADF).
    func close(_ fd: Int32) throws(Errno)

    /// The raw entry point: `ioctl(fd, request, argument)`.
    ///
    /// `argument` holds the argument struct's bytes; the kernel reads them and may write them back
    /// (out fields, `tsm_code`). Both backends keep `argument`'s count unchanged. Returns the
    /// ioctl's non-negative value (0, or a TSM request's residue, spec 2.2 step 7); throws the errno
    /// of a negative return.
    func ioctl(_ fd: Int32, request: UInt32, argument: inout [UInt8]) throws(Errno) -> Int32

    /// Maps `count` zero bytes (`count` ≥ 1) of user memory that stay at one address until
    /// unmapped, and returns that address (never 0). Errors: EINVAL for `count` < 1, ENOMEM.
    func mapUserBuffer(count: Int) throws(Errno) -> UInt64

    /// Copies `bytes` into user memory at `address`. Errors: EFAULT unless the whole range lies in
    /// one mapped buffer; nothing is written then.
    func writeUserBuffer(at address: UInt64, _ bytes: [UInt8]) throws(Errno)

    /// Copies `count` bytes out of user memory at `address`. Errors: EFAULT unless the whole range
    /// lies in one mapped buffer; EINVAL for a negative count.
    func readUserBuffer(at address: UInt64, count: Int) throws(Errno) -> [UInt8]

    /// Unmaps the buffer that starts at `address`. Errors: EINVAL if no buffer starts there.
    func unmapUserBuffer(at address: UInt64) throws(Errno)
}
