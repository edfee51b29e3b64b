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
    public init() {}

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

    public func name(of errno: Errno) -> String { ScriptErrnoNames.name(of: errno) }

    public func errno(named name: String) -> Errno? { ScriptErrnoNames.errno(named: name) }
}

/// A minimal devsec (guest-side) TSM for scripts (spec 7.3): `lock` gives every function a devsec
/// context, `unlock` frees it. It exists so scripts can reach the "not a link TSM" paths (spec
/// 6.5 connect → ENXIO, 6.6 bind → ENXIO, 4.3 step 10 → ENXIO).
public final class ScriptDevsecTSM: PCITSMDevsecOps {
    public init() {}
    public func lock(tsm: TSMDevice, function: KernelPCIFunction) -> PCITSMProbeResult { .context(nil) }
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

    public func protect(_ address: UInt64, writable: Bool) -> Bool {
        do { try kernel.memory.protect(address, writable: writable) } catch { return false }
        return true
    }

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

    public func releaseLock(_ handle: UInt64) -> Bool {
        guard let entry = holds.removeValue(forKey: handle) else { return false }
        entry.hold.release()
        return true
    }

    public var heldLocks: (global: Bool, dsm: Bool) {
        (holds.values.contains { $0.global }, holds.values.contains { !$0.global })
    }

    public var profileName: String { kernel.profile.name }

    public func command(named name: String) -> ScriptCommand? {
        kernel.profile.command(named: name).map(ScriptCommand.init)
    }

    public var commandNames: [String] { kernel.profile.commands.map(\.name) + [CommandSpec.vfioDeviceBindIOMMUFD.name] }

    public func map(size: Int) throws(ScriptRunError) -> UInt64 {
        do { return try kernel.memory.map(size: size) } catch {
            throw ScriptRunError("cannot map \(size) bytes: \(ScriptErrnoNames.name(of: error))")
        }
    }

    public func write(_ bytes: [UInt8], at address: UInt64) -> Bool {
        if bytes.isEmpty { return true }
        do { try kernel.memory.write(address, bytes) } catch { return false }
        return true
    }

    public func read(at address: UInt64, count: Int) -> [UInt8]? {
        try? kernel.memory.read(address, count: count)
    }

    public func openIOMMUFD() -> Result<Int32, Errno> { .success(kernel.openIOMMUFD()) }

    public func close(fd: Int32) -> Result<Void, Errno> {
        do { try kernel.close(fd) } catch { return .failure(error) }
        return .success(())
    }

    @inline(__always)
    public func ioctl(fd: Int32, request: UInt32, argument: UInt64, signalPending: Bool) -> Result<Int, Errno> {
        do {
            return .success(Int(try kernel.ioctl(fd, request, argument, signalPending: signalPending)))
        } catch {
            return .failure(error)
        }
    }

    public func createVM() -> Result<UInt64, Errno> { .success(UInt64(kernel.createVM())) }

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

    public func vfioAssociate(vfio: Int32, vm: UInt64) -> Result<Void, Errno> {
        guard vm <= UInt64(Int32.max) else { return .failure(.badFileDescriptor) }
        do { try kernel.kvmVFIOFileAdd(vm: Int32(vm), vfio: vfio) } catch { return .failure(error) }
        return .success(())
    }

    public func vfioBind(vfio: Int32, iommufd: Int32) -> Result<UInt32, Errno> {
        do { return .success(try kernel.vfioBindIOMMUFD(vfio, iommufd: iommufd)) } catch { return .failure(error) }
    }

    public func connect(device: String, input: String, signalPending: Bool) -> Result<Void, Errno> {
        guard let address = PCIFunctionAddress(device) else { return .failure(.noSuchFileOrDirectory) }
        do { try kernel.pciTSM.connect(address, input, signalPending: signalPending) } catch { return .failure(error) }
        return .success(())
    }

    public func disconnect(device: String, input: String, signalPending: Bool) -> Result<Void, Errno> {
        guard let address = PCIFunctionAddress(device) else { return .failure(.noSuchFileOrDirectory) }
        do { try kernel.pciTSM.disconnect(address, input, signalPending: signalPending) } catch { return .failure(error) }
        return .success(())
    }

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

    public func devsecLock(device: String, tsm: String) -> Result<Void, Errno> {
        guard let address = PCIFunctionAddress(device) else { return .failure(.noSuchFileOrDirectory) }
        do { try kernel.pciTSM.devsecLock(address, tsm) } catch { return .failure(error) }
        return .success(())
    }

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
