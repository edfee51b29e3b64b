#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

// Locks the thread sanitizer can follow: every happens-before edge comes from a pthread call it
// intercepts or from an atomic instruction it instruments.
//
// Why not `Synchronization.Mutex`: on Linux, `Mutex` parks waiters with raw `futex` system calls
// that the thread sanitizer does not model, so it reports races on data that is in fact
// protected (see docs/kernel.md, "Locks and the thread sanitizer"). The sanitizer intercepts
// `pthread_mutex_*` and `pthread_cond_*` and models C11/LLVM atomics (acquire/release). Every
// lock here is a `WaitableRWLock`: an uncontended hold is taken with one compare-and-exchange
// (acquire) and dropped with one atomic read-modify-write (release), inline; a contended one
// waits only on a `pthread_cond_t` under a `pthread_mutex_t`, never on a raw futex.
//
// Uncontended cost: two atomic instructions per hold, no call, no allocation after `init`.

/// A plain mutual-exclusion lock guarding a value of type `Value`, which is reached only inside
/// ``withLock(_:)``.
///
/// A drop-in for `Synchronization.Mutex` where the thread sanitizer must understand the lock:
/// built on ``WaitableRWLock`` used exclusively, so an uncontended `withLock` is one inline
/// compare-and-exchange and one atomic add (no call into libpthread), and a contended one waits
/// on a `pthread_cond_t` under a `pthread_mutex_t`.
public final class Locked<Value: ~Copyable>: @unchecked Sendable {
    // @unchecked: `value` is only reached between `lockExclusive` and `unlockExclusive`.
    // The value lives behind a pointer (not a stored `var`) so an access needs no dynamic
    // exclusivity check: the lock already gives exclusivity.
    @usableFromInline let lock = WaitableRWLock()
    @usableFromInline let value: UnsafeMutablePointer<Value>

    /// Creates an unlocked lock guarding `value`.
    public init(_ value: consuming sending Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with exclusive access to the guarded value; errors of `body` pass through.
    /// (`@inlinable`: callers in other modules get it specialized, with no generic thunks.)
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        _ = lock.lockExclusive(abandon: { false })
        defer { lock.unlockExclusive() }
        return try body(&value.pointee)
    }
}

/// A reader/writer lock guarding a value: many concurrent readers or one writer, always scoped
/// (a lock can never be left held). Writers are preferred (a waiting writer holds new readers
/// back), so a stream of readers does not starve a writer.
///
/// Built on ``WaitableRWLock``: an uncontended read or write is one inline compare-and-exchange
/// to take and one atomic read-modify-write to drop; waits are on a `pthread_cond_t`.
public final class SharedLocked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only reached under the read lock (shared) or write lock (exclusive).
    @usableFromInline let lock = WaitableRWLock()
    @usableFromInline let value: UnsafeMutablePointer<Value>   // behind a pointer: no exclusivity checks

    /// Creates the guard around `value`.
    public init(_ value: Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
    }

    /// Runs `body` with shared access; errors of `body` pass through.
    @inlinable @inline(__always)
    public func read<R, E: Error>(_ body: (borrowing Value) throws(E) -> R) throws(E) -> R {
        _ = lock.lockShared(abandon: { false })
        defer { lock.unlockShared() }
        return try body(value.pointee)
    }

    /// Runs `body` with exclusive access; errors of `body` pass through.
    @inlinable
    public func write<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        _ = lock.lockExclusive(abandon: { false })
        defer { lock.unlockExclusive() }
        return try body(&value.pointee)
    }
}

/// A reader/writer lock whose ownership is *logical* (a word of counters, not a pthread lock
/// owned by a thread), for locks that must offer what a raw pthread lock cannot:
///
/// - **abandonable waits**: a waiter polls `abandon` (every millisecond while it waits, and once
///   before it starts waiting) and gives up when it returns true — the kernel's `_interruptible`
///   / `_killable` lock variants; an uncontended acquisition never asks;
/// - **release by another thread** than the one that acquired (a lock handed to a test hook and
///   released later from wherever the hook is dropped);
/// - **writer preference**: while a writer waits, new readers wait too.
///
/// Exclusive-only use makes it a mutex.
///
/// State: one atomic word (bits 0-31: readers holding; bit 32: a writer holds; bit 33: someone
/// waits). An uncontended acquisition is one compare-and-exchange with acquire ordering, a
/// release one read-modify-write with release ordering, as the kernel's own `rw_semaphore` and
/// `mutex` fast paths are; the thread sanitizer models these atomics, so it orders every
/// critical section after the one before it. Waiting (the slow path) happens only under a
/// `pthread_mutex_t` on a `pthread_cond_t` — never a raw futex, which the sanitizer cannot
/// follow — and the waiter-count, writers-waiting count and the "someone waits" bit change only
/// with that mutex held.
///
/// No lost wake-up: a waiter sets the "someone waits" bit (a read-modify-write on the word) and
/// re-checks the word with the mutex held, then waits, which releases the mutex atomically. A
/// release is a read-modify-write on the same word, so it either comes before the bit (and the
/// waiter's re-check sees the lock free) or after it (and it sees the bit, takes the mutex —
/// which the waiter holds until it is waiting — and broadcasts). Waits also time out every
/// millisecond to poll `abandon`, so even a missed broadcast would only cost latency.
public final class WaitableRWLock: @unchecked Sendable {
    // @unchecked: `word` is atomic; every field behind `mutex`, `condition` and `counters` is read
    // and written only with `mutex` held; the pointers themselves never change.
    @usableFromInline let word = Atomic<UInt64>(0)
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let condition: UnsafeMutablePointer<pthread_cond_t>
    /// The waiter counts, behind a pointer (not stored `var`s) so accesses need no dynamic
    /// exclusivity check; only touched with `mutex` held.
    @usableFromInline let counters: UnsafeMutablePointer<Counters>

