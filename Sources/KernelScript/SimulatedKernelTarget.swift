import Kernel
import SystemPackage
import UAPI

/// Builds ``ScriptTarget``s over `Kernel.SimulatedKernel`: the host behind `tsmctl script` and
/// the conformance suite.
///
/// A `platform` step becomes: `SimulatedKernel(profile:configuration:)`, the devices it names
/// (`"sample"` = `KernelPCIFunction.devsecSampleTopology()`, spec 7.1; `"platform:NAME"` = a
/// non-PCI device for the tsm-core "not PCI" paths of spec 5.2), and the TSMs (`link` = a
/// `SampleLinkTSM` registered as tsm0; `devsec` = ``ScriptDevsecTSM``).
public struct SimulatedKernelHost: ScriptHost {
    /// A host with no state: every ``makeTarget(_:baseDirectory:)`` builds an independent kernel.
    public init() {}

    /// A fresh kernel for a `platform` step (docs/script-format.md "platform"): uAPI profile
    /// (`revised` when nil), `config_tsm`, devices (`sample`, `platform:NAME`, or an `lspci -vvv -xxxx`
    /// dump resolved against `baseDirectory`) and TSMs (`link`, `devsec`, `link+devsec`; anything
    /// else registers none).
    /// - Throws: ``ScriptRunError`` for an unknown profile, an unreadable or unparsable dump, a
    ///   kernel that cannot be built (two functions at one address) or a TSM registration errno.
    public func makeTarget(_ platform: PlatformSpec, baseDirectory: String?) throws(ScriptRunError) -> any ScriptTarget {
        let profile: UAPIProfile
        do { profile = try UAPIProfile.named(platform.profile ?? UAPIProfile.default.name) } catch {
            throw ScriptRunError("\(error)")
        }
        var configuration = SimulatedKernel.Configuration()
        configuration.configTSM = platform.configTSM
        var functions: [KernelPCIFunction] = []
        var platformDevices: [String] = []
        for device in platform.devices {
            if device == "sample" {
                functions.append(contentsOf: KernelPCIFunction.devsecSampleTopology())
            } else if device.hasPrefix("platform:") {
                platformDevices.append(String(device.dropFirst("platform:".count)))
            } else {
                functions.append(contentsOf: try DumpDevices.functions(atPath: device, baseDirectory: baseDirectory))
            }
        }
        let kernel: SimulatedKernel
        do {
            kernel = try SimulatedKernel(profile: profile, configuration: configuration, functions: functions)
        } catch {
            throw ScriptRunError("cannot build the kernel: \(ScriptErrnoNames.name(of: error)) (two devices at one address?)")
        }
        for name in platformDevices { kernel.addPlatformDevice(name) }
        let sample = SampleLinkTSM()
        do {
            switch platform.tsm {
            case "link": _ = try kernel.pciTSM.register(link: sample)
            case "devsec": _ = try kernel.pciTSM.register(devsec: ScriptDevsecTSM())
            case "link+devsec":
                _ = try kernel.pciTSM.register(link: sample)
                _ = try kernel.pciTSM.register(devsec: ScriptDevsecTSM())
            default: break
            }
        } catch {
            throw ScriptRunError("cannot register the TSMs: \(ScriptErrnoNames.name(of: error))")
        }
        return SimulatedKernelTarget(kernel: kernel, sample: sample)
    }

    /// The Linux name of `errno` (`EINVAL`), or its number as text (``ScriptErrnoNames``).
    public func name(of errno: Errno) -> String { ScriptErrnoNames.name(of: errno) }

    /// The errno called `name` (`ENXIO`), or nil for a name ``ScriptErrnoNames`` does not know.
    public func errno(named name: String) -> Errno? { ScriptErrnoNames.errno(named: name) }
}

/// A minimal devsec (guest-side) TSM for scripts (spec 7.3): `lock` gives every function a devsec
/// context, `unlock` frees it. It exists so scripts can reach the "not a link TSM" paths (spec
/// 6.5 connect → ENXIO, 6.6 bind → ENXIO, 4.3 step 10 → ENXIO).
public final class ScriptDevsecTSM: PCITSMDevsecOps {
    /// A devsec TSM with no state, to register with `pciTSM.register(devsec:)`.
    public init() {}
    /// `devsec_ops.lock` (spec 7.3): every function gets a devsec context with no private data; never
    /// refuses.
    public func lock(tsm: TSMDevice, function: KernelPCIFunction) -> PCITSMProbeResult { .context(nil) }
    /// `devsec_ops.unlock` (spec 7.3): nothing to free.
    public func unlock(function: KernelPCIFunction) {}
}

