#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Locks built on POSIX threads, so that the thread sanitizer sees every happens-before edge.
//
// Why not `Synchronization.Mutex` or hand-rolled atomics: on Linux, `Mutex` parks waiters with
// raw `futex` system calls that the thread sanitizer does not model, so it reports races on data
// that is in fact protected (see docs/kernel.md, "Locks and the thread sanitizer"). The
// sanitizer intercepts `pthread_mutex_*`, `pthread_rwlock_*` and `pthread_cond_*` and derives
// the happens-before order from them; every lock here is one of those or built on them.
//
// Uncontended cost: one `pthread_mutex_lock` / `pthread_mutex_unlock` pair (two atomic
// operations in glibc), no allocation after `init`.

/// A plain mutual-exclusion lock (`pthread_mutex_t`, default type) guarding a value of type
/// `Value`, which is reached only inside ``withLock(_:)``.
///
/// A drop-in for `Synchronization.Mutex` where the thread sanitizer must understand the lock.
/// The mutex lives in its own heap cell (a `pthread_mutex_t` must not move).
public final class Locked<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked: `value` is only reached between `pthread_mutex_lock` and `pthread_mutex_unlock`.
    // The value lives behind a pointer (not a stored `var`) so an access needs no dynamic
    // exclusivity check: the mutex already gives exclusivity.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let value: UnsafeMutablePointer<Value>

    /// Creates an unlocked lock guarding `value`.
    public init(_ value: consuming sending Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the guarded value; errors of `body` pass through.
    /// (`@inlinable`: callers in other modules get it specialized, with no generic thunks.)
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}

/// A reader/writer lock (`pthread_rwlock_t`) guarding a value: many concurrent readers or one
/// writer, always scoped (a lock can never be left held). Writers are preferred where the
/// platform allows it (glibc `PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP`), so a stream of
/// readers does not starve a writer.
public final class SharedLocked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only reached under the read lock (shared) or write lock (exclusive).
    @usableFromInline let lock: UnsafeMutablePointer<pthread_rwlock_t>
    @usableFromInline let value: UnsafeMutablePointer<Value>   // behind a pointer: no exclusivity checks

    /// Creates the guard around `value`.
    public init(_ value: Value) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        #if canImport(Glibc)
        var attributes = pthread_rwlockattr_t()
        pthread_rwlockattr_init(&attributes)
        pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
        pthread_rwlock_init(lock, &attributes)
        pthread_rwlockattr_destroy(&attributes)
        #else
        pthread_rwlock_init(lock, nil)
        #endif
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    /// Runs `body` with shared access; errors of `body` pass through.
    @inlinable @inline(__always)
    public func read<R, E: Error>(_ body: (borrowing Value) throws(E) -> R) throws(E) -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(value.pointee)
    }

    /// Runs `body` with exclusive access; errors of `body` pass through.
    @inlinable
    public func write<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body(&value.pointee)
    }
}

/// A reader/writer lock whose ownership is *logical* (counters guarded by a `pthread_mutex_t`,
/// waits on a `pthread_cond_t`), for locks that must offer what a raw pthread lock cannot:
///
/// - **abandonable waits**: a waiter polls `abandon` (every millisecond while it waits, and once
///   before it starts waiting) and gives up when it returns true — the kernel's `_interruptible`
///   / `_killable` lock variants; an uncontended acquisition never asks;
/// - **release by another thread** than the one that acquired (a lock handed to a test hook and
///   released later from wherever the hook is dropped);
/// - **writer preference**: while a writer waits, new readers wait too.
///
/// Exclusive-only use makes it a mutex. State: readers holding, writer holding, writers waiting,
/// all under the internal mutex, so the sanitizer orders every critical section after the one
/// before it.
public final class WaitableRWLock: @unchecked Sendable {
    // @unchecked: every stored field below `mutex` and `condition` is read and written only with
    // `mutex` held; the pointers themselves never change.
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let condition: UnsafeMutablePointer<pthread_cond_t>
    /// The counters, behind a pointer (not stored `var`s) so accesses need no dynamic
    /// exclusivity check; only touched with `mutex` held.
    @usableFromInline let counters: UnsafeMutablePointer<Counters>

    @usableFromInline struct Counters {
        @usableFromInline var readers = 0
        @usableFromInline var writer = false
        @usableFromInline var writersWaiting = 0
        @usableFromInline init() {}
    }

    /// Creates an unlocked lock.
    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        pthread_cond_init(condition, nil)
        counters = .allocate(capacity: 1)
        counters.initialize(to: Counters())
    }

    deinit {
        counters.deinitialize(count: 1)
        counters.deallocate()
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Takes the lock shared. Returns false (not taken) when it had to wait and `abandon`
    /// returned true.
    @inlinable @inline(__always)
    public func lockShared(abandon: () -> Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while counters.pointee.writer || counters.pointee.writersWaiting > 0 {
            if abandon() { return false }
            waitBriefly()
        }
        counters.pointee.readers += 1
        return true
    }

    /// Drops one shared hold.
    @inlinable @inline(__always)
    public func unlockShared() {
        pthread_mutex_lock(mutex)
        counters.pointee.readers -= 1
        let wake = counters.pointee.readers == 0 && counters.pointee.writersWaiting > 0
        pthread_mutex_unlock(mutex)
        if wake { pthread_cond_broadcast(condition) }
    }

    /// Takes the lock exclusively; false when it had to wait and `abandon` returned true.
    @inlinable @inline(__always)
    public func lockExclusive(abandon: () -> Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if !counters.pointee.writer && counters.pointee.readers == 0 {
            counters.pointee.writer = true
            return true
        }
        counters.pointee.writersWaiting += 1
        while counters.pointee.writer || counters.pointee.readers > 0 {
            if abandon() {
                counters.pointee.writersWaiting -= 1
                // Readers held back by this writer may go now.
                pthread_cond_broadcast(condition)
                return false
            }
            waitBriefly()
        }
        counters.pointee.writersWaiting -= 1
        counters.pointee.writer = true
        return true
    }

    /// Drops the exclusive hold.
    @inlinable @inline(__always)
    public func unlockExclusive() {
        pthread_mutex_lock(mutex)
        counters.pointee.writer = false
        pthread_mutex_unlock(mutex)
        // Waiting readers are not counted, so wake everyone.
        pthread_cond_broadcast(condition)
    }

    /// A snapshot: (readers holding, writer holding).
    public var holders: (readers: Int, writer: Bool) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return (counters.pointee.readers, counters.pointee.writer)
    }

    /// Waits on the condition (mutex held) for at most about one millisecond, so the caller can
    /// ask `abandon` again (a task's cancellation does not signal the condition).
    @usableFromInline func waitBriefly() {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var deadline = now
        deadline.tv_nsec += 1_000_000
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_nsec -= 1_000_000_000
            deadline.tv_sec += 1
        }
        _ = pthread_cond_timedwait(condition, mutex, &deadline)
    }
}
