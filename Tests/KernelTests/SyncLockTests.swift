import Sync
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The `Sync` locks after the atomic fast path (issue #4, deliverable 10): holds, exclusion,
/// writer preference, release from another thread, abandoned waits leaving no trace.
@Suite("Sync locks: WaitableRWLock fast path and slow path")
struct SyncLockTests {
    @Test("an exclusive hold shuts out readers and writers until released")
    func exclusive() {
        let lock = WaitableRWLock()
        #expect(lock.lockExclusive(abandon: { false }))
        #expect(lock.holders == (0, true))
        #expect(!lock.lockShared(abandon: { true }))
        #expect(!lock.lockExclusive(abandon: { true }))
        #expect(lock.holders == (0, true))
        lock.unlockExclusive()
        #expect(lock.holders == (0, false))
        #expect(lock.lockShared(abandon: { true }))
        #expect(lock.holders == (1, false))
        lock.unlockShared()
    }

    @Test("shared holds are counted; a writer waits for all of them")
    func shared() {
        let lock = WaitableRWLock()
        #expect(lock.lockShared(abandon: { false }))
        #expect(lock.lockShared(abandon: { false }))
        #expect(lock.holders == (2, false))
        #expect(!lock.lockExclusive(abandon: { true }))
        lock.unlockShared()
        #expect(!lock.lockExclusive(abandon: { true }))
        lock.unlockShared()
        #expect(lock.holders == (0, false))
        #expect(lock.lockExclusive(abandon: { true }))
        lock.unlockExclusive()
    }

    @Test("an abandoned wait leaves the lock as it was and the fast path usable")
    func abandonedWait() {
        let lock = WaitableRWLock()
        #expect(lock.lockExclusive(abandon: { false }))
        // Asked once before waiting (false), then again after a brief wait (true).
        var asked = 0
        #expect(!lock.lockShared(abandon: { asked += 1; return asked > 1 }))
        #expect(asked == 2)
        asked = 0
        #expect(!lock.lockExclusive(abandon: { asked += 1; return asked > 1 }))
        #expect(asked == 2)
        #expect(lock.holders == (0, true))
        lock.unlockExclusive()
        #expect(lock.lockShared(abandon: { true }))
        #expect(lock.lockShared(abandon: { true }))
        #expect(lock.holders == (2, false))
        lock.unlockShared()
        lock.unlockShared()
        #expect(lock.holders == (0, false))
    }

    @Test("a waiting writer holds new readers back, then gets the lock when the last reader leaves")
    func writerPreference() async {
        let lock = WaitableRWLock()
        #expect(lock.lockShared(abandon: { false }))
        let writer = Task.detached { () -> (readers: Int, writer: Bool) in
            _ = lock.lockExclusive(abandon: { false })
            let seen = lock.holders
            lock.unlockExclusive()
            return seen
        }
        // Until the writer is waiting, a new reader still gets in (and leaves at once).
        while lock.lockShared(abandon: { true }) {
            lock.unlockShared()
            sched_yield()
        }
        #expect(lock.holders == (1, false))
        lock.unlockShared()
        let seen = await writer.value
        #expect(seen == (0, true))
        #expect(lock.holders == (0, false))
    }

    @Test("an exclusive hold may be released by another thread")
    func releaseElsewhere() async {
        let lock = WaitableRWLock()
        #expect(lock.lockExclusive(abandon: { false }))
        await Task.detached { lock.unlockExclusive() }.value
        #expect(lock.holders == (0, false))
        #expect(lock.lockExclusive(abandon: { true }))
        lock.unlockExclusive()
    }

    @Test("Locked and SharedLocked exclude: concurrent increments are all counted")
    func exclusion() async {
        let locked = Locked(0)
        let shared = SharedLocked(0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<5_000 {
                        locked.withLock { $0 += 1 }
                        shared.write { $0 += 1 }
                        _ = shared.read { $0 }
                    }
                }
            }
        }
        #expect(locked.withLock { $0 } == 20_000)
        #expect(shared.read { $0 } == 20_000)
    }
}