/// One simulated kernel seen as a ``ScriptTarget``.
public final class SimulatedKernelTarget: ScriptTarget {
    /// The kernel (benchmarks call its `ioctl` directly).
    public let kernel: SimulatedKernel
    /// The sample link TSM registered as tsm0 (configured by `sample_tsm` steps).
    public let sample: SampleLinkTSM

    /// Locks held by `hold_lock` steps, by handle.
    private var holds: [UInt64: (hold: LockHold, global: Bool)] = [:]
    private var nextHold: UInt64 = 1

    init(kernel: SimulatedKernel, sample: SampleLinkTSM) {
        self.kernel = kernel
        self.sample = sample
    }

    deinit {
        for entry in holds.values { entry.hold.release() }
    }

    /// `mprotect` of the mapping starting at `address` (spec 3 step 5, 4.3 step 14: a read-only
    /// response buffer makes the kernel's copy-out fault with `EFAULT`). False when no mapping starts
    /// at `address`.
    public func protect(_ address: UInt64, writable: Bool) -> Bool {
        do { try kernel.memory.protect(address, writable: writable) } catch { return false }
        return true
    }

    /// Takes a pci-tsm lock until ``releaseLock(_:)`` (spec 6.4): `global` = `pci_tsm_rwsem` for
    /// writing; any other name = the DSM mutex of the function at `device` (PCI address text).
    /// - Returns: a handle, counting from 1.
    /// - Errors: `ENODEV` when `device` is missing, not a PCI address or no such function; `ENXIO`
    ///   when the function is not a DSM (no DSM mutex), from `holdDSMLock`.
    public func holdLock(_ lock: String, device: String?) -> Result<UInt64, Errno> {
        let hold: LockHold
        if lock == "global" {
            hold = kernel.pciTSM.holdGlobalLock()
        } else {
            guard let device, let address = PCIFunctionAddress(device) else { return .failure(.operationNotSupportedByDevice) }
            do { hold = try kernel.pciTSM.holdDSMLock(address) } catch { return .failure(error) }
        }
        let handle = nextHold
        nextHold += 1
        holds[handle] = (hold, lock == "global")
        return .success(handle)
    }

    /// Releases the lock `handle` names; false (nothing changed) for an unknown or released handle.
    public func releaseLock(_ handle: UInt64) -> Bool {
        guard let entry = holds.removeValue(forKey: handle) else { return false }
        entry.hold.release()
        return true
    }

    /// Whether any held lock is the global `pci_tsm_rwsem` (`global`) or a DSM mutex (`dsm`).
    public var heldLocks: (global: Bool, dsm: Bool) {
        (holds.values.contains { $0.global }, holds.values.contains { !$0.global })
    }

    /// The kernel's uAPI profile name (`revised`, `v5`, `rev-k`; kernel-uapi.md profiles).
    public var profileName: String { kernel.profile.name }

    /// The profile's command `name` with its request code and layout; nil when the profile has no
    /// such command (e.g. `IOMMU_VDEVICE_TSM_OP` under `v5`).
    public func command(named name: String) -> ScriptCommand? {
        kernel.profile.command(named: name).map(ScriptCommand.init)
    }

    /// Every command of the profile plus `VFIO_DEVICE_BIND_IOMMUFD`, in table order.
    public var commandNames: [String] { kernel.profile.commands.map(\.name) + [CommandSpec.vfioDeviceBindIOMMUFD.name] }

    /// Maps `size` zeroed bytes in the kernel's user address space (followed by an unmapped gap).
    /// - Throws: ``ScriptRunError`` naming the errno when the address space refuses (`EINVAL`: a size of
    ///   0 or below, or above 4 GiB).
    public func map(size: Int) throws(ScriptRunError) -> UInt64 {
        do { return try kernel.memory.map(size: size) } catch {
            throw ScriptRunError("cannot map \(size) bytes: \(ScriptErrnoNames.name(of: error))")
        }
    }

