import Synchronization
import Sync
import SystemPackage

/// `enum iommufd_object_type` (Linux include/linux/iommufd.h, spec 1.2).
public enum IOMMUFDObjectType: UInt32, Sendable, Hashable, CustomStringConvertible {
    /// An iommufd DEVICE (a bound VFIO device).
    case device = 1
    /// A paging hardware page table.
    case hwptPaging = 2
    /// A nested hardware page table.
    case hwptNested = 3
    /// An I/O address space.
    case ioas = 4
    /// An in-kernel access object.
    case access = 5
    /// A fault queue.
    case fault = 6
    /// A virtual IOMMU.
    case viommu = 7
    /// A virtual device (the guest-visible ID of a device behind a vIOMMU).
    case vdevice = 8
    /// A vEVENTQ.
    case veventq = 9
    /// A hardware queue.
    case hwQueue = 10

    /// The kernel's name without prefix: `DEVICE`, `HWPT_PAGING`, `IOAS`, `VIOMMU`, `VDEVICE`, ...
    public var description: String {
        switch self {
        case .device: "DEVICE"
        case .hwptPaging: "HWPT_PAGING"
        case .hwptNested: "HWPT_NESTED"
        case .ioas: "IOAS"
        case .access: "ACCESS"
        case .fault: "FAULT"
        case .viommu: "VIOMMU"
        case .vdevice: "VDEVICE"
        case .veventq: "VEVENTQ"
        case .hwQueue: "HW_QUEUE"
        }
    }
}

/// `struct iommufd_object`: type, id and the two lifetime counters of spec 1.2. The table holds
/// one `users` and one `wait_cnt`; a lookup takes one of each; objects that depend on another hold
/// a `users` on it (spec 1.3).
class IOMMUFDObject: @unchecked Sendable {
    // @unchecked: immutable apart from the atomics; subclasses document their own guards.
    let id: UInt32
    let type: IOMMUFDObjectType
    /// `users` (bits 0-31) and `wait_cnt` (bits 32-63) in one atomic word, both starting at 1
    /// (the table's), so a lookup takes both with one atomic add and drops both with one
    /// subtract. Neither count can reach 2^32 (one per holder).
    let counts = Atomic<UInt64>(1 | 1 << 32)
    /// One `users` in ``counts``.
    static var oneUser: UInt64 { 1 }
    /// One `wait_cnt` in ``counts``.
    static var oneWait: UInt64 { 1 << 32 }

    /// `users` now (acquire: a holder's writes before its put are visible).
    var users: Int { Int(truncatingIfNeeded: counts.load(ordering: .acquiring) & 0xFFFF_FFFF) }
    /// `wait_cnt` now.
    var waitCount: Int { Int(truncatingIfNeeded: counts.load(ordering: .relaxed) >> 32) }

    init(id: UInt32, type: IOMMUFDObjectType) {
        self.id = id
        self.type = type
    }

    /// The destroy hook, run after the object left the table (`ops->destroy`).
    func destroy(kernel: SimulatedKernel) {}

    /// Takes a `users` reference (a dependant).
    @inline(__always) func get() { counts.wrappingAdd(Self.oneUser, ordering: .relaxed) }
    /// Drops a `users` reference.
    @inline(__always) func put() { counts.wrappingSubtract(Self.oneUser, ordering: .releasing) }
    /// Drops a `wait_cnt` reference.
    @inline(__always) func dropWait() { counts.wrappingSubtract(Self.oneWait, ordering: .relaxed) }
}

/// IOAS (spec 1.4): bookkeeping only; IOVA mappings are not modelled.
final class IOASObject: IOMMUFDObject, @unchecked Sendable {
    init(id: UInt32) { super.init(id: id, type: .ioas) }
}

/// HWPT_PAGING (spec 1.4): holds a `users` reference on its IOAS.
final class HWPTPagingObject: IOMMUFDObject, @unchecked Sendable {
    let ioas: IOASObject
    let nestParent: Bool
    /// The IOMMU instance of the device it was allocated for.
    let iommu: IOMMUInstance
    /// Created automatically by an attach to an IOAS (`auto_domain`); destroyed with its device.
    let automatic: Bool

    init(id: UInt32, ioas: IOASObject, nestParent: Bool, iommu: IOMMUInstance, automatic: Bool) {
        self.ioas = ioas
        self.nestParent = nestParent
        self.iommu = iommu
        self.automatic = automatic
        super.init(id: id, type: .hwptPaging)
        ioas.get()
    }

    override func destroy(kernel: SimulatedKernel) { ioas.put() }
}

