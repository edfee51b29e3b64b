// A simulated confidential-computing host: a simulated kernel whose PCI functions come from an
// lspci dump, one architecture TSM driver registered as the link TSM, and, for every
// DSM-capable device of the dump, the `Device` module's DSM attached to the driver.
import Device
import Dispatch
import Firmware
import PCI
import Sync
import SystemPackage
import TDISP
import UAPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

/// The device identity and SPDM evidence of one DSM of an ``ArchPlatform`` (EMU-ARCH-4).
public struct PlatformDeviceEvidence: Sendable {
    /// The DSM's identity: key pair, certificate chain (vendor root → vendor intermediate →
    /// device leaf) and measurement record.
    public let identity: DeviceIdentity
    /// What the TSM firmware caches at connect: the SPDM certificate chain, the signed
    /// measurements report and the VCA.
    public let evidence: DeviceEvidence

    /// The DER of the chain's root: the trust anchor a guest verifies this device to
    /// (`EvidenceVerifier(trustAnchorDER:)`). Every DSM of one vendor on a platform shares it.
    public var trustAnchorDER: [UInt8] { identity.chain.derCertificates.first ?? [] }

    /// Creates the value from its fields.
    public init(identity: DeviceIdentity, evidence: DeviceEvidence) {
        self.identity = identity
        self.evidence = evidence
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
/// let anchor = platform.trustAnchorDER(for: PCIFunctionAddress("e1:00.0")!)  // the guest's EvidenceVerifier root
/// ```
///
/// Devices: each function of the dump (PFs and their VFs, docs/pci.md EMU-PCI-1) becomes a
/// ``KernelPCIFunction`` (``KernelPCIFunction/fromTopology(_:)``, EMU-KERNEL-11); each function that can
/// be a DSM (`is_pci_tsm_pf0`) gets `DSM(device:dsm:profile:entropy:)`, serving itself and the
/// functions of its walk, attached to the driver with the SPDM evidence of a device identity made
/// from a seed: certificate chain and a signed MEASUREMENTS report a guest verifies (EMU-ARCH-4).
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
    /// The identity and evidence attached with each DSM, by the DSM function's address (EMU-ARCH-4);
    /// empty when the platform was built with `evidence: false`.
    public let deviceEvidence: [PCIFunctionAddress: PlatformDeviceEvidence]
    /// The DSM address serving each function's FUNCTION_ID (the DSM's own and its walk's).
    private let servingDSM: [FunctionID: PCIFunctionAddress]

    /// Builds a platform from an `lspci -vvv -xxxx` dump.
    ///
    /// - Parameters:
    ///   - arch: the architecture of the TSM.
    ///   - text: the dump.
    ///   - uapiProfile: the kernel's uAPI profile (default `revised`).
    ///   - firmwareProfile: the §6.4 switches (default: the spec's for `arch`).
    ///   - dsmProfile: the DSM behaviour profile (default `standard`).
    ///   - seed: seeds the DSM nonces (`DSMEntropy.seeded(seed)`) and the device identities, so
    ///     runs repeat (certificate and measurement signatures excepted, EMU-ID-5); nil = system
    ///     entropy for the DSM and seed 0 for identities.
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
    ///
    /// - Parameter identities: the evidence to attach, by DSM address, made earlier with
    ///   ``makeEvidence(topology:seed:)`` (so a caller can time or share it); nil makes it here
    ///   when `evidence` is true. A DSM missing from a given dictionary gets empty evidence.
    /// - Throws: ``ArchPlatformError``: `.dump` never here; `.dsm` when a DSM cannot be built or
    ///   its identity cannot be made; `.kernel` when the kernel refuses the functions or the TSM.
    public init(arch: TVMArch, topology: PCITopology, uapiProfile: UAPIProfile = .default,
                firmwareProfile: FirmwareProfile? = nil, dsmProfile: DSMProfile = .standard,
                seed: UInt64? = 1, evidence: Bool = true,
                identities: [PCIFunctionAddress: PlatformDeviceEvidence]? = nil) throws(ArchPlatformError) {
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
        let attachedEvidence: [PCIFunctionAddress: PlatformDeviceEvidence]
        if let identities {
            attachedEvidence = identities
        } else if evidence {
            attachedEvidence = try Self.makeEvidence(topology: topology, seed: seed ?? 0)
        } else {
            attachedEvidence = [:]
        }
        var dsms: [PCIFunctionAddress: DSM] = [:]
        var serving: [FunctionID: PCIFunctionAddress] = [:]
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
            for served in dsm.functions where serving[served.functionID] == nil { serving[served.functionID] = address }
            driver.attach(dsm: dsm, at: address, evidence: attachedEvidence[address]?.evidence ?? DeviceEvidence(vca: Self.vca))
        }
        self.dsms = dsms
        self.servingDSM = serving
        self.deviceEvidence = attachedEvidence
        self.driver = driver
        do { tsmDevice = try kernel.pciTSM.register(link: driver) } catch { throw .kernel(error) }
    }

