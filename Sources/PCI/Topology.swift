/// One PCI function of a ``PCITopology``: a physical function read from a dump, or a virtual
/// function derived from its PF's SR-IOV capability.
///
/// A VF's facts (docs/pci.md, EMU-PCI-2): vendor ID and class code of its PF, device ID = the
/// PF's VF Device ID, BARs = its slices of the PF's VF BARs, capabilities = the PF's PCI Express
/// capability only (a VF has no configuration space image here), no extended capabilities.
public struct PCIFunction: Sendable, Hashable, Identifiable, CapabilityLists {
    /// Physical or virtual.
    public enum Role: Sendable, Hashable {
        /// A function with its own configuration space image.
        case physical
        /// VF number `index` (1-based, as the SR-IOV spec counts) of `physicalFunction`.
        case virtual(physicalFunction: BDF, index: Int)
    }

    /// The function's address.
    public let bdf: BDF
    /// Physical or virtual.
    public let role: Role
    /// Vendor ID.
    public let vendorID: UInt16
    /// Device ID.
    public let deviceID: UInt16
    /// 24-bit class code.
    public let classCode: UInt32
    /// Its BARs (for a VF, its slices of the VF BARs).
    public let bars: [BAR]
    /// Conventional capability list.
    public let capabilities: [Capability]
    /// Extended capability list.
    public let extendedCapabilities: [ExtendedCapability]
    /// The decoded configuration space; nil for a VF.
    public let config: ConfigSpace?
    /// The dump's header text, if any.
    public let title: String?

    /// The physical function of a configuration space image.
    public init(bdf: BDF, config: ConfigSpace, title: String? = nil) {
        self.init(bdf: bdf, role: .physical, vendorID: config.vendorID, deviceID: config.deviceID,
                  classCode: config.classCode, bars: config.bars, capabilities: config.capabilities,
                  extendedCapabilities: config.extendedCapabilities, config: config, title: title)
    }

    /// A function from its parts (for VFs and for tests building topologies by hand).
    public init(bdf: BDF, role: Role, vendorID: UInt16, deviceID: UInt16, classCode: UInt32, bars: [BAR],
                capabilities: [Capability], extendedCapabilities: [ExtendedCapability], config: ConfigSpace?,
                title: String? = nil) {
        self.bdf = bdf
        self.role = role
        self.vendorID = vendorID
        self.deviceID = deviceID
        self.classCode = classCode
        self.bars = bars
        self.capabilities = capabilities
        self.extendedCapabilities = extendedCapabilities
        self.config = config
        self.title = title
    }

    /// `bdf`.
    public var id: BDF { bdf }
    /// True for a VF (Linux `pdev->is_virtfn`).
    public var isVirtual: Bool { if case .virtual = role { true } else { false } }
    /// The PF of a VF; nil for a PF.
    public var physicalFunction: BDF? { if case .virtual(let pf, _) = role { pf } else { nil } }
    /// The 1-based VF number of a VF; nil for a PF.
    public var vfIndex: Int? { if case .virtual(_, let index) = role { index } else { nil } }
    /// The BAR with index `index` (the lower index of a 64-bit BAR), if implemented.
    public func bar(_ index: Int) -> BAR? { bars.first { $0.index == index } }
    /// Bus numbers when the function is a bridge (type 1 header).
    public var bridgeBuses: BridgeBuses? { config?.bridgeBuses }

    /// "Can be a DSM": Linux `is_pci_tsm_pf0()` (include/linux/pci-tsm.h; kernel-uapi.md §6.2):
    /// a PCIe function, not a VF, of type Endpoint, Upstream Switch Port or RC-integrated
    /// Endpoint, with an IDE capability or DevCap TEE-IO, that is function 0.
    public var canBeDSM: Bool {
        guard let express, !isVirtual else { return false }
        switch express.portType {
        case .endpoint, .upstreamPort, .rcIntegratedEndpoint: break
        default: return false
        }
        guard hasIDECapability || express.teeIOSupported else { return false }
        return bdf.function == 0
    }
}

/// The PCI functions of one or more dumps, by address, with each PF's VFs.
///
/// Built from an ``LspciDump``: every device becomes a physical function; every PF with an
/// SR-IOV capability gets VFs 1…N (N per ``VFCount``, default TotalVFs: EMU-PCI-1) with routing
/// ID `PF RID + First VF Offset + (n − 1) × VF Stride` (PCIe Base 6.x §9.3.3.10-11), which carries
/// into the bus number, and BAR slices `VF BAR base + (n − 1) × per-VF size`.
public struct PCITopology: Sendable, Hashable {
    /// How many VFs to create for each PF with SR-IOV.
    public enum VFCount: Sendable, Hashable {
        /// TotalVFs (the default, EMU-PCI-1: an emulated device with every VF set up).
        case total
        /// InitialVFs.
        case initial
        /// NumVFs as dumped (VFs the host had enabled; 0 in both shared dumps).
        case enabled
        /// Exactly this many; more than TotalVFs is ``TopologyError/vfCountExceedsTotal(pf:requested:total:)``.
        case exactly(Int)
        /// None.
        case none
    }

