import Synchronization
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

    func shouldAbandon() -> Bool {
        switch self {
        case .uninterruptible: return false
        case .interruptible(let pending): return pending || Task.isCancelled
        }
    }
}

/// Back-off used while a lock is contended: spin a little, then yield the CPU.
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
/// (`withRead`, `withWrite`) so a lock can never be left held.
///
/// State, one atomic word: bits 0-31 readers holding, bits 32-61 writers waiting, bit 62 writer
/// holding. The uncontended read path is one compare-exchange to take and one subtraction to
/// release; nothing allocates.
public final class ReaderWriterLock: Sendable {
    private static let writerHeld: UInt64 = 1 << 62
    private static let writerWaitingUnit: UInt64 = 1 << 32
    private static let readersMask: UInt64 = 0xFFFF_FFFF
    private static let waitingMask: UInt64 = 0x3FFF_FFFF << 32

    private let word = Atomic<UInt64>(0)

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
    public var holders: (readers: Int, writer: Bool) {
        let value = word.load(ordering: .relaxed)
        return (Int(value & Self.readersMask), value & Self.writerHeld != 0)
    }

    // MARK: Primitive operations (also used by test hooks that hold the lock across calls)

    /// Takes the lock for reading; returns false (not taken) when interrupted.
    func lockRead(_ wait: LockWait) -> Bool {
        var attempt = 0
        while true {
            let value = word.load(ordering: .relaxed)
            if value & (Self.writerHeld | Self.waitingMask) == 0 {
                if word.weakCompareExchange(expected: value, desired: value + 1,
                                            successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
                    return true
                }
                continue
            }
            if wait.shouldAbandon() { return false }
            contendedPause(&attempt)
        }
    }

    func unlockRead() {
        word.subtract(1, ordering: .releasing)
    }

    /// Takes the lock for writing; returns false (not taken) when interrupted.
    func lockWrite(_ wait: LockWait) -> Bool {
        // Fast path: free.
        if word.compareExchange(expected: 0, desired: Self.writerHeld,
                                successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
            return true
        }
        word.add(Self.writerWaitingUnit, ordering: .relaxed)
        var attempt = 0
        while true {
            let value = word.load(ordering: .relaxed)
            if value & (Self.writerHeld | Self.readersMask) == 0 {
                let desired = (value - Self.writerWaitingUnit) | Self.writerHeld
                if word.weakCompareExchange(expected: value, desired: desired,
                                            successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
                    return true
                }
                continue
            }
            if wait.shouldAbandon() {
                word.subtract(Self.writerWaitingUnit, ordering: .relaxed)
                return false
            }
            contendedPause(&attempt)
        }
    }

    func unlockWrite() {
        word.subtract(Self.writerHeld, ordering: .releasing)
    }
}

/// A mutual-exclusion lock with an interruptible acquisition, modelled on the kernel's `struct
/// mutex` as the DSM lock (`pci_tsm_pf0.lock`, spec 6.1, 6.4) uses it. The protected state lives
/// inside (`Value`), so it can only be touched while the lock is held.
public final class KernelMutex<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked: `value` is only reached between a successful `held` exchange and its release,
    // which gives the same exclusion and ordering guarantees as Synchronization.Mutex.
    private let held = Atomic<Bool>(false)
    private var value: Value

    /// Creates an unlocked mutex guarding `value`.
    public init(_ value: consuming sending Value) {
        self.value = value
    }

    /// Runs `body` with exclusive access to the guarded value.
    ///
    /// - Throws: `EINTR` when `wait` is interruptible, the mutex is held, and a signal is pending;
    ///   errors of `body` pass through.
    @inline(__always)
    public func withLock<R>(_ wait: LockWait, _ body: (inout Value) throws(Errno) -> R) throws(Errno) -> R {
        guard lock(wait) else { throw .interrupted }
        defer { unlock() }
        return try body(&value)
    }

    /// Uninterruptible, non-throwing form.
    @inline(__always)
    public func withLock<R>(_ body: (inout Value) -> R) -> R {
        _ = lock(.uninterruptible)
        defer { unlock() }
        return body(&value)
    }

    /// True while some thread holds the mutex (tests).
    public var isLocked: Bool { held.load(ordering: .relaxed) }

    func lock(_ wait: LockWait) -> Bool {
        var attempt = 0
        while true {
            if held.weakCompareExchange(expected: false, desired: true,
                                        successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
                return true
            }
            if wait.shouldAbandon() { return false }
            contendedPause(&attempt)
        }
    }

    func unlock() {
        held.store(false, ordering: .releasing)
    }
}


/// A value guarded by a ``ReaderWriterLock``: many concurrent readers, one writer.
///
/// Used for tables read on every ioctl (the file table, an iommufd object table) so the read path
/// is two atomic operations.
public final class RWProtected<Value>: @unchecked Sendable {
    // @unchecked: `value` is only reached inside `read` (shared) or `write` (exclusive).
    private let lock = ReaderWriterLock()
    private var value: Value

    /// Creates the guard around `value`.
    public init(_ value: Value) { self.value = value }

    /// Runs `body` with shared access.
    @inline(__always)
    public func read<R>(_ body: (borrowing Value) throws(Errno) -> R) throws(Errno) -> R {
        _ = lock.lockRead(.uninterruptible)
        defer { lock.unlockRead() }
        return try body(value)
    }

    /// Runs `body` with shared access (non-throwing).
    @inline(__always)
    public func read<R>(_ body: (borrowing Value) -> R) -> R {
        _ = lock.lockRead(.uninterruptible)
        defer { lock.unlockRead() }
        return body(value)
    }

    /// Runs `body` with exclusive access.
    public func write<R>(_ body: (inout Value) throws(Errno) -> R) throws(Errno) -> R {
        _ = lock.lockWrite(.uninterruptible)
        defer { lock.unlockWrite() }
        return try body(&value)
    }

    /// Runs `body` with exclusive access (non-throwing).
    public func write<R>(_ body: (inout Value) -> R) -> R {
        _ = lock.lockWrite(.uninterruptible)
        defer { lock.unlockWrite() }
        return body(&value)
    }
}