    /// Copies `bytes` to user memory at `address`; true for an empty write; false (with nothing
    /// written) when any byte is unmapped or read-only.
    public func write(_ bytes: [UInt8], at address: UInt64) -> Bool {
        if bytes.isEmpty { return true }
        do { try kernel.memory.write(address, bytes) } catch { return false }
        return true
    }

    /// Copies `count` bytes from user memory at `address`; nil when any byte is unmapped.
    public func read(at address: UInt64, count: Int) -> [UInt8]? {
        try? kernel.memory.read(address, count: count)
    }

    /// `open("/dev/iommu")`: the file descriptor of a new iommufd; never fails.
    public func openIOMMUFD() -> Result<Int32, Errno> { .success(kernel.openIOMMUFD()) }

    /// `close(fd)` of an iommufd, VM or VFIO device file.
    /// `EBADF` for a descriptor that is not open.
    public func close(fd: Int32) -> Result<Void, Errno> {
        do { try kernel.close(fd) } catch { return .failure(error) }
        return .success(())
    }

    /// `ioctl(fd, request, argument)` into the simulated kernel: `argument` is a user address;
    /// `signalPending` makes interruptible lock waits return `EINTR` (spec 6.4).
    /// - Returns: the non-negative return value (each command's, kernel-uapi.md; usually 0),
    ///   or the kernel's errno (`ENOTTY` unknown request, `EBADF`, `EFAULT`, `EINVAL`, ...; kernel-uapi.md).
    @inline(__always)
    public func ioctl(fd: Int32, request: UInt32, argument: UInt64, signalPending: Bool) -> Result<Int, Errno> {
        do {
            return .success(Int(try kernel.ioctl(fd, request, argument, signalPending: signalPending)))
        } catch {
            return .failure(error)
        }
    }

    /// Creates a VM (`KVM_CREATE_VM`) and returns its file descriptor; never fails.
    public func createVM() -> Result<UInt64, Errno> { .success(UInt64(kernel.createVM())) }

    /// Opens the VFIO device file of `device` (`bb:dd.f`, `dddd:bb:dd.f`, or `platform:NAME`).
    /// `ENODEV` when `device` is not a PCI address; the kernel's errno (`ENODEV` no such function, ...).
    public func vfioOpen(device: String) -> Result<Int32, Errno> {
        do {
            if device.hasPrefix("platform:") {
                return .success(try kernel.openVFIOPlatformDevice(String(device.dropFirst("platform:".count))))
            }
            guard let address = PCIFunctionAddress(device) else { return .failure(.operationNotSupportedByDevice) }
            return .success(try kernel.openVFIODevice(address))
        } catch {
            return .failure(error)
        }
    }