    /// Every function, ordered by address.
    public let functions: [PCIFunction]
    private let index: [BDF: Int]

    /// Builds the topology of a parsed dump.
    /// - Throws: ``TopologyError`` for VF routing IDs past 0xffff or on a taken address, too many
    ///   VFs asked, or a VF BAR slice past the end of the address space.
    public init(dump: LspciDump, vfs: VFCount = .total) throws(TopologyError) {
        try self.init(functions: dump.devices.map { PCIFunction(bdf: $0.bdf, config: $0.config, title: $0.title) },
                      vfs: vfs)
    }

    /// Parses `text` (``LspciDump/parse(_:)``) and builds its topology.
    /// - Throws: ``PCIDumpError``; topology faults come as ``PCIDumpError/topology(_:)``.
    public init(lspci text: String, vfs: VFCount = .total) throws(PCIDumpError) {
        let dump = try LspciDump.parse(text)
        do {
            try self.init(dump: dump, vfs: vfs)
        } catch {
            throw .topology(error)
        }
    }

    /// Builds a topology from functions, adding VFs to each PF with SR-IOV.
    ///
    /// Functions given with a ``PCIFunction/Role/virtual(physicalFunction:index:)`` role are kept
    /// as given, and their PF gets no generated VFs; so `PCITopology(functions: other.functions)`
    /// rebuilds `other` (add or drop functions in between to model hot-plug).
    /// - Throws: ``TopologyError``.
    public init(functions physical: [PCIFunction], vfs: VFCount = .total) throws(TopologyError) {
        var byBDF: [BDF: PCIFunction] = [:]
        for function in physical {
            guard byBDF[function.bdf] == nil else { throw .duplicateFunction(function.bdf) }
            byBDF[function.bdf] = function
        }
        let pfsWithGivenVFs = Set(physical.compactMap(\.physicalFunction))
        for pf in physical.sorted(by: { $0.bdf < $1.bdf }) where !pf.isVirtual {
            guard let sriov = pf.sriov, !pfsWithGivenVFs.contains(pf.bdf) else { continue }
            for vf in try Self.virtualFunctions(of: pf, sriov: sriov, count: vfs) {
                guard byBDF[vf.bdf] == nil else {
                    throw .vfRoutingIDCollision(pf: pf.bdf, vf: vf.vfIndex ?? 0, bdf: vf.bdf)
                }
                byBDF[vf.bdf] = vf
            }
        }
        functions = byBDF.values.sorted { $0.bdf < $1.bdf }
        var index: [BDF: Int] = [:]
        for (position, function) in functions.enumerated() { index[function.bdf] = position }
        self.index = index
    }

    /// The function at `bdf`.
    public subscript(bdf: BDF) -> PCIFunction? {
        index[bdf].map { functions[$0] }
    }

    /// The function at the address written `text` (`dddd:bb:dd.f` or `bb:dd.f`); nil when the
    /// text is not an address or nothing is there.
    public func function(_ text: String) -> PCIFunction? {
        BDF(text).flatMap { self[$0] }
    }

    /// VF `index` (1-based) of the PF at `pf`.
    public func virtualFunction(of pf: BDF, index: Int) -> PCIFunction? {
        functions.first { $0.physicalFunction == pf && $0.vfIndex == index }
    }

    /// The VFs of the PF at `pf`, by VF number.
    public func virtualFunctions(of pf: BDF) -> [PCIFunction] {
        functions.filter { $0.physicalFunction == pf }.sorted { ($0.vfIndex ?? 0) < ($1.vfIndex ?? 0) }
    }

    /// The physical functions, by address.
    public var physicalFunctions: [PCIFunction] { functions.filter { !$0.isVirtual } }

    // MARK: DSM discovery (kernel-uapi.md §6.2; Linux drivers/pci/tsm.c)

    /// The bridge whose secondary bus is `bdf`'s bus (the device's `dev.parent` in Linux), if
    /// that bridge is in the topology.
    public func parentBridge(of bdf: BDF) -> PCIFunction? {
        functions.first { $0.bdf.domain == bdf.domain && $0.bridgeBuses?.secondary == bdf.bus && $0.bdf != bdf }
    }

