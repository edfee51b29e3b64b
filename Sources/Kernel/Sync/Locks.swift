import Sync
import SystemPackage
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a blocking lock acquisition may be interrupted, as the kernel's `_interruptible` /
/// `_killable` lock variants are (spec 6.4).
///
/// In the simulated kernel a "pending signal" is either the calling Swift task being cancelled
/// (`Task.isCancelled`) or the ``SimulatedKernel/ioctl(_:_:_:signalPending:)`` caller saying a
/// signal is pending. As in the kernel, an uncontended acquisition succeeds even with a signal
/// pending (the fast path never looks at signals); only *waiting* is interrupted, with `EINTR`.
public enum LockWait: Sendable {
    /// Waits until the lock is free (`down_read`, `mutex_lock`).
    case uninterruptible
    /// Gives up with `EINTR` when a signal is pending while waiting (`_interruptible`, `_killable`).
    case interruptible(signalPending: Bool)

    @inline(__always)
    func shouldAbandon() -> Bool {
        switch self {
        case .uninterruptible: return false
        case .interruptible(let pending): return pending || Task.isCancelled
        }
    }
}

/// Back-off while waiting for transient holders to go (``IOMMUFDContext/forceRemove``): spin a
/// little, then yield the CPU.
@inline(__always)
func contendedPause(_ attempt: inout Int) {
    attempt += 1
    if attempt < 64 { return }
    sched_yield()
}

/// A reader/writer lock modelled on the kernel's `rw_semaphore` (`pci_tsm_rwsem`, spec 6.4).
///
/// Many readers or one writer. A waiting writer blocks new readers (writer preference), so
/// connect/disconnect are not starved by a stream of guest requests. Acquisitions are scoped
/// (`withRead`, `withWrite`) so a lock can never be left held, except by the test hooks
/// (``PCITSMCore/holdGlobalLock()``), which may release from another thread.
///
/// Built on ``Sync/WaitableRWLock`` (an atomic word, with a `pthread_mutex_t` + `pthread_cond_t`
/// for waits) so the thread sanitizer sees its ordering; the uncontended read path is one
/// compare-and-exchange to take and one atomic subtract to release; nothing allocates.
public final class ReaderWriterLock: Sendable {
    private let lock = WaitableRWLock()

    /// Creates an unlocked lock.
    public init() {}

    /// Runs `body` holding the lock for reading.
    ///
    /// - Throws: `EINTR` (`Errno.interrupted`) when `wait` is interruptible, the lock is held or
    ///   wanted by a writer, and a signal is pending; then `body` does not run. Errors of `body`
    ///   pass through.
    @inline(__always)
    public func withRead<R>(_ wait: LockWait, _ body: () throws(Errno) -> R) throws(Errno) -> R {
        guard lockRead(wait) else { throw .interrupted }
        defer { unlockRead() }
        return try body()
    }

    /// Runs `body` holding the lock for reading, waiting as long as needed.
    @inline(__always)
    public func withRead<R>(_ body: () -> R) -> R {
        _ = lockRead(.uninterruptible)
        defer { unlockRead() }
        return body()
    }

    /// Runs `body` holding the lock for writing.
    ///
    /// - Throws: `EINTR` when `wait` is interruptible (killable), the lock is held, and a signal
    ///   is pending; then `body` does not run. Errors of `body` pass through.
    public func withWrite<R>(_ wait: LockWait, _ body: () throws(Errno) -> R) throws(Errno) -> R {
        guard lockWrite(wait) else { throw .interrupted }
        defer { unlockWrite() }
        return try body()
    }

    /// Runs `body` holding the lock for writing, waiting as long as needed.
    public func withWrite<R>(_ body: () -> R) -> R {
        _ = lockWrite(.uninterruptible)
        defer { unlockWrite() }
        return body()
    }

    /// A snapshot for tests: (readers holding, writer holding).
    public var holders: (readers: Int, writer: Bool) { lock.holders }

    // MARK: Primitive operations (also used by test hooks that hold the lock across calls)

    /// Takes the lock for reading; returns false (not taken) when interrupted.
    @inline(__always)
    func lockRead(_ wait: LockWait) -> Bool {
        lock.lockShared(abandon: { wait.shouldAbandon() })
    }

    @inline(__always)
    func unlockRead() { lock.unlockShared() }

    /// Takes the lock for writing; returns false (not taken) when interrupted.
    func lockWrite(_ wait: LockWait) -> Bool {
        lock.lockExclusive(abandon: { wait.shouldAbandon() })
    }

    func unlockWrite() { lock.unlockExclusive() }
}

/// A mutual-exclusion lock with an interruptible acquisition, modelled on the kernel's `struct
/// mutex` as the DSM lock (`pci_tsm_pf0.lock`, spec 6.1, 6.4) uses it. The protected state lives
/// inside (`Value`), so it can only be touched while the lock is held.
///
/// Built on ``Sync/WaitableRWLock`` used exclusively (see ``ReaderWriterLock``): the thread
/// sanitizer understands it, and the test hook ``PCITSMCore/holdDSMLock(_:)`` may release it
/// from another thread.
public final class KernelMutex<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked: `value` is only reached between a successful `lockExclusive` and the matching
    // `unlockExclusive`, whose internal pthread mutex orders the critical sections.
    private let lock = WaitableRWLock()
    /// Behind a pointer (not a stored `var`): the lock gives exclusivity, so accesses need no
    /// dynamic exclusivity check.
    private let value: UnsafeMutablePointer<Value>

    /// Creates an unlocked mutex guarding `value`.
    public init(_ value: consuming sending Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with exclusive access to the guarded value.
    ///
    /// - Throws: `EINTR` when `wait` is interruptible, the mutex is held, and a signal is pending;
    ///   errors of `body` pass through.
    @inline(__always)
    public func withLock<R>(_ wait: LockWait, _ body: (inout Value) throws(Errno) -> R) throws(Errno) -> R {
        guard lock(wait) else { throw .interrupted }
        defer { unlock() }
        return try body(&value.pointee)
    }

    /// Uninterruptible, non-throwing form.
    @inline(__always)
    public func withLock<R>(_ body: (inout Value) -> R) -> R {
        _ = lock(.uninterruptible)
        defer { unlock() }
        return body(&value.pointee)
    }

    /// True while some thread holds the mutex (tests).
    public var isLocked: Bool { lock.holders.writer }

    @inline(__always)
    func lock(_ wait: LockWait) -> Bool {
        lock.lockExclusive(abandon: { wait.shouldAbandon() })
    }

    @inline(__always)
    func unlock() { lock.unlockExclusive() }
}


/// A value guarded by a reader/writer lock (``Sync/SharedLocked``, on ``Sync/WaitableRWLock``): many
/// concurrent readers, one writer, always scoped, never interrupted.
///
/// Used for tables read on every ioctl (the file table, an iommufd object table).
public typealias RWProtected<Value> = SharedLocked<Value>
