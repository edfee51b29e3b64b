import Sync
import SystemPackage
import UAPI

/// An open VFIO device cdev (`/dev/vfio/devices/vfioN`) for one device (spec 1.5).
///
/// It records the VM the KVM VFIO pseudo-device associated with it (`KVM_DEV_VFIO_FILE_ADD`), and
/// its iommufd binding. The VM is captured into the DEVICE object **at bind time**; associating
/// the file with a VM after the bind does not change that binding (spec 1.5 ordering consequence).
final class VFIODeviceFile: Sendable {
    let identity: KernelDeviceIdentity
    let node: PCIFunctionNode?
    let state = Locked(State())

    struct State {
        /// The VM set by KVM_DEV_VFIO_FILE_ADD (cleared by FILE_DEL).
        var vm: VMHandle?
        /// The iommufd binding, if bound.
        var binding: Binding?
    }

    struct Binding {
        let context: IOMMUFDContext
        let device: DeviceObject
    }

    init(identity: KernelDeviceIdentity, node: PCIFunctionNode?) {
        self.identity = identity
        self.node = node
    }
}

/// A VM file (`KVM_CREATE_VM`): the VM handle and the VFIO files its KVM VFIO device holds.
///
/// The list holds the files themselves, as Linux virt/kvm/vfio.c takes a file reference on
/// `KVM_DEV_VFIO_FILE_ADD`: an identity that could outlive its file (an `ObjectIdentifier`) would
/// let a later file allocated at the same address look "already added" (`EEXIST`).
final class VMFile: Sendable {
    let vm: VMHandle
    let vfioFiles = Locked<[VFIODeviceFile]>([])
    init(vm: VMHandle) { self.vm = vm }
}

extension SimulatedKernel {
    /// `VFIO_DEVICE_BIND_IOMMUFD` on a VFIO cdev (Linux drivers/vfio/device_cdev.c), with the
    /// struct `vfio_device_bind_iommufd` at `argument`. Order:
    /// 1. copy in the first 16 bytes (`argsz`, `flags`, `iommufd`, `out_devid`) → `EFAULT`;
    /// 2. `argsz < 16`, unknown `flags` bits, or `iommufd < 0` → `EINVAL`; with the TOKEN flag,
    ///    `argsz < 24` → `EINVAL` (the token itself is not checked, EMU-KERNEL-10);
    /// 3. already bound → `EINVAL`;
    /// 4. `iommufd` not an open file → `EBADF`; not an iommufd → `EBADFD`;
    /// 5. the DEVICE object is created, capturing the file's VM (if any) now;
    /// 6. `out_devid` (4 bytes at offset 12) written → `EFAULT` (the binding is undone).
    func vfioBindIOMMUFDIoctl(_ file: VFIODeviceFile, argument: UInt64) throws(Errno) -> Int32 {
        let layout = StructLayout.vfioDeviceBindIOMMUFD
        let minimum = layout.field(named: "out_devid")?.end ?? 16
        let head = try memory.read(argument, count: minimum)
        let padded = head + [UInt8](repeating: 0, count: max(0, layout.size - head.count))
        let argsz = (try? layout.get("argsz", from: padded)) ?? 0
        let flags = (try? layout.get("flags", from: padded)) ?? 0
        let iommufd = Int32(truncatingIfNeeded: (try? layout.get("iommufd", from: padded)) ?? 0)
        guard argsz >= UInt64(minimum), flags & ~UInt64(vfioDeviceBindFlagToken) == 0, iommufd >= 0 else {
            throw .invalidArgument
        }
        if flags & UInt64(vfioDeviceBindFlagToken) != 0, argsz < UInt64(layout.size) { throw .invalidArgument }
        let devid = try bindVFIO(file, iommufd: iommufd)
        guard let offset = layout.field(named: "out_devid")?.offset else { return 0 }
        do throws(Errno) {
            try memory.write(argument + UInt64(offset), withUnsafeBytes(of: devid.littleEndian, Array.init))
        } catch {
            unbindVFIO(file)
            throw error
        }
        return 0
    }

    /// Steps 3-5 of the bind: returns the new DEVICE id.
    func bindVFIO(_ file: VFIODeviceFile, iommufd: Int32) throws(Errno) -> UInt32 {
        let alreadyBound = file.state.withLock { $0.binding != nil }
        guard !alreadyBound else { throw .invalidArgument }
        guard let open = self.file(iommufd) else { throw .badFileDescriptor }
        guard case .iommufd(let context) = open else { throw .fileDescriptorInBadState }
        let id = try context.reserve()
        let binding: VFIODeviceFile.Binding? = file.state.withLock { state in
            guard state.binding == nil else { return nil }
            let device = DeviceObject(id: id, identity: file.identity, node: file.node, vm: state.vm)
            let binding = VFIODeviceFile.Binding(context: context, device: device)
            state.binding = binding
            return binding
        }
        guard let binding else {
            context.abort(id)
            throw .invalidArgument
        }
        context.boundDevices.add(1, ordering: .relaxed)
        context.finalize(binding.device)
        return id
    }

    /// Undoes a binding (VFIO file close, or a failed bind): the device is marked destroying, its
    /// vDEVICE (if any) is destroyed — `tsm_unbind` first — and its ID **tombstoned**; the device
    /// is detached (an automatic HWPT goes with it) and the DEVICE object removed once in-flight
    /// users are gone (spec 1.7 forced destroy, 0.1).
    func unbindVFIO(_ file: VFIODeviceFile) {
        guard let binding = file.state.withLock({ state -> VFIODeviceFile.Binding? in
            defer { state.binding = nil }
            return state.binding
        }) else { return }
        let context = binding.context
        let device = binding.device
        let (vdevice, attached) = device.group.withLock { group -> (VDeviceObject?, HWPTPagingObject?) in
            group.destroying = true
            defer { group.attached = nil }
            return (group.vdevice, group.attached)
        }
        if let vdevice, context.forceRemove(vdevice, tombstone: true) {
            vdevice.destroy(kernel: self)
        }
        if let attached {
            attached.put()
            if attached.automatic, context.forceRemove(attached, tombstone: false) {
                attached.destroy(kernel: self)
            }
        }
        context.forceRemove(device, tombstone: false, expectedUsers: 2)
        device.put()  // VFIO's reference
        let remaining = context.boundDevices.subtract(1, ordering: .acquiringAndReleasing).newValue
        if remaining == 0, context.fileClosed.load(ordering: .acquiring) {
            context.destroyAll(kernel: self)
        }
    }
}