/// The IOMMU instance a device sits behind (`dev->iommu->iommu_dev`). EMU-KERNEL-5: one instance
/// per PCI domain, one for all platform devices, so "different IOMMU" (VDEVICE_ALLOC step 3) can
/// be exercised with two domains.
struct IOMMUInstance: Hashable, Sendable {
    let name: String
    init(_ identity: KernelDeviceIdentity) {
        switch identity {
        case .pci(let address): name = "pci-domain-\(address.domain)"
        case .platform: name = "platform"
        }
    }
}

/// DEVICE ("idevice", spec 1.5): created by the VFIO cdev bind, destroyed when the VFIO file
/// unbinds. VFIO holds an extra `users` (so IOMMU_DESTROY of a device id is always EBUSY).
final class DeviceObject: IOMMUFDObject, @unchecked Sendable {
    let identity: KernelDeviceIdentity
    /// The pci-tsm node for a PCI function; nil for a platform device.
    let node: PCIFunctionNode?
    /// ``node`` without a reference count, for the guest-request path. Lifetime: ``node`` (a
    /// `let` of this object) holds the same node strongly while this object exists.
    let borrowedNode: Unmanaged<PCIFunctionNode>?
    /// `idev->kvm_file->private_data`: the VM captured at bind time (spec 1.5), never changed.
    let vm: VMHandle?
    let iommu: IOMMUInstance
    /// `igroup->lock` and what it guards: the one vDEVICE, the `destroying` flag, the attachment.
    let group = KernelMutex(GroupState())

    struct GroupState {
        var vdevice: VDeviceObject?
        var destroying = false
        var attached: HWPTPagingObject?
    }

    init(id: UInt32, identity: KernelDeviceIdentity, node: PCIFunctionNode?, vm: VMHandle?) {
        self.identity = identity
        self.node = node
        self.borrowedNode = node.map { Unmanaged.passUnretained($0) }
        self.vm = vm
        self.iommu = IOMMUInstance(identity)
        super.init(id: id, type: .device)
        get()  // VFIO's reference
    }
}

/// VIOMMU (spec 1.6): holds its parent HWPT and the VM captured from the device named at
/// allocation; keeps the vDEVICEs by `virt_id`.
final class VIOMMUObject: IOMMUFDObject, @unchecked Sendable {
    let hwpt: HWPTPagingObject
    let vm: VMHandle?
    let iommu: IOMMUInstance
    let viommuType: UInt32
    /// `viommu->vdevs`: virt_id → vDEVICE id.
    let vdevices = Locked<[UInt64: UInt32]>([:])

    init(id: UInt32, hwpt: HWPTPagingObject, vm: VMHandle?, iommu: IOMMUInstance, viommuType: UInt32) {
        self.hwpt = hwpt
        self.vm = vm
        self.iommu = iommu
        self.viommuType = viommuType
        super.init(id: id, type: .viommu)
        hwpt.get()
    }

    override func destroy(kernel: SimulatedKernel) { hwpt.put() }
}

/// VDEVICE (spec 1.7): holds its vIOMMU (`users`) and its DEVICE (the lookup's `users` and
/// `wait_cnt`), and its `virt_id`.
final class VDeviceObject: IOMMUFDObject, @unchecked Sendable {
    let viommu: VIOMMUObject
    let device: DeviceObject
    let virtID: UInt64

    /// Takes over the caller's lookup reference on `device`; takes a `users` on `viommu`.
    init(id: UInt32, viommu: VIOMMUObject, device: DeviceObject, virtID: UInt64) {
        self.viommu = viommu
        self.device = device
        self.virtID = virtID
        super.init(id: id, type: .vdevice)
        viommu.get()
    }

    override func destroy(kernel: SimulatedKernel) {
        device.group.withLock { group in teardown(kernel: kernel, group: &group) }
        dropDevice()
    }

    /// `iommufd_vdevice_abort` with `igroup->lock` held: `tsm_unbind(idev->dev)` first (v5 4/5),
    /// then leave the vIOMMU's table, drop the vIOMMU, clear `idev->vdev`.
    func teardown(kernel: SimulatedKernel, group: inout DeviceObject.GroupState) {
        if let node = device.node { kernel.pciTSM.unbind(node) }
        viommu.vdevices.withLock { table in
            if table[virtID] == id { table.removeValue(forKey: virtID) }
        }
        viommu.put()
        if group.vdevice === self { group.vdevice = nil }
    }

    /// After the lock: drop the device reference (users and wait_cnt).
    func dropDevice() {
        device.put()
        device.dropWait()
    }
}