    /// `KVM_DEV_VFIO_FILE_ADD` of `vfio` to VM `vm`. `EBADF` when `vm` is above `Int32.max` or not a
    /// VM, or `vfio` is not open; `EINVAL` when `vfio` is not a VFIO file; `EEXIST` when already added.
    public func vfioAssociate(vfio: Int32, vm: UInt64) -> Result<Void, Errno> {
        guard vm <= UInt64(Int32.max) else { return .failure(.badFileDescriptor) }
        do { try kernel.kvmVFIOFileAdd(vm: Int32(vm), vfio: vfio) } catch { return .failure(error) }
        return .success(())
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD`: binds `vfio` to `iommufd` and returns `out_devid`; the kernel's
    /// errno (`EBADF` not open, `EINVAL` not a VFIO file, ...).
    public func vfioBind(vfio: Int32, iommufd: Int32) -> Result<UInt32, Errno> {
        do { return .success(try kernel.vfioBindIOMMUFD(vfio, iommufd: iommufd)) } catch { return .failure(error) }
    }

    /// Writes `input` (the TSM's name, `tsm0`) to `tsm/connect` of `device` (spec 6.5).
    /// `ENOENT` when `device` is not a PCI address (no such sysfs file); the kernel's errno
    /// (`ENXIO`, `EBUSY`, `EINTR` with `signalPending`, ...).
    public func connect(device: String, input: String, signalPending: Bool) -> Result<Void, Errno> {
        guard let address = PCIFunctionAddress(device) else { return .failure(.noSuchFileOrDirectory) }
        do { try kernel.pciTSM.connect(address, input, signalPending: signalPending) } catch { return .failure(error) }
        return .success(())
    }

    /// Writes `input` to `tsm/disconnect` of `device` (spec 6.5). `ENOENT` when `device` is not a PCI
    /// address; the kernel's errno otherwise.
    public func disconnect(device: String, input: String, signalPending: Bool) -> Result<Void, Errno> {
        guard let address = PCIFunctionAddress(device) else { return .failure(.noSuchFileOrDirectory) }
        do { try kernel.pciTSM.disconnect(address, input, signalPending: signalPending) } catch { return .failure(error) }
        return .success(())
    }

    /// Reads `tsm/<attribute>` of `device`: `connect` (alias `authenticated`), `bound` or `dsm`, the
    /// trailing newline removed. `ENOENT` for another attribute or a non-PCI-address `device`; the
    /// kernel's errno otherwise.
    public func sysfsRead(device: String, attribute: String) -> Result<String, Errno> {
        guard let address = PCIFunctionAddress(device) else { return .failure(.noSuchFileOrDirectory) }
        do {
            var text: String
            switch attribute {
            case "connect", "authenticated": text = try kernel.pciTSM.connectShow(address)
            case "bound": text = try kernel.pciTSM.boundShow(address)
            case "dsm": text = try kernel.pciTSM.dsmShow(address)
            default: return .failure(.noSuchFileOrDirectory)
            }
            if text.hasSuffix("\n") { text.removeLast() }
            return .success(text)
        } catch {
            return .failure(error)
        }
    }

    /// Writes `tsm` to `tsm/lock` of `device` (spec 7.3), giving the function a devsec context.
    /// `ENOENT` when `device` is not a PCI address; the kernel's errno otherwise.
    public func devsecLock(device: String, tsm: String) -> Result<Void, Errno> {
        guard let address = PCIFunctionAddress(device) else { return .failure(.noSuchFileOrDirectory) }
        do { try kernel.pciTSM.devsecLock(address, tsm) } catch { return .failure(error) }
        return .success(())
    }

    /// Applies a `sample_tsm` step (spec 7.4, docs/script-format.md "sample_tsm") to tsm0's
    /// `guest_req`: mode, own `tvm_arch` (`any`, `cca`, `sev`, `tdx`), response (`echo` or bytes),
    /// `residue` (bytes), `tsm_code`, errno and bind errno (`none` clears), stream count. Nil keeps the
    /// current setting; on an error nothing is changed.
    /// - Throws: ``ScriptRunError`` for an unknown mode, arch or errno name, or a residue above
    ///   `Int32.max`.
    public func configureSampleTSM(_ spec: SampleTSMSpec, residue: UInt64?, tsmCode: UInt64?) throws(ScriptRunError) {
        var mode: SampleLinkTSM.Mode?
        if let name = spec.mode {
            guard let parsed = SampleLinkTSM.Mode(rawValue: name) else { throw ScriptRunError("unknown sample TSM mode \(name)") }
            mode = parsed
        }
        var ownArch: UInt32??
        switch spec.arch {
        case nil: ownArch = nil
        case "any"?: ownArch = .some(nil)
        case "cca"?: ownArch = .some(TVMArch.cca.rawValue)
        case "sev"?: ownArch = .some(TVMArch.sev.rawValue)
        case "tdx"?: ownArch = .some(TVMArch.tdx.rawValue)
        case let other?: throw ScriptRunError("unknown arch \(other)")
        }
        func errno(_ name: String?) throws(ScriptRunError) -> Errno?? {
            guard let name else { return nil }
            if name == "none" { return .some(nil) }
            guard let value = ScriptErrnoNames.errno(named: name) else { throw ScriptRunError("unknown errno \(name)") }
            return .some(value)
        }
        let error = try errno(spec.errno)
        let bindError = try errno(spec.bindErrno)
        if let residue, residue > UInt64(Int32.max) { throw ScriptRunError("residue \(residue) does not fit an int") }
        sample.configure { configuration in
            if let mode { configuration.mode = mode }
            if let ownArch { configuration.ownArch = ownArch }
            switch spec.response {
            case nil: break
            case .echo?: configuration.response = .echo
            case let .bytes(bytes)?: configuration.response = bytes.isEmpty ? .none : .bytes(bytes)
            }
            if let residue { configuration.residue = Int(residue) }
            if let tsmCode { configuration.tsmCode = tsmCode }
            if let error { configuration.error = error }
            if let bindError { configuration.bindError = bindError }
            if let streams = spec.streams { configuration.streamCount = streams }
        }
    }
}
