import SystemPackage
import UAPI

/// One call that crossed the backend protocol, as ``TracingBackend`` reports it.
///
/// | case | what |
/// |------|------|
/// | ``open(path:result:)`` | `open(2)`: the fd or the errno |
/// | ``close(fd:errno:)`` | `close(2)`: nil errno on success |
/// | ``ioctlIssued(fd:request:argument:)`` | an ioctl about to be issued: the argument bytes as the caller passed them |
/// | ``ioctl(fd:request:argumentIn:argumentOut:result:)`` | the argument bytes before and after, and the value or errno |
/// | ``userWrite(address:bytes:)`` | bytes placed in user memory (a TSM request payload) |
/// | ``userRead(address:bytes:)`` | bytes read back from user memory (a TSM response) |
///
/// Decode an ioctl with the profile: `profile.dispatchSlot(forRequest:)` names the command, its
/// `layout` the fields (or `CommandSpec.vfioDeviceBindIOMMUFD` for 0x3B76).
public enum BackendEvent: Sendable, Hashable {
    /// `open(path)` returned `result` (a descriptor, or the errno).
    case open(path: String, result: Result<Int32, Errno>)
    /// `close(fd)`; `errno` is nil on success.
    case close(fd: Int32, errno: Errno?)
    /// `ioctl(fd, request, argument)` is about to be issued (reported before the call, so that
    /// what the call causes further down, e.g. TDISP messages to a device, can be ordered after
    /// it); `argument` is the struct as the caller passed it. Always followed by
    /// ``ioctl(fd:request:argumentIn:argumentOut:result:)`` for the same call.
    case ioctlIssued(fd: Int32, request: UInt32, argument: [UInt8])
    /// `ioctl(fd, request, argument)`: the argument as issued and as the kernel left it, and the
    /// ioctl's value or errno.
    case ioctl(fd: Int32, request: UInt32, argumentIn: [UInt8], argumentOut: [UInt8], result: Result<Int32, Errno>)
    /// `bytes` written to user memory at `address`.
    case userWrite(address: UInt64, bytes: [UInt8])
    /// `bytes` read from user memory at `address`.
    case userRead(address: UInt64, bytes: [UInt8])
}

/// A backend that forwards every call to ``base`` and reports it to a sink: the source of
/// `tsmctl assign --trace` (every uAPI call with its bytes).
///
/// Use the *same* tracing backend for the iommufd and the VFIO devices (``VFIODevice/bind(to:)``
/// checks that both handles share a backend). Mapping and unmapping are forwarded without events;
/// failed user-memory reads and writes are not reported (the error reaches the caller).
public final class TracingBackend: IOMMUFDBackend {
    /// The backend that does the work.
    public let base: any IOMMUFDBackend
    private let sink: @Sendable (BackendEvent) -> Void

    /// Traces `base`, calling `sink` once per event, on the calling thread, after the call
    /// (and, for an ioctl, also before it: ``BackendEvent/ioctlIssued(fd:request:argument:)``).
    public init(_ base: any IOMMUFDBackend, sink: @escaping @Sendable (BackendEvent) -> Void) {
        self.base = base
        self.sink = sink
    }

    /// ``base``'s environment.
    public var environment: String { base.environment }

    /// Forwards to ``base``.
    public func admit(_ profile: UAPIProfile) throws(VMMError) {
        try base.admit(profile)
    }

    /// Forwards to ``base`` and reports ``BackendEvent/open(path:result:)``.
    public func open(_ path: String) throws(Errno) -> Int32 {
        do throws(Errno) {
            let fd = try base.open(path)
            sink(.open(path: path, result: .success(fd)))
            return fd
        } catch {
            sink(.open(path: path, result: .failure(error)))
            throw error
        }
    }

    /// Forwards to ``base`` and reports ``BackendEvent/close(fd:errno:)``.
    public func close(_ fd: Int32) throws(Errno) {
        do throws(Errno) {
            try base.close(fd)
            sink(.close(fd: fd, errno: nil))
        } catch {
            sink(.close(fd: fd, errno: error))
            throw error
        }
    }

    /// Reports ``BackendEvent/ioctlIssued(fd:request:argument:)``, forwards to ``base`` and reports
    /// ``BackendEvent/ioctl(fd:request:argumentIn:argumentOut:result:)``.
    public func ioctl(_ fd: Int32, request: UInt32, argument: inout [UInt8]) throws(Errno) -> Int32 {
        let before = argument
        sink(.ioctlIssued(fd: fd, request: request, argument: before))
        do throws(Errno) {
            let result = try base.ioctl(fd, request: request, argument: &argument)
            sink(.ioctl(fd: fd, request: request, argumentIn: before, argumentOut: argument, result: .success(result)))
            return result
        } catch {
            sink(.ioctl(fd: fd, request: request, argumentIn: before, argumentOut: argument, result: .failure(error)))
            throw error
        }
    }

    /// Forwards to ``base``.
    public func mapUserBuffer(count: Int) throws(Errno) -> UInt64 {
        try base.mapUserBuffer(count: count)
    }

    /// Forwards to ``base``; reports ``BackendEvent/userWrite(address:bytes:)`` on success.
    public func writeUserBuffer(at address: UInt64, _ bytes: [UInt8]) throws(Errno) {
        try base.writeUserBuffer(at: address, bytes)
        sink(.userWrite(address: address, bytes: bytes))
    }

    /// Forwards to ``base``; reports ``BackendEvent/userRead(address:bytes:)`` on success.
    public func readUserBuffer(at address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        let bytes = try base.readUserBuffer(at: address, count: count)
        sink(.userRead(address: address, bytes: bytes))
        return bytes
    }

    /// Forwards to ``base``.
    public func unmapUserBuffer(at address: UInt64) throws(Errno) {
        try base.unmapUserBuffer(at: address)
    }
}
