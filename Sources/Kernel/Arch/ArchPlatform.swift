// A simulated confidential-computing host: a simulated kernel whose PCI functions come from an
// lspci dump, one architecture TSM driver registered as the link TSM, and, for every
// DSM-capable device of the dump, the `Device` module's DSM attached to the driver.
import Device
import Firmware
import PCI
import SystemPackage
import TDISP
import UAPI

/// Why an ``ArchPlatform`` could not be built.
public enum ArchPlatformError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The dump did not parse (the PCI module's message).
    case dump(String)
    /// A DSM could not be built for a DSM-capable function (the Device module's reason).
    case dsm(PCIFunctionAddress, String)
    /// The kernel refused the functions or the TSM registration.
    case kernel(Errno)

    /// A one-line message.
    public var description: String {
        switch self {
        case let .dump(reason): return "lspci dump: \(reason)"
        case let .dsm(address, reason): return "DSM of \(address): \(reason)"
        case let .kernel(errno): return "kernel: \(errno)"
        }
    }
}

/// A simulated platform of one architecture (CCA, SEV or TDX): the ``SimulatedKernel``, the
/// architecture's link TSM registered as `tsm0`, and the DSM of every DSM-capable device.
///
/// ```swift
/// let text = try String(contentsOfFile: "Examples/devices/tee-io-endpoint-sriov.lspci", encoding: .utf8)
/// let platform = try ArchPlatform(arch: .cca, lspci: text)          // tsm0 = CCA link TSM
/// let kernel = platform.kernel
/// try kernel.pciTSM.connect(PCIFunctionAddress("e1:00.0")!, "tsm0") // PDEV, TDISP version/caps
/// // VFIO open/associate/bind, IOAS, HWPT, vIOMMU, vDEVICE, TSM_OP BIND, TSM_REQ ... as usual
/// platform.deviceTDIState(PCIFunctionAddress("e1:04.0")!)          // the DSM's view: .configLocked
/// platform.firmwareTDIState(PCIFunctionAddress("e1:04.0")!)        // the firmware's view
/// platform.cca?.rsiVDEVDMAEnable(vf, vm: try kernel.vm(vmFD))       // guest → RMM directly
/// ```
///
/// Devices: each function of the dump (PFs and their VFs, docs/pci.md EMU-PCI-1) becomes a
/// ``KernelPCIFunction`` (``KernelPCIFunction/fromTopology(_:)``, EMU-KERNEL-11); each function that can
/// be a DSM (`is_pci_tsm_pf0`) gets `DSM(device:dsm:profile:entropy:)`, serving itself and the
/// functions of its walk, attached to the driver with SPDM evidence from a device identity made
/// from a seed (EMU-ARCH-4).
public final class ArchPlatform: Sendable {
    /// The architecture.
    public let arch: TVMArch
    /// The kernel.
    public let kernel: SimulatedKernel
    /// The link TSM driver (registered as ``tsmDevice``).
    public let driver: any ArchTSMDriver
    /// `tsm0`.
    public let tsmDevice: TSMDevice
    /// The PCI topology of the dump.
    public let topology: PCITopology
    /// The DSM of each DSM-capable function, by the DSM function's address.
    public let dsms: [PCIFunctionAddress: DSM]

    /// Builds a platform from an `lspci -vvv -xxxx` dump.
    ///
    /// - Parameters:
    ///   - arch: the architecture of the TSM.
    ///   - text: the dump.
    ///   - uapiProfile: the kernel's uAPI profile (default `revised`).
    ///   - firmwareProfile: the §6.4 switches (default: the spec's for `arch`).
    ///   - dsmProfile: the DSM behaviour profile (default `standard`).
    ///   - seed: seeds the DSM nonces (`DSMEntropy.seeded(seed)`) and the device identities, so
    ///     runs repeat (certificate signatures excepted, EMU-ID-5); nil = system entropy for the
    ///     DSM and seed 0 for identities.
    ///   - evidence: false leaves the evidence empty (no certificate generation: faster).
    /// - Throws: ``ArchPlatformError``.
    public convenience init(arch: TVMArch, lspci text: String, uapiProfile: UAPIProfile = .default,
                firmwareProfile: FirmwareProfile? = nil, dsmProfile: DSMProfile = .standard,
                seed: UInt64? = 1, evidence: Bool = true) throws(ArchPlatformError) {
        let topology: PCITopology
        do { topology = try PCITopology(lspci: text) } catch { throw .dump("\(error)") }
        try self.init(arch: arch, topology: topology, uapiProfile: uapiProfile, firmwareProfile: firmwareProfile,
                      dsmProfile: dsmProfile, seed: seed, evidence: evidence)
    }

    /// Builds a platform from a PCI topology (see ``init(arch:lspci:uapiProfile:firmwareProfile:dsmProfile:seed:evidence:)``).
    public init(arch: TVMArch, topology: PCITopology, uapiProfile: UAPIProfile = .default,
                firmwareProfile: FirmwareProfile? = nil, dsmProfile: DSMProfile = .standard,
                seed: UInt64? = 1, evidence: Bool = true) throws(ArchPlatformError) {
        self.arch = arch
        self.topology = topology
        let kernel: SimulatedKernel
        do {
            kernel = try SimulatedKernel(profile: uapiProfile, functions: KernelPCIFunction.fromTopology(topology))
        } catch {
            throw .kernel(error)
        }
        self.kernel = kernel
        let driver = ArchTSM.make(arch, profile: firmwareProfile, uapiProfile: uapiProfile)
        var dsms: [PCIFunctionAddress: DSM] = [:]
        for function in topology.functions where function.canBeDSM {
            let address = PCIFunctionAddress(function.bdf)
            let entropy: DSMEntropy = seed.map { .seeded($0 &+ UInt64(address.routingID)) } ?? .system
            let dsm: DSM
            do {
                dsm = try DSM(device: topology, dsm: function.bdf, profile: dsmProfile, entropy: entropy)
            } catch {
                throw .dsm(address, "\(error)")
            }
            dsms[address] = dsm
            let deviceEvidence = evidence ? Self.evidence(for: function, seed: seed ?? 0) : DeviceEvidence()
            driver.attach(dsm: dsm, at: address, evidence: deviceEvidence)
        }
        self.dsms = dsms
        self.driver = driver
        do { tsmDevice = try kernel.pciTSM.register(link: driver) } catch { throw .kernel(error) }
    }