    /// Linux `find_dsm_dev()`: the function that is the DSM for `bdf`.
    ///
    /// 1. `bdf` itself when it ``PCIFunction/canBeDSM``;
    /// 2. else function 0 of its PF's slot (for a VF, its PF first), when `isDSM` says it is a DSM;
    /// 3. else the grandparent (the switch Upstream Port above the Downstream Port above `bdf`),
    ///    when it is a PCIe Upstream Port and `isDSM` says it is a DSM;
    /// 4. else nil (the kernel's link constructor then fails with ENXIO).
    ///
    /// - Parameter isDSM: Linux `is_dsm()`: whether a function has a DSM context (has connected).
    ///   The default answers ``PCIFunction/canBeDSM``, as for a platform where every capable
    ///   function has connected.
    public func findDSM(for bdf: BDF, isDSM: (PCIFunction) -> Bool = { $0.canBeDSM }) -> PCIFunction? {
        guard let function = self[bdf] else { return nil }
        if function.canBeDSM { return function }
        let pf = function.physicalFunction.flatMap { self[$0] } ?? function
        if let pf0 = pf.bdf.withFunction(0).flatMap({ self[$0] }), isDSM(pf0) { return pf0 }
        guard let parent = parentBridge(of: function.bdf), let grandparent = parentBridge(of: parent.bdf),
              grandparent.express?.portType == .upstreamPort, isDSM(grandparent)
        else { return nil }
        return grandparent
    }

    /// Linux `pci_tsm_walk_fns()`: the functions a DSM at `dsm` manages, in the order the kernel
    /// visits them after the DSM itself connects (the DSM is not in the list).
    ///
    /// Order: the VFs of function 0 of the DSM's slot; then for functions 1…7 of the slot, each
    /// function followed by its VFs; then, when the DSM is a PCIe Upstream Port and `isDSM(dsm)`,
    /// every function below it (Linux `pci_walk_bus()` of its subordinate bus: depth first, each
    /// bus's physical functions by devfn, each bridge followed by its buses, then the bus's VFs
    /// by routing ID, EMU-PCI-4).
    ///
    /// Like the kernel (`pci_get_slot()` finds whatever function has that devfn), a VF that sits
    /// in the DSM's slot (First VF Offset < 8) is visited as "function n" too, so it appears twice.
    public func dsmWalk(from dsm: BDF, isDSM: (PCIFunction) -> Bool = { $0.canBeDSM }) -> [PCIFunction] {
        var order: [PCIFunction] = []
        for number in UInt8(0)..<8 {
            guard let pf = dsm.withFunction(number).flatMap({ self[$0] }) else { continue }
            if number > 0 { order.append(pf) }
            order += virtualFunctions(of: pf.bdf)
        }
        if let function = self[dsm], function.express?.portType == .upstreamPort, isDSM(function),
           let buses = function.bridgeBuses {
            var visited: Set<UInt8> = []
            walkBus(buses.secondary, domain: dsm.domain, visited: &visited, into: &order)
        }
        return order
    }

    /// Linux `pci_tsm_walk_fns_reverse()`: exactly ``dsmWalk(from:isDSM:)`` reversed (the
    /// subordinate bus first, then functions 7…0 with each PF's VFs in reverse before the PF).
    public func dsmWalkReverse(from dsm: BDF, isDSM: (PCIFunction) -> Bool = { $0.canBeDSM }) -> [PCIFunction] {
        dsmWalk(from: dsm, isDSM: isDSM).reversed()
    }

    private func walkBus(_ bus: UInt8, domain: UInt32, visited: inout Set<UInt8>, into order: inout [PCIFunction]) {
        guard visited.insert(bus).inserted else { return }
        let onBus = functions.filter { $0.bdf.domain == domain && $0.bdf.bus == bus }
        for function in onBus where !function.isVirtual {
            order.append(function)
            if let buses = function.bridgeBuses, buses.secondary != 0 {
                walkBus(buses.secondary, domain: domain, visited: &visited, into: &order)
            }
        }
        order += onBus.filter(\.isVirtual)
    }

    // MARK: VFs

