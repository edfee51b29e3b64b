import Synchronization
import Sync
import SystemPackage

/// One open `/dev/iommu` (`struct iommufd_ctx`, spec 1.1): the object table with per-context IDs.
///
/// ID rules (spec 1.2, 0.1): lowest free ID from 1 (at most 0x7FFF_FFFF); an allocation reserves
/// its ID at once (looks absent to lookups) and becomes visible only when finalized; a failed
/// ioctl frees it; a tombstone keeps an ID reserved until the context closes.
final class IOMMUFDContext: Sendable {
    enum Slot {
        case free
        case reserved
        case tombstone
        case live(IOMMUFDObject)

        /// The live object, nil for the other states.
        @inline(__always)
        var object: IOMMUFDObject? {
            if case .live(let object) = self { return object }
            return nil
        }
    }

    struct Table {
        /// Slot `i` holds id `i + 1`.
        var slots: [Slot] = []
    }

    static let maxID: UInt32 = 0x7FFF_FFFF

    let table = RWProtected(Table())
    /// Set when the file descriptor was closed while VFIO bindings keep the context alive.
    let fileClosed = Atomic<Bool>(false)
    /// VFIO devices bound to this context (each holds the context alive, as VFIO's file ref does).
    let boundDevices = Atomic<Int>(0)

    // MARK: Allocation

    /// Reserves the lowest free ID.
    func reserve() throws(Errno) -> UInt32 {
        try table.write { table throws(Errno) -> UInt32 in
            if let index = table.slots.firstIndex(where: { if case .free = $0 { true } else { false } }) {
                table.slots[index] = .reserved
                return UInt32(index + 1)
            }
            guard table.slots.count < Int(Self.maxID) else { throw .resourceBusy }
            table.slots.append(.reserved)
            return UInt32(table.slots.count)
        }
    }

    /// Makes a reserved ID's object visible (`iommufd_object_finalize`).
    func finalize(_ object: IOMMUFDObject) {
        table.write { table in
            let index = Int(object.id) - 1
            if index >= 0, index < table.slots.count { table.slots[index] = .live(object) }
        }
    }

    /// Releases a reserved ID (`iommufd_object_abort`).
    func abort(_ id: UInt32) {
        table.write { table in
            let index = Int(id) - 1
            guard index >= 0, index < table.slots.count, case .reserved = table.slots[index] else { return }
            table.slots[index] = .free
            while let last = table.slots.last, case .free = last { table.slots.removeLast() }
        }
    }

    // MARK: Lookup

    /// `iommufd_get_object(ictx, id, type)`: takes `users` and `wait_cnt`. `type == nil` is ANY.
    ///
    /// - Throws: `ENOENT` for an absent, reserved or tombstoned ID, another type, or `users` 0.
    @inline(__always)
    func lookup(_ id: UInt32, _ type: IOMMUFDObjectType?) throws(Errno) -> IOMMUFDObject {
        try table.read { table throws(Errno) -> IOMMUFDObject in
            let index = Int(id) &- 1
            guard index >= 0, index < table.slots.count, let object = table.slots[index].object else {
                throw .noSuchFileOrDirectory
            }
            if let type, object.type != type { throw .noSuchFileOrDirectory }
            guard object.counts.load(ordering: .relaxed) & 0xFFFF_FFFF > 0 else { throw .noSuchFileOrDirectory }
            // One `users` and one `wait_cnt` in one atomic add (`lock xadd`).
            object.counts.wrappingAdd(IOMMUFDObject.oneUser | IOMMUFDObject.oneWait, ordering: .acquiring)
            return object
        }
    }

    /// `iommufd_put_object`: drops what ``lookup(_:_:)`` took.
    @inline(__always)
    func release(_ object: IOMMUFDObject) {
        object.counts.wrappingSubtract(IOMMUFDObject.oneUser | IOMMUFDObject.oneWait, ordering: .releasing)
    }

    // MARK: Destroy

    /// IOMMU_DESTROY (spec 1.3): absent/reserved/tombstoned → `ENOENT`; `users != 1` → `EBUSY`;
    /// else remove and run the destroy hook.
    func destroy(_ id: UInt32, kernel: SimulatedKernel) throws(Errno) {
        let object = try table.write { table throws(Errno) -> IOMMUFDObject in
            let index = Int(id) &- 1
            guard index >= 0, index < table.slots.count, case .live(let object) = table.slots[index] else {
                throw .noSuchFileOrDirectory
            }
            guard object.users == 1 else { throw .resourceBusy }
            table.slots[index] = .free
            while let last = table.slots.last, case .free = last { table.slots.removeLast() }
            return object
        }
        object.put()
        object.dropWait()
        object.destroy(kernel: kernel)
    }