    /// EMU-ARCH-4: the SPDM evidence of a device: the slot-0 certificate chain (SPDM form, SHA-384)
    /// and the measurement record of `Device.DeviceIdentity.make(seed:vendorID:deviceID:serial:)`
    /// with seed = the platform seed's 8 bytes then the routing ID's 2 (little-endian), and as VCA a
    /// modelled SPDM 1.2 GET_VERSION / VERSION pair (12 bytes: `10 84 00 00`, `10 04 00 00 00 01 00 12`).
    /// An identity that cannot be made leaves the certificate chain and measurements empty.
    public static func evidence(for function: PCIFunction, seed: UInt64) -> DeviceEvidence {
        var bytes = [UInt8]()
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: seed >> UInt64(shift))) }
        bytes.append(UInt8(truncatingIfNeeded: function.bdf.routingID))
        bytes.append(UInt8(truncatingIfNeeded: function.bdf.routingID >> 8))
        let vca: [UInt8] = [0x10, 0x84, 0x00, 0x00, 0x10, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12]
        let serial = "TSMKIT" + String(function.bdf.routingID, radix: 16, uppercase: true)
        guard let identity = try? DeviceIdentity.make(seed: bytes, vendorID: function.vendorID, deviceID: function.deviceID, serial: serial),
              let chain = try? identity.chain.spdmEncoded()
        else { return DeviceEvidence(vca: vca) }
        return DeviceEvidence(certificateChain: chain, measurements: identity.measurements.encoded(), vca: vca)
    }

    /// The DSM serving `function` (the DSM's own function or one of its walk), if any.
    public func dsm(serving function: PCIFunctionAddress) -> DSM? {
        guard let id = function.functionID else { return nil }
        return dsms.values.first { dsm in dsm.functions.contains { $0.functionID == id } }
    }

    /// The device's view: the TDISP state the DSM holds for `function`'s TDI (nil when no DSM
    /// serves it). Read from the model directly, not over TDISP, so reading changes nothing.
    public func deviceTDIState(_ function: PCIFunctionAddress) -> TDIState? {
        guard let id = function.functionID else { return nil }
        return dsm(serving: function)?.tdi(InterfaceID(functionID: id))?.state
    }

    /// The firmware's view of `function`'s TDI state (nil when the firmware has no TDI).
    public func firmwareTDIState(_ function: PCIFunctionAddress) -> TDIState? { driver.firmwareTDIState(function) }

    /// TDISP requests that reached the DSM at `dsm` so far.
    public func deviceMessages(_ dsm: PCIFunctionAddress) -> Int { driver.port(at: dsm)?.messages ?? 0 }

    /// TDISP requests that reached any DSM of the platform so far.
    public var deviceMessages: Int { dsms.keys.reduce(0) { $0 + deviceMessages($1) } }

    /// Installs a fault plan in the firmware (resetting its counters).
    public func setFaultPlan(_ plan: FaultPlan) { driver.setFaultPlan(plan) }

    /// The CCA driver, when the platform is CCA.
    public var cca: CCALinkTSM? { driver as? CCALinkTSM }
    /// The SEV driver, when the platform is SEV.
    public var sev: SEVLinkTSM? { driver as? SEVLinkTSM }
    /// The TDX driver, when the platform is TDX.
    public var tdx: TDXLinkTSM? { driver as? TDXLinkTSM }
}

extension ArchPlatform {
    /// The VMM's TDCM service for a TD's `TDG.VP.VMCALL<TDCM>` (arch-backends.md §3.1-§3.2,
    /// EMU-TDX-1/3): the read-only operations (CHECK_TEEIO_SUPP, GET_DEV_INFO, GET_TDI_REPORT,
    /// GET_TDI_STATE) answered by the TDX module model for `function` of the VM `vm`, with the
    /// DSM that serves the function. Returns the answered buffer (status COMPLETED 1 with data, or
    /// ERROR 2 with a TDCM error such as TDISP_MESSAGE 14); nil when the platform is not TDX, no DSM
    /// serves the function, or the operation is one the VMM routes through the kernel (BIND,
    /// START_TDI, UNBIND) or is unknown.
    public func tdcm(_ function: PCIFunctionAddress, vm: VMHandle, operation: UInt16) -> TDX.TDCMBuffer? {
        guard let tdx, let id = function.functionID,
              let dsmAddress = dsms.first(where: { _, dsm in dsm.functions.contains { $0.functionID == id } })?.key,
              let dsmID = dsmAddress.functionID
        else { return nil }
        return tdx.platform.serviceTDCM(function: id, dsm: dsmID, vm: tdx.firmwareVM(vm),
                                        request: TDX.TDCMBuffer(operation: operation).encoded())
    }
}