    /// Bits 0-31 of the word: readers holding.
    @usableFromInline static var readerMask: UInt64 { 0xFFFF_FFFF }
    /// Bit 32: a writer holds the lock.
    @usableFromInline static var writerBit: UInt64 { 1 << 32 }
    /// Bit 33: at least one thread waits (set and cleared with `mutex` held); forces new
    /// acquisitions onto the slow path and makes releases broadcast.
    @usableFromInline static var waitersBit: UInt64 { 1 << 33 }

    @usableFromInline struct Counters {
        /// Threads registered as waiting (readers and writers).
        @usableFromInline var waiters = 0
        /// Writers among them (new readers wait while this is non-zero: writer preference).
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
        let state = word.load(ordering: .relaxed)
        if state & (Self.writerBit | Self.waitersBit) == 0,
           word.compareExchange(expected: state, desired: state &+ 1,
                                successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
            return true
        }
        return lockSharedSlow(abandon: abandon)
    }

    /// Drops one shared hold.
    @inlinable @inline(__always)
    public func unlockShared() {
        let old = word.wrappingSubtract(1, ordering: .releasing).oldValue
        // Only the last reader out can let a waiter (necessarily a writer, or a reader queued
        // behind one) make progress.
        if old & Self.waitersBit != 0, old & Self.readerMask == 1 { wakeWaiters() }
    }

    /// Takes the lock exclusively; false when it had to wait and `abandon` returned true.
    @inlinable @inline(__always)
    public func lockExclusive(abandon: () -> Bool) -> Bool {
        if word.compareExchange(expected: 0, desired: Self.writerBit,
                                successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
            return true
        }
        return lockExclusiveSlow(abandon: abandon)
    }

    /// Drops the exclusive hold.
    @inlinable @inline(__always)
    public func unlockExclusive() {
        // The writer bit is set (we hold it), so subtracting it clears it: one `lock xadd`
        // (an atomic AND that returns the old value is a compare-and-exchange loop on x86).
        let old = word.wrappingSubtract(Self.writerBit, ordering: .releasing).oldValue
        // Waiting readers are not counted apart, so wake everyone.
        if old & Self.waitersBit != 0 { wakeWaiters() }
    }

    /// A snapshot: (readers holding, writer holding).
    public var holders: (readers: Int, writer: Bool) {
        let state = word.load(ordering: .acquiring)
        return (Int(state & Self.readerMask), state & Self.writerBit != 0)
    }

    // MARK: Slow paths (contention): all under `mutex`

    /// The shared acquisition when the fast path failed: waits (registered as a waiter) while a
    /// writer holds or waits.
    @usableFromInline func lockSharedSlow(abandon: () -> Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var registered = false
        while true {
            let state = word.load(ordering: .relaxed)
            if state & Self.writerBit == 0, counters.pointee.writersWaiting == 0 {
                if word.compareExchange(expected: state, desired: state &+ 1,
                                        successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
                    if registered { unregisterWaiter() }
                    return true
                }
                continue   // another reader or a release changed the word: look again
            }
            if abandon() {
                if registered { unregisterWaiter() }
                return false
            }
            if !registered {
                registerWaiter()
                registered = true
                continue   // re-check now that releases will see the bit
            }
            waitBriefly()
        }
    }

    /// The exclusive acquisition when the fast path failed: waits (registered as a writer
    /// waiting, which holds new readers back) while anyone holds the lock.
    @usableFromInline func lockExclusiveSlow(abandon: () -> Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var registered = false
        while true {
            let state = word.load(ordering: .relaxed)
            if state & (Self.writerBit | Self.readerMask) == 0 {
                if word.compareExchange(expected: state, desired: state | Self.writerBit,
                                        successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
                    if registered {
                        counters.pointee.writersWaiting -= 1
                        unregisterWaiter()
                    }
                    return true
                }
                continue
            }
            if abandon() {
                if registered {
                    counters.pointee.writersWaiting -= 1
                    unregisterWaiter()
                    // Readers held back by this writer may go now.
                    pthread_cond_broadcast(condition)
                }
                return false
            }
            if !registered {
                counters.pointee.writersWaiting += 1
                registerWaiter()
                registered = true
                continue
            }
            waitBriefly()
        }
    }

    /// Counts one more waiter and sets the waiters bit (`mutex` held).
    @usableFromInline func registerWaiter() {
        counters.pointee.waiters += 1
        word.bitwiseOr(Self.waitersBit, ordering: .acquiringAndReleasing)
    }

    /// Counts one waiter less; the last one clears the waiters bit (`mutex` held).
    @usableFromInline func unregisterWaiter() {
        counters.pointee.waiters -= 1
        if counters.pointee.waiters == 0 {
            word.bitwiseAnd(~Self.waitersBit, ordering: .acquiringAndReleasing)
        }
    }

    /// A release saw the waiters bit: broadcast with `mutex` held, so a waiter between its
    /// re-check and its wait cannot miss it.
    @usableFromInline func wakeWaiters() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
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