    /// Removes a live object whose owner is going away, waiting for transient holders (in-flight
    /// ioctls) to drop their references first; leaves a tombstone when asked (spec 1.7 forced
    /// destroy). Returns false if the object is not live.
    @discardableResult
    func forceRemove(_ object: IOMMUFDObject, tombstone: Bool, expectedUsers: Int = 1) -> Bool {
        var attempt = 0
        while true {
            let removed: Bool? = table.write { table -> Bool? in
                let index = Int(object.id) - 1
                guard index >= 0, index < table.slots.count, case .live(let live) = table.slots[index], live === object else {
                    return false
                }
                guard object.users <= expectedUsers else { return nil }
                table.slots[index] = tombstone ? .tombstone : .free
                if !tombstone { while let last = table.slots.last, case .free = last { table.slots.removeLast() } }
                return true
            }
            if let removed {
                if removed {
                    object.put()
                    object.dropWait()
                }
                return removed
            }
            contendedPause(&attempt)
        }
    }

    /// Closing the context (spec 1.1): repeatedly destroy every object whose `users` is exactly 1
    /// (leaves first) until none is left or no progress is possible; tombstones are cleared.
    func destroyAll(kernel: SimulatedKernel) {
        while true {
            let victims: [IOMMUFDObject] = table.write { table in
                var found: [IOMMUFDObject] = []
                for index in table.slots.indices {
                    if case .live(let object) = table.slots[index], object.users == 1 {
                        table.slots[index] = .free
                        found.append(object)
                    }
                }
                return found
            }
            if victims.isEmpty { break }
            for object in victims {
                object.put()
                object.dropWait()
                object.destroy(kernel: kernel)
            }
        }
        table.write { table in
            table.slots.removeAll { if case .tombstone = $0 { true } else { false } }
            while let last = table.slots.last, case .free = last { table.slots.removeLast() }
        }
    }

    // MARK: Introspection

    func snapshot() -> [IOMMUFDObjectSnapshot] {
        table.read { table in
            var result: [IOMMUFDObjectSnapshot] = []
            for (index, slot) in table.slots.enumerated() {
                let id = UInt32(index + 1)
                switch slot {
                case .free: continue
                case .reserved: result.append(IOMMUFDObjectSnapshot(id: id, state: .reserved))
                case .tombstone: result.append(IOMMUFDObjectSnapshot(id: id, state: .tombstone))
                case .live(let object): result.append(IOMMUFDObjectSnapshot(object))
                }
            }
            return result
        }
    }
}

/// One entry of an iommufd object table, as tests and tools see it (`kernel.objects(fd)`).
public struct IOMMUFDObjectSnapshot: Sendable, Hashable, CustomStringConvertible {
    /// The slot's state.
    public enum State: Sendable, Hashable {
        /// Allocated but not finalized (a failed or in-flight ioctl).
        case reserved
        /// Kept reserved after a forced vDEVICE destroy (spec 1.7).
        case tombstone
        /// A visible object.
        case live(IOMMUFDObjectType)
    }

    /// The object ID.
    public var id: UInt32
    /// Reserved, tombstone or live with a type.
    public var state: State
    /// `users` (the table's own reference included); 0 for reserved and tombstoned slots.
    public var users: Int = 0
    /// `wait_cnt`; 0 for reserved and tombstoned slots.
    public var waitCount: Int = 0
    /// Type-specific facts: IOAS id of a HWPT, `nest_parent`, HWPT of a vIOMMU, vIOMMU/device/virt_id
    /// of a vDEVICE, the device identity and VM of a DEVICE.
    public var details: [String: String] = [:]

    init(id: UInt32, state: State) {
        self.id = id
        self.state = state
    }

    init(_ object: IOMMUFDObject) {
        id = object.id
        state = .live(object.type)
        users = object.users
        waitCount = object.waitCount
        switch object {
        case let hwpt as HWPTPagingObject:
            details = ["ioas": "\(hwpt.ioas.id)", "nest_parent": "\(hwpt.nestParent)", "automatic": "\(hwpt.automatic)"]
        case let viommu as VIOMMUObject:
            details = ["hwpt": "\(viommu.hwpt.id)", "vm": viommu.vm?.description ?? "none", "type": "\(viommu.viommuType)"]
        case let vdevice as VDeviceObject:
            details = ["viommu": "\(vdevice.viommu.id)", "device": "\(vdevice.device.id)", "virt_id": "\(vdevice.virtID)"]
        case let device as DeviceObject:
            details = ["dev": device.identity.description, "vm": device.vm?.description ?? "none"]
        default:
            break
        }
    }

    /// The live object's type, nil for reserved/tombstone slots.
    public var type: IOMMUFDObjectType? {
        if case .live(let type) = state { return type }
        return nil
    }

    /// A one-line summary of the snapshot (its id and state: reserved, tombstone or the live object's details), for test failure messages.
    public var description: String {
        switch state {
        case .reserved: return "\(id): reserved"
        case .tombstone: return "\(id): tombstone"
        case .live(let type): return "\(id): \(type) users=\(users)"
        }
    }
}