    /// The modelled VCA of EMU-ARCH-4: an SPDM 1.2 GET_VERSION / VERSION pair (12 bytes:
    /// `10 84 00 00`, `10 04 00 00 00 01 00 12`).
    public static let vca: [UInt8] = [0x10, 0x84, 0x00, 0x00, 0x10, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12]

    /// EMU-ARCH-4: the device identities and SPDM evidence of every DSM-capable function of
    /// `topology`, by DSM address. One certificate authority per PCI vendor
    /// (``certificateAuthority(vendorID:seed:)``), one identity per DSM
    /// (``identity(for:seed:authority:)``) with its signed measurements
    /// (``evidence(of:for:seed:)``). DSMs are independent, so they are made on as many threads
    /// as there are online processors.
    /// - Throws: ``ArchPlatformError/dsm(_:_:)`` naming the function whose identity failed (the
    ///   Device module's ``Device/IdentityError`` reason).
    public static func makeEvidence(topology: PCITopology, seed: UInt64) throws(ArchPlatformError) -> [PCIFunctionAddress: PlatformDeviceEvidence] {
        let candidates = topology.functions.filter(\.canBeDSM)
        var authorities: [UInt16: DeviceCertificateAuthority] = [:]
        for function in candidates where authorities[function.vendorID] == nil {
            do { authorities[function.vendorID] = try certificateAuthority(vendorID: function.vendorID, seed: seed) } catch {
                throw .dsm(PCIFunctionAddress(function.bdf), "vendor certificate authority: \(error)")
            }
        }
        let vendorAuthorities = authorities
        let results = Locked<[Int: Result<PlatformDeviceEvidence, ArchPlatformError>]>([:])
        let workers = max(1, min(candidates.count, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for index in stride(from: worker, to: candidates.count, by: workers) {
                let function = candidates[index]
                let address = PCIFunctionAddress(function.bdf)
                let outcome: Result<PlatformDeviceEvidence, ArchPlatformError>
                if let authority = vendorAuthorities[function.vendorID] {
                    do {
                        let identity = try Self.identity(for: function, seed: seed, authority: authority)
                        outcome = .success(PlatformDeviceEvidence(identity: identity, evidence: try Self.evidence(of: identity, for: function, seed: seed)))
                    } catch {
                        outcome = .failure(.dsm(address, "device identity: \(error)"))
                    }
                } else {
                    outcome = .failure(.dsm(address, "no vendor certificate authority"))
                }
                results.withLock { $0[index] = outcome }
            }
        }
        var all: [PCIFunctionAddress: PlatformDeviceEvidence] = [:]
        let finished = results.withLock { $0 }
        for index in candidates.indices {
            switch finished[index] {
            case .success(let made): all[PCIFunctionAddress(candidates[index].bdf)] = made
            case .failure(let error): throw error
            case nil: throw .dsm(PCIFunctionAddress(candidates[index].bdf), "device identity was not made")
            }
        }
        return all
    }

    /// EMU-ARCH-4: the certificate authority (root and intermediate CA) of PCI vendor `vendorID`
    /// on a platform seeded `seed`: `DeviceCertificateAuthority.make(seed:vendorID:)` with seed =
    /// the platform seed's 8 bytes (little-endian) ‖ ASCII `CA` ‖ the vendor ID's 2 bytes
    /// (little-endian). Throws the Device module's ``Device/IdentityError``.
    public static func certificateAuthority(vendorID: UInt16, seed: UInt64) throws(IdentityError) -> DeviceCertificateAuthority {
        var bytes = seedBytes(seed)
        bytes += Array("CA".utf8)
        bytes.append(UInt8(truncatingIfNeeded: vendorID))
        bytes.append(UInt8(truncatingIfNeeded: vendorID >> 8))
        return try DeviceCertificateAuthority.make(seed: bytes, vendorID: vendorID)
    }

    /// EMU-ARCH-4: the identity of the DSM `function`, issued by `authority`
    /// (`DeviceCertificateAuthority.issue(seed:vendorID:deviceID:serial:)`) with seed = the
    /// platform seed's 8 bytes then the routing ID's 2 (little-endian) and serial `TSMKIT<rid>`
    /// (routing ID in upper-case hex). Throws the Device module's ``Device/IdentityError``.
    public static func identity(for function: PCIFunction, seed: UInt64, authority: DeviceCertificateAuthority) throws(IdentityError) -> DeviceIdentity {
        var bytes = seedBytes(seed)
        bytes.append(UInt8(truncatingIfNeeded: function.bdf.routingID))
        bytes.append(UInt8(truncatingIfNeeded: function.bdf.routingID >> 8))
        let serial = "TSMKIT" + String(function.bdf.routingID, radix: 16, uppercase: true)
        return try authority.issue(seed: bytes, vendorID: function.vendorID, deviceID: function.deviceID, serial: serial)
    }

    /// EMU-ARCH-4: the SPDM evidence of `identity`: its slot-0 certificate chain (SPDM form,
    /// SHA-384 RootHash), its signed measurements report (docs/identity.md §6: GET_MEASUREMENTS
    /// ‖ MEASUREMENTS, signed with the leaf key; L1 starts at GET_MEASUREMENTS, the VCA is not
    /// signed in, EMU-ID-4, so a guest verifies it with `vcaLength` 0) and ``vca``. The
    /// requester nonce is `SeedDerivation.bytes(seed:label:count:)` (HKDF-SHA384, EMU-ID-1) of
    /// the identity seed (the platform seed's 8 bytes ‖ the routing ID's 2, little-endian) with
    /// label `measurements requester nonce`, 32 bytes; the responder nonce is
    /// `signMeasurements`' default. Throws ``Device/IdentityError`` (`signingFailed`).
    public static func evidence(of identity: DeviceIdentity, for function: PCIFunction, seed: UInt64) throws(IdentityError) -> DeviceEvidence {
        var input = seedBytes(seed)
        input.append(UInt8(truncatingIfNeeded: function.bdf.routingID))
        input.append(UInt8(truncatingIfNeeded: function.bdf.routingID >> 8))
        let nonce = SeedDerivation.bytes(seed: input, label: "measurements requester nonce", count: SignedMeasurements.nonceSize)
        let signed = try identity.signMeasurements(requesterNonce: nonce)
        return DeviceEvidence(certificateChain: identity.spdmCertificateChain, measurements: signed.report, vca: vca)
    }

    /// EMU-ARCH-4 for one function alone: its vendor's authority, its identity and its evidence
    /// (a platform makes each vendor's authority once, ``makeEvidence(topology:seed:)``).
    /// Throws the Device module's ``Device/IdentityError``.
    public static func deviceEvidence(for function: PCIFunction, seed: UInt64) throws(IdentityError) -> PlatformDeviceEvidence {
        let authority = try certificateAuthority(vendorID: function.vendorID, seed: seed)
        let identity = try Self.identity(for: function, seed: seed, authority: authority)
        return PlatformDeviceEvidence(identity: identity, evidence: try Self.evidence(of: identity, for: function, seed: seed))
    }

    /// ``deviceEvidence(for:seed:)``'s evidence; an identity that cannot be made leaves the
    /// certificate chain and measurements empty (``vca`` only).
    public static func evidence(for function: PCIFunction, seed: UInt64) -> DeviceEvidence {
        (try? deviceEvidence(for: function, seed: seed))?.evidence ?? DeviceEvidence(vca: vca)
    }

    private static func seedBytes(_ seed: UInt64) -> [UInt8] {
        stride(from: 0, to: 64, by: 8).map { UInt8(truncatingIfNeeded: seed >> UInt64($0)) }
    }

    /// The DER of the root certificate the evidence of the DSM at `dsm` chains to: the trust
    /// anchor for a guest's `EvidenceVerifier(trustAnchorDER:)`. Nil when the platform has no
    /// evidence for that DSM (`evidence: false`, or not a DSM).
    public func trustAnchorDER(for dsm: PCIFunctionAddress) -> [UInt8]? {
        deviceEvidence[dsm].map(\.trustAnchorDER)
    }

    /// The address of the DSM serving `function` (the DSM's own function or one of its walk), if any.
    public func dsmAddress(serving function: PCIFunctionAddress) -> PCIFunctionAddress? {
        function.functionID.flatMap { servingDSM[$0] }
    }

    /// The DSM serving `function` (the DSM's own function or one of its walk), if any.
    public func dsm(serving function: PCIFunctionAddress) -> DSM? {
        dsmAddress(serving: function).flatMap { dsms[$0] }
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
              let dsmAddress = dsmAddress(serving: function),
              let dsmID = dsmAddress.functionID
        else { return nil }
        return tdx.platform.serviceTDCM(function: id, dsm: dsmID, vm: tdx.firmwareVM(vm),
                                        request: TDX.TDCMBuffer(operation: operation).encoded())
    }
}