    private static func virtualFunctions(of pf: PCIFunction, sriov: SRIOVCapability, count: VFCount)
        throws(TopologyError) -> [PCIFunction]
    {
        let total = Int(sriov.totalVFs)
        let wanted: Int
        switch count {
        case .total: wanted = total
        case .initial: wanted = min(Int(sriov.initialVFs), total)
        case .enabled: wanted = min(Int(sriov.numVFs), total)
        case .exactly(let requested):
            guard requested >= 0, requested <= total else {
                throw .vfCountExceedsTotal(pf: pf.bdf, requested: requested, total: total)
            }
            wanted = requested
        case .none: wanted = 0
        }
        let vfCapabilities = pf.capabilities.filter { if case .express = $0.body { true } else { false } }
        var result: [PCIFunction] = []
        for number in stride(from: 1, through: wanted, by: 1) {
            let rid = Int(pf.bdf.routingID) + Int(sriov.firstVFOffset) + (number - 1) * Int(sriov.vfStride)
            guard rid <= 0xFFFF else {
                throw .vfRoutingIDOutOfRange(pf: pf.bdf, vf: number, sriovOffset: sriov.offset)
            }
            let bdf = BDF(domain: pf.bdf.domain, routingID: UInt16(rid))
            guard bdf != pf.bdf else { throw .vfRoutingIDCollision(pf: pf.bdf, vf: number, bdf: bdf) }
            if let earlier = result.last, earlier.bdf == bdf {
                throw .vfRoutingIDCollision(pf: pf.bdf, vf: number, bdf: bdf)
            }
            var bars: [BAR] = []
            for vfBAR in sriov.vfBARs {
                guard let size = vfBAR.size else { continue }
                let (step, overflowA) = size.multipliedReportingOverflow(by: UInt64(number - 1))
                let (address, overflowB) = vfBAR.address.addingReportingOverflow(step)
                guard !overflowA, !overflowB, address.addingReportingOverflow(size - 1).overflow == false else {
                    throw .vfBAROverflow(pf: pf.bdf, vf: number, index: vfBAR.index)
                }
                bars.append(BAR(index: vfBAR.index, registerOffset: vfBAR.registerOffset, space: vfBAR.space,
                                isPrefetchable: vfBAR.isPrefetchable, address: address, size: size,
                                sizeSource: vfBAR.sizeSource))
            }
            result.append(PCIFunction(
                bdf: bdf, role: .virtual(physicalFunction: pf.bdf, index: number), vendorID: pf.vendorID,
                deviceID: sriov.vfDeviceID, classCode: pf.classCode, bars: bars, capabilities: vfCapabilities,
                extendedCapabilities: [], config: nil, title: nil))
        }
        return result
    }
}

/// A register block inside a BAR: where the MSI-X table or PBA of a function lies.
public struct BARRegion: Hashable, Sendable {
    /// The BAR (BIR) holding the block.
    public let barIndex: Int
    /// Byte offset of the block inside the BAR.
    public let offset: UInt64
    /// Bus address of the block: BAR address + offset.
    public let address: UInt64
    /// Length of the block in bytes.
    public let length: UInt64
}

extension PCIFunction {
    /// The MSI-X vector table: BAR `tableBIR`, offset `tableOffset`, 16 bytes per vector. Nil
    /// without MSI-X, when that BAR is not implemented, or when the block wraps the address space.
    public var msixTable: BARRegion? {
        guard let msix else { return nil }
        return region(bir: msix.tableBIR, offset: msix.tableOffset, length: msix.tableByteCount)
    }

    /// The MSI-X Pending Bit Array: BAR `pbaBIR`, offset `pbaOffset`, one bit per vector in whole
    /// QWORDs. Nil as for ``msixTable``.
    public var msixPBA: BARRegion? {
        guard let msix else { return nil }
        return region(bir: msix.pbaBIR, offset: msix.pbaOffset, length: msix.pbaByteCount)
    }

    private func region(bir: UInt8, offset: UInt32, length: Int) -> BARRegion? {
        guard let bar = bar(Int(bir)) else { return nil }
        let (address, overflow) = bar.address.addingReportingOverflow(UInt64(offset))
        guard !overflow else { return nil }
        return BARRegion(barIndex: bar.index, offset: UInt64(offset), address: address, length: UInt64(length))
    }
}

extension ConfigSpace {
    /// The byte at `offset`; nil outside the image.
    public func byte(at offset: Int) -> UInt8? {
        Space(bytes: bytes).fits(offset, 1) ? Space(bytes: bytes).u8(offset) : nil
    }

    /// The little-endian 16-bit register at `offset`; nil when it does not lie inside the image.
    public func word(at offset: Int) -> UInt16? {
        Space(bytes: bytes).fits(offset, 2) ? Space(bytes: bytes).u16(offset) : nil
    }

    /// The little-endian 32-bit register at `offset`; nil when it does not lie inside the image.
    public func dword(at offset: Int) -> UInt32? {
        Space(bytes: bytes).fits(offset, 4) ? Space(bytes: bytes).u32(offset) : nil
    }
}
