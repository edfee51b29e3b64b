import Synchronization
import Sync
import SystemPackage
import UAPI

/// One PCI function as pci-tsm tracks it: the kernel's `struct pci_dev` with its `tsm` pointer.
///
/// Lock discipline (spec 6.4), which is why this class is `@unchecked Sendable`:
/// `context` is read with the global pci-tsm lock held (read or write) and written only with it
/// held for writing; a context's `tdi` is read and written only with its DSM's mutex held.
final class PCIFunctionNode: @unchecked Sendable {
    let function: KernelPCIFunction
    /// `pdev->tsm`. Guarded by the global pci-tsm lock.
    var context: PCITSMContext? {
        didSet { borrowedContext = context.map { Unmanaged.passUnretained($0) } }
    }
    /// ``context`` without a reference count, for the guest-request path: written only together
    /// with ``context`` (its `didSet`, global lock held for writing), so while a reader holds the
    /// global lock (read or write) ``context`` holds the same object strongly and cannot change.
    private(set) var borrowedContext: Unmanaged<PCITSMContext>?

    init(_ function: KernelPCIFunction) { self.function = function }
    var address: PCIFunctionAddress { function.address }
}

/// `struct pci_tsm` (and, for the DSM, `struct pci_tsm_pf0` with its mutex, `dsmLock`).
final class PCITSMContext: @unchecked Sendable {
    let node: PCIFunctionNode
    let dsm: PCIFunctionNode
    let tsm: TSMDevice
    let driverData: (any Sendable)?
    /// The DSM lock (`pci_tsm_pf0.lock`), present on the DSM's own context only.
    let dsmLock: KernelMutex<Void>?
    /// `to_pci_tsm_pf0()->lock`: the mutex of this context's DSM — its own ``dsmLock`` for the
    /// DSM, else the DSM context's, taken when this context is made (global lock held). A
    /// function's context only exists while its DSM's context does (`connect` probes dependents
    /// after the DSM context is stored; `disconnect` and TSM unregistration remove dependents
    /// first), so this is the same mutex the kernel would reach through `dsm->tsm`, found without
    /// walking (and reference counting) `dsm.context` on every request. Nil only when the DSM had
    /// no DSM context, which cannot happen under the global lock ("no context", `ENXIO`).
    let dsmMutex: KernelMutex<Void>?
    /// ``dsmMutex`` without a reference count, for the guest-request path. Lifetime: this
    /// context's own ``dsmMutex`` (a `let`) holds the same mutex strongly for as long as this
    /// context exists, so whoever holds (or borrows) the context may use it.
    let borrowedDSMMutex: Unmanaged<KernelMutex<Void>>?
    /// The owning TSM's link ops (`tsm.linkOps`, fixed for the TSM's life), nil for a devsec
    /// context: read once here rather than through `tsm` on every request.
    let linkOps: (any PCITSMLinkOps)?
    /// `pdev->tsm->tdi`. Guarded by the DSM's `dsmLock`.
    var tdi: PCITDI? {
        didSet { borrowedTDI = tdi.map { Unmanaged.passUnretained($0) } }
    }
    /// ``tdi`` without a reference count, for the guest-request path: written only together with
    /// ``tdi`` (its `didSet`, DSM mutex held), so while a reader holds the DSM mutex ``tdi``
    /// holds the same object strongly and cannot change.
    private(set) var borrowedTDI: Unmanaged<PCITDI>?

    init(node: PCIFunctionNode, dsm: PCIFunctionNode, tsm: TSMDevice, driverData: (any Sendable)?) {
        self.node = node
        self.dsm = dsm
        self.tsm = tsm
        self.driverData = driverData
        let own: KernelMutex<Void>? = node === dsm ? KernelMutex(()) : nil
        self.dsmLock = own
        let mutex = own ?? dsm.context?.dsmLock
        self.dsmMutex = mutex
        self.borrowedDSMMutex = mutex.map { Unmanaged.passUnretained($0) }
        self.linkOps = tsm.linkOps
    }

    var linkContext: PCITSMLinkContext {
        PCITSMLinkContext(function: node.function, dsm: dsm.function, tsm: tsm, driverData: driverData)
    }
}

/// The PCI TSM core (Linux drivers/pci/tsm.c) and the tsm-core class (drivers/virt/coco/
/// tsm-core.c): TSM registration, DSM discovery, connect/disconnect, bind/unbind/guest request,
/// the sysfs attributes, with the locks of spec 6.4.
///
/// Reached through ``SimulatedKernel`` (`kernel.pciTSM`). Every public method returns the errno
/// of the spec section it cites and changes nothing when it fails.
public final class PCITSMCore: Sendable {
    /// The global `pci_tsm_rwsem`.
    let rwsem = ReaderWriterLock()
    /// State guarded by `rwsem` (registered TSMs, counts). Only touched with `rwsem` held.
    private let registry: RWState
    /// The PCI devices, by address (the kernel's device list). Its own lock; nodes are stable.
    private let devices = Locked<[PCIFunctionAddress: PCIFunctionNode]>([:])
    /// Which (op, arch) pairs the profile allows (pci-tsm's duplicate check, spec 4.3 step 7).
    let profile: UAPIProfile
    /// `pci_tsm_link_count`: read without the lock by sysfs visibility (group visibility is
    /// evaluated outside `pci_tsm_rwsem`), written with the lock held for writing.
    private let linkCount = Atomic<Int>(0)

    /// The profile's TSM_REQ layout offsets and cached (op, arch) matrix.
    let requestFields: TSMRequestFields

    init(profile: UAPIProfile) {
        self.profile = profile
        self.requestFields = TSMRequestFields(profile)
        self.registry = RWState()
    }

    final class RWState: @unchecked Sendable {
        // @unchecked: guarded by PCITSMCore.rwsem.
        var tsms: [TSMDevice] = []
        var nextID = 0
        var devsecCount = 0
    }

    // MARK: Devices

    /// Adds PCI functions (hot-add, spec 6.5 "Device hot-add"): a function whose DSM already has
    /// a context is probed at once, under the read lock.
    ///
    /// - Throws: `EEXIST` if an address is already present (nothing is added then).
    public func addFunctions(_ functions: [KernelPCIFunction]) throws(Errno) {
        let nodes = functions.map(PCIFunctionNode.init)
        try devices.withLock { table throws(Errno) in
            var seen = Set<PCIFunctionAddress>()
            for node in nodes {
                guard table[node.address] == nil, seen.insert(node.address).inserted else { throw .fileExists }
            }
            for node in nodes { table[node.address] = node }
        }
        for node in nodes { initFunction(node) }
    }

    /// The function at `address`, if present.
    public func function(_ address: PCIFunctionAddress) -> KernelPCIFunction? {
        node(address)?.function
    }

    /// Every function, in address order.
    public var functions: [KernelPCIFunction] {
        devices.withLock { $0.values.map(\.function) }.sorted { $0.address < $1.address }
    }

    func node(_ address: PCIFunctionAddress) -> PCIFunctionNode? {
        devices.withLock { $0[address] }
    }

    /// Removes a function (device removal: `pci_tsm_destroy`, full teardown under the write lock).
    ///
    /// - Throws: `ENODEV` when absent.
    func removeFunction(_ address: PCIFunctionAddress) throws(Errno) {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        rwsem.withWrite {
            destroyContext(of: node, departing: nil)
        }
        devices.withLock { _ = $0.removeValue(forKey: address) }
    }

    /// `pci_tsm_init()`: probe a new function whose DSM is connected.
    private func initFunction(_ node: PCIFunctionNode) {
        rwsem.withRead {
            guard node.context == nil, linkCount.load(ordering: .relaxed) > 0 else { return }
            guard let dsm = findDSM(node), let dsmContext = dsm.context else { return }
            probeFunction(node, tsm: dsmContext.tsm)
        }
    }

    // MARK: Registration (spec 5.1, 6.3)

    /// `tsm_register()`: registers a TSM implementing exactly one of the link or devsec op groups.
    ///
    /// - Returns: the new `tsmN` device (ids from 0, lowest free).
    /// - Throws: `EINVAL` when both or neither op group is given (spec 6.3).
    public func register(link: (any PCITSMLinkOps)? = nil, devsec: (any PCITSMDevsecOps)? = nil) throws(Errno) -> TSMDevice {
        guard (link == nil) != (devsec == nil) else { throw .invalidArgument }
        return rwsem.withWrite { () -> TSMDevice in
            let used = Set(registry.tsms.map(\.id))
            var id = 0
            while used.contains(id) { id += 1 }
            let tsm = TSMDevice(id: id, link: link, devsec: devsec)
            registry.tsms.append(tsm)
            if link != nil { linkCount.add(1, ordering: .relaxed) } else { registry.devsecCount += 1 }
            return tsm
        }
    }

    /// `tsm_unregister()`: tears down every context the TSM owns (walking devices in reverse:
    /// a DSM is fully disconnected, other functions are unbound and removed), then forgets it.
    ///
    /// - Throws: `ENODEV` if the TSM is not registered.
    public func unregister(_ tsm: TSMDevice) throws(Errno) {
        try rwsem.withWrite(.uninterruptible) { () throws(Errno) in
            guard let index = registry.tsms.firstIndex(of: tsm) else { throw .operationNotSupportedByDevice }
            if tsm.kind == .link { linkCount.subtract(1, ordering: .relaxed) } else { registry.devsecCount -= 1 }
            for node in allNodes().reversed() { destroyContext(of: node, departing: tsm) }
            registry.tsms.remove(at: index)
        }
    }

    /// The registered TSMs, by id.
    public var tsms: [TSMDevice] {
        rwsem.withRead { registry.tsms.sorted { $0.id < $1.id } }
    }

    private func allNodes() -> [PCIFunctionNode] {
        devices.withLock { Array($0.values) }.sorted { $0.address < $1.address }
    }

    /// `__pci_tsm_destroy()`; write lock held.
    private func destroyContext(of node: PCIFunctionNode, departing: TSMDevice?) {
        guard let context = node.context else { return }
        if let departing, departing !== context.tsm { return }
        if context.tsm.kind == .link, node.function.canBeDSM, context.dsm === node {
            disconnectLocked(node)
        } else {
            // pci_tsm_fn_exit: unbind the function, then remove its context.
            unbindLocked(node)
            removeContext(node)
        }
    }

    // MARK: DSM discovery (spec 6.2)

    /// `find_dsm_dev()`. Caller holds the global lock.
    func findDSM(_ node: PCIFunctionNode) -> PCIFunctionNode? {
        if node.function.canBeDSM { return node }
        let pf = node.function.physicalFunction.flatMap { self.node($0) } ?? node
        guard let pf0 = self.node(pf.address.withFunction(0)) else { return nil }
        if isDSM(pf0) { return pf0 }
        // The first upstream port above the endpoint: the parent bridge's parent.
        guard let parent = node.function.parentBridge.flatMap({ self.node($0) }),
              let grandparent = parent.function.parentBridge.flatMap({ self.node($0) }),
              grandparent.function.expressType == .upstreamPort
        else { return nil }
        return isDSM(grandparent) ? grandparent : nil
    }

    private func isDSM(_ node: PCIFunctionNode) -> Bool {
        guard let context = node.context else { return false }
        return context.dsm === node
    }

    /// The functions a DSM manages, in the order of `pci_tsm_walk_fns` (spec 6.2): the VFs of
    /// function 0, then functions 1...7 each followed by its VFs, then (for an Upstream Port DSM)
    /// every device below it. `walkReverse` is the exact reverse.
    func dependents(of dsm: PCIFunctionNode) -> [PCIFunctionNode] {
        let all = allNodes()
        var order: [PCIFunctionNode] = []
        for fn in UInt8(0)...7 {
            guard let pf = all.first(where: { $0.address == dsm.address.withFunction(fn) && !$0.function.isVirtualFunction }) else { continue }
            if fn > 0 { order.append(pf) }
            order += all.filter { $0.function.physicalFunction == pf.address }
        }
        if dsm.function.expressType == .upstreamPort, isDSM(dsm) {
            order += subtree(below: dsm, in: all)
        }
        return order
    }

    /// Devices below `bridge`, depth first in bus order (`pci_walk_bus` of its subordinate bus).
    private func subtree(below bridge: PCIFunctionNode, in all: [PCIFunctionNode]) -> [PCIFunctionNode] {
        var result: [PCIFunctionNode] = []
        for child in all where child.function.parentBridge == bridge.address && child !== bridge {
            result.append(child)
            result += subtree(below: child, in: all)
        }
        return result
    }

    // MARK: Context construction

    /// The core constructor checks and the driver's probe. Write lock held (or read lock for
    /// hot-add). Returns the new context, not yet stored.
    private func makeContext(_ node: PCIFunctionNode, tsm: TSMDevice) -> PCITSMContext? {
        guard let ops = tsm.linkOps else { return nil }
        let isDSM = node.function.canBeDSM
        // pci_tsm_pf0_constructor: a DSM needs the CMA DOE mailbox (ENODEV -> probe fails).
        if isDSM && !node.function.hasCMAMailbox { return nil }
        let dsm: PCIFunctionNode
        if isDSM {
            dsm = node
        } else {
            // pci_tsm_link_constructor: failing to find the DSM -> ENXIO -> probe fails.
            guard let found = findDSM(node) else { return nil }
            dsm = found
        }
        guard case .context(let data) = ops.probe(tsm: tsm, function: node.function, isDSM: isDSM) else { return nil }
        return PCITSMContext(node: node, dsm: dsm, tsm: tsm, driverData: data)
    }

    private func probeFunction(_ node: PCIFunctionNode, tsm: TSMDevice) {
        // EMU: a function that already has a context (e.g. locked by a devsec TSM) keeps it.
        guard node.context == nil else { return }
        node.context = makeContext(node, tsm: tsm)
    }

    /// `tsm_remove()`: driver remove, clear the pointer. Write lock held.
    private func removeContext(_ node: PCIFunctionNode) {
        guard let context = node.context else { return }
        if let ops = context.tsm.linkOps {
            ops.remove(context.linkContext)
        } else {
            context.tsm.devsecOps?.unlock(function: node.function)
        }
        node.context = nil
    }

    // MARK: sysfs: connect / disconnect (spec 6.5)

    /// Writes `input` to `/sys/bus/pci/devices/<address>/tsm/connect`.
    ///
    /// Order: attribute present (a DSM-capable device while a link TSM is registered; else the
    /// file does not exist, `ENOENT`, EMU-KERNEL-1); `input` parses as `tsm<N>` (else `EINVAL`);
    /// write lock, killable (`EINTR`); device already has a context → `EBUSY`; `tsmN` missing or
    /// not a link TSM → `ENXIO`; probe refuses → `ENXIO`; DSM mutex, interruptible (`EINTR`,
    /// context discarded); driver `connect` error → that errno (context discarded). On success,
    /// if the DSM has DEVCAP.TEE, every dependent function is probed (failures are not errors).
    public func connect(_ address: PCIFunctionAddress, _ input: String, signalPending: Bool = false) throws(Errno) {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        try requireLinkAttribute(node)
        guard let id = Self.parseTSMName(input) else { throw .invalidArgument }
        try rwsem.withWrite(.interruptible(signalPending: signalPending)) { () throws(Errno) in
            guard node.context == nil else { throw .resourceBusy }
            guard let tsm = registry.tsms.first(where: { $0.id == id }), tsm.kind == .link, let ops = tsm.linkOps else {
                throw .noSuchAddressOrDevice
            }
            guard let context = makeContext(node, tsm: tsm), let dsmLock = context.dsmLock else {
                throw .noSuchAddressOrDevice
            }
            node.context = context
            do throws(Errno) {
                try dsmLock.withLock(.interruptible(signalPending: signalPending)) { (_: inout Void) throws(Errno) in
                    try ops.connect(context.linkContext)
                }
            } catch {
                removeContext(node)
                throw error
            }
            if node.function.teeIO {
                for dependent in dependents(of: node) { probeFunction(dependent, tsm: tsm) }
            }
        }
    }

    /// Reads `tsm/connect` (and the top-level `authenticated`, same text): the owning TSM's name
    /// and a newline, or just a newline.
    ///
    /// - Throws: `ENOENT` when the attribute is absent; `EINTR` when the read lock wait is
    ///   interrupted.
    public func connectShow(_ address: PCIFunctionAddress, signalPending: Bool = false) throws(Errno) -> String {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        try requireLinkAttribute(node)
        return try rwsem.withRead(.interruptible(signalPending: signalPending)) { () throws(Errno) -> String in
            guard let context = node.context else { return "\n" }
            return context.tsm.name + "\n"
        }
    }

    /// Writes `input` to `tsm/disconnect`.
    ///
    /// Order: attribute present (`ENOENT`); write lock, killable (`EINTR`); no context → `ENXIO`;
    /// `input` not the owning TSM's name (a trailing newline is ignored) → `EINVAL`; then every
    /// function's TDI is unbound (reverse walk, DSM last), the DSM mutex taken, every dependent
    /// function's context removed (reverse walk), the driver's `disconnect` run, and the DSM's
    /// context removed.
    public func disconnect(_ address: PCIFunctionAddress, _ input: String, signalPending: Bool = false) throws(Errno) {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        try requireLinkAttribute(node)
        try rwsem.withWrite(.interruptible(signalPending: signalPending)) { () throws(Errno) in
            guard let context = node.context else { throw .noSuchAddressOrDevice }
            guard Self.sysfsEqual(input, context.tsm.name) else { throw .invalidArgument }
            // EMU-KERNEL-2: a context that is not a link DSM context (devsec lock) cannot be
            // disconnected here; the kernel would warn and misbehave.
            guard context.tsm.kind == .link, context.dsm === node else { throw .noSuchAddressOrDevice }
            disconnectLocked(node)
        }
    }

    /// `pci_tsm_disconnect()`; write lock held.
    private func disconnectLocked(_ dsm: PCIFunctionNode) {
        guard let context = dsm.context, let dsmLock = context.dsmLock, let ops = context.tsm.linkOps else { return }
        let dependents = dependents(of: dsm)
        for node in dependents.reversed() { unbindLocked(node) }
        unbindLocked(dsm)
        dsmLock.withLock { _ in
            for node in dependents.reversed() where node.context?.dsm === dsm { removeContext(node) }
            ops.disconnect(context.linkContext)
        }
        removeContext(dsm)
    }

    /// Reads `tsm/bound`: the owning TSM's name and a newline if the function has a bound TDI, else
    /// a newline.
    ///
    /// - Throws: `ENOENT` when the attribute is absent (not a DSM-capable device with DEVCAP.TEE
    ///   nor a managed function whose DSM has it); `EINTR` when a lock wait is interrupted.
    public func boundShow(_ address: PCIFunctionAddress, signalPending: Bool = false) throws(Errno) -> String {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        return try rwsem.withRead(.interruptible(signalPending: signalPending)) { () throws(Errno) -> String in
            let visible = (node.function.canBeDSM && node.function.teeIO && linkCount.load(ordering: .relaxed) > 0)
                || (node.context.map { $0.dsm.function.teeIO && $0.dsm !== node } ?? false)
            guard visible else { throw .noSuchFileOrDirectory }
            guard let context = node.context, let mutex = context.dsmMutex else { return "\n" }
            return try mutex.withLock(.interruptible(signalPending: signalPending)) { (_: inout Void) throws(Errno) -> String in
                context.tdi == nil ? "\n" : context.tsm.name + "\n"
            }
        }
    }

    /// Reads `tsm/dsm`: the PCI name of the function's DSM and a newline, or a newline.
    ///
    /// - Throws: `ENOENT` when the attribute is absent (neither DSM-capable with a link TSM
    ///   registered nor a managed function); `EINTR` when the read-lock wait is interrupted.
    public func dsmShow(_ address: PCIFunctionAddress, signalPending: Bool = false) throws(Errno) -> String {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        return try rwsem.withRead(.interruptible(signalPending: signalPending)) { () throws(Errno) -> String in
            let visible = (node.function.canBeDSM && linkCount.load(ordering: .relaxed) > 0) || node.context != nil
            guard visible else { throw .noSuchFileOrDirectory }
            guard let context = node.context else { return "\n" }
            return context.dsm.address.description + "\n"
        }
    }

    /// Locks `address` with devsec TSM `tsmName` (the guest-side `tsm/lock`, spec 7.3; EMU-KERNEL-3
    /// for the errnos): write lock (killable, `EINTR`); context present → `EBUSY`; TSM missing or
    /// not devsec → `ENXIO`; driver refuses → `ENXIO`.
    public func devsecLock(_ address: PCIFunctionAddress, _ tsmName: String, signalPending: Bool = false) throws(Errno) {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        guard let id = Self.parseTSMName(tsmName) else { throw .invalidArgument }
        try rwsem.withWrite(.interruptible(signalPending: signalPending)) { () throws(Errno) in
            guard node.context == nil else { throw .resourceBusy }
            guard let tsm = registry.tsms.first(where: { $0.id == id }), let ops = tsm.devsecOps else {
                throw .noSuchAddressOrDevice
            }
            guard case .context(let data) = ops.lock(tsm: tsm, function: node.function) else { throw .noSuchAddressOrDevice }
            node.context = PCITSMContext(node: node, dsm: node, tsm: tsm, driverData: data)
        }
    }

    /// Unlocks a devsec-locked function (`tsm/unlock`). `ENXIO` when it is not devsec-locked.
    public func devsecUnlock(_ address: PCIFunctionAddress) throws(Errno) {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        try rwsem.withWrite(.uninterruptible) { () throws(Errno) in
            guard let context = node.context, context.tsm.kind == .devsec else { throw .noSuchAddressOrDevice }
            removeContext(node)
        }
    }

    private func requireLinkAttribute(_ node: PCIFunctionNode) throws(Errno) {
        let visible = linkCount.load(ordering: .relaxed) > 0
        guard visible, node.function.canBeDSM else { throw .noSuchFileOrDirectory }
    }

    /// `sscanf(buf, "tsm%d\n", &id) == 1`: "tsm", optional blanks, optional sign, decimal digits;
    /// anything after the number is ignored.
    static func parseTSMName(_ input: String) -> Int? {
        var rest = Substring(input)
        guard rest.hasPrefix("tsm") else { return nil }
        rest = rest.dropFirst(3)
        rest = rest.drop(while: { $0 == " " || $0 == "\t" || $0 == "\n" })
        var sign = 1
        if rest.first == "-" { sign = -1; rest = rest.dropFirst() } else if rest.first == "+" { rest = rest.dropFirst() }
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, digits.count <= 9, let value = Int(digits) else { return nil }
        return sign * value
    }

    /// `sysfs_streq`: equal, ignoring one trailing newline on either side.
    static func sysfsEqual(_ a: String, _ b: String) -> Bool {
        func strip(_ s: String) -> Substring { s.hasSuffix("\n") ? Substring(s).dropLast() : Substring(s) }
        return strip(a) == strip(b)
    }

    // MARK: bind / unbind (spec 6.6)

    /// `pci_tsm_bind(pdev, kvm, tdi_id)`.
    ///
    /// Order: `vm == nil` → `EINVAL`; read lock; no context → `EINVAL`; not a link TSM → `ENXIO`;
    /// DSM mutex; a TDI exists: same VM → 0 (no driver call), other VM → `EBUSY`; driver `bind`
    /// error → that errno.
    func bind(_ node: PCIFunctionNode, vm: VMHandle?, tdiID: UInt32) throws(Errno) {
        guard let vm else { throw .invalidArgument }
        try rwsem.withRead(.uninterruptible) { () throws(Errno) in
            guard let context = node.context else { throw .invalidArgument }
            guard context.tsm.kind == .link, let ops = context.tsm.linkOps else { throw .noSuchAddressOrDevice }
            guard let mutex = context.dsmMutex else { throw .noSuchAddressOrDevice }
            try mutex.withLock(.uninterruptible) { (_: inout Void) throws(Errno) in
                if let tdi = context.tdi {
                    if tdi.vm == vm { return }
                    throw .resourceBusy
                }
                context.tdi = try ops.bind(context.linkContext, vm: vm, tdiID: tdiID)
            }
        }
    }

    /// `pci_tsm_unbind(pdev)`: read lock; no context (or not a link context, spec 6.6
    /// [emulator]) → nothing; DSM mutex; no TDI → nothing; driver `unbind`; clear.
    func unbind(_ node: PCIFunctionNode) {
        rwsem.withRead { unbindLocked(node) }
    }

    /// Unbind with the global lock already held (read or write).
    private func unbindLocked(_ node: PCIFunctionNode) {
        guard let context = node.context, context.tsm.kind == .link, let ops = context.tsm.linkOps,
              let mutex = context.dsmMutex else { return }
        mutex.withLock { _ in
            guard let tdi = context.tdi else { return }
            ops.unbind(tdi)
            context.tdi = nil
        }
    }

    // MARK: The sample's test hooks (spec 7.2: attributes of the faux TSM device)

    /// The dummy VM token the sample's `tsm_bind` hook binds with.
    public static let sampleHookVM = VMHandle(id: 0)

    /// The sample TSM's `tsm_bind` hook ("in lieu of VFIO/IOMMUFD", spec 7.2): binds the function
    /// with a dummy VM (``sampleHookVM`` unless given) and `tdi_id = pci_dev_id` (bus << 8 | devfn).
    ///
    /// - Throws: `ENODEV` for an unknown function; `ENXIO` when the function is not owned by `tsm`;
    ///   then the errors of bind (spec 6.6: `EBUSY` when bound to another VM).
    public func hookBind(_ address: PCIFunctionAddress, tsm: TSMDevice, vm: VMHandle = PCITSMCore.sampleHookVM) throws(Errno) {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        let owned = rwsem.withRead { node.context?.tsm === tsm }
        guard owned else { throw .noSuchAddressOrDevice }
        try bind(node, vm: vm, tdiID: UInt32(address.routingID))
    }

    /// The sample TSM's `tsm_unbind` hook. - Throws: `ENODEV`, `ENXIO` as ``hookBind(_:tsm:vm:)``.
    public func hookUnbind(_ address: PCIFunctionAddress, tsm: TSMDevice) throws(Errno) {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        let owned = rwsem.withRead { node.context?.tsm === tsm }
        guard owned else { throw .noSuchAddressOrDevice }
        unbind(node)
    }

    /// The sample TSM's `tsm_request` hook: a kernel-originated guest request whose payload is
    /// `payload`, with a 16-byte kernel response buffer; `op`/`tvmArch` as the rev-K copy
    /// (OBJECT_INFO of the reply numbering = 3, CCA) unless given.
    ///
    /// - Returns: the driver's residue and the response buffer.
    /// - Throws: `ENODEV`/`ENXIO` as ``hookBind(_:tsm:vm:)``, then the guest-request errors.
    public func hookRequest(_ address: PCIFunctionAddress, tsm: TSMDevice, payload: [UInt8],
                            op: UInt32 = 3, tvmArch: UInt32 = 1, memory: UserAddressSpace) throws(Errno) -> (residue: Int, response: [UInt8]) {
        guard let node = node(address) else { throw .operationNotSupportedByDevice }
        let owned = rwsem.withRead { node.context?.tsm === tsm }
        guard owned else { throw .noSuchAddressOrDevice }
        let response = KernelBuffer([UInt8](repeating: 0, count: 16))
        let v5 = !profile.tsmReqLayout.hasOpAndArch
        var request = TSMGuestRequest(
            op: v5 ? TSMReqScope.pciInfo.rawValue : op, tvmArch: v5 ? nil : tvmArch,
            request: .kernel(KernelBuffer(payload)), requestLength: payload.count,
            response: .kernel(response), responseLength: 16, tsmCode: v5 ? nil : 0, memory: memory)
        let residue = try guestRequest(node, &request, signalPending: false)
        return (residue, response.bytes)
    }

    // MARK: guest request (spec 4.2 steps 6-12, 4.3 steps 6-13)

    /// `pci_tsm_guest_req()`.
    ///
    /// Order (revised): `tvm_arch` invalid → `EINVAL`; (op, arch) invalid → `EINVAL`; read lock,
    /// interruptible (`EINTR`); no context → `ENXIO`; not a link TSM → `ENXIO`; DSM mutex,
    /// interruptible (`EINTR`); no TDI → `ENXIO`; the driver's value. v5: `scope > 1` → `EINVAL`
    /// instead of the two envelope checks.
    @inline(__always)
    func guestRequest(_ node: PCIFunctionNode, _ request: inout TSMGuestRequest, signalPending: Bool) throws(Errno) -> Int {
        if let arch = request.tvmArch {
            guard TVMArch(rawValue: arch) != nil else { throw .invalidArgument }
            guard requestFields.isAllowed(op: request.op, arch: arch) else { throw .invalidArgument }
        } else {
            guard request.op <= TSMReqScope.pciTSMLast.rawValue else { throw .invalidArgument }
        }
        let wait = LockWait.interruptible(signalPending: signalPending)
        // Borrowed references (no retain/release), each alive for the whole borrow:
        // - the context: `node.context` holds it strongly and only changes with the global lock
        //   held for writing, which the read hold below excludes;
        // - its DSM mutex (`borrowedDSMMutex`): the context's own `let dsmMutex` holds it
        //   strongly while the context lives; its link ops are read from the context's
        //   `let linkOps` at the call (no local copy, so no retain);
        // - the TDI: `context.tdi` holds it strongly and only changes with the DSM mutex held,
        //   which this request holds while it uses the TDI.
        return try rwsem.withRead(wait) { () throws(Errno) -> Int in
            guard let borrowed = node.borrowedContext else { throw .noSuchAddressOrDevice }
            // `_withUnsafeGuaranteedRef` rethrows untyped: the typed error travels as a `Result`.
            return try borrowed._withUnsafeGuaranteedRef { context -> Result<Int, Errno> in
                guard context.tsm.kind == .link, context.linkOps != nil,
                      let mutex = context.borrowedDSMMutex else {
                    return .failure(.noSuchAddressOrDevice)
                }
                return mutex._withUnsafeGuaranteedRef { mutex -> Result<Int, Errno> in
                    Result { () throws(Errno) -> Int in
                        try mutex.withLock(wait) { (_: inout Void) throws(Errno) -> Int in
                            guard let tdi = context.borrowedTDI else { throw .noSuchAddressOrDevice }
                            return try tdi._withUnsafeGuaranteedRef { tdi -> Result<Int, Errno> in
                                Result { () throws(Errno) -> Int in
                                    // Checked non-nil above; `linkOps` is a `let`.
                                    try context.linkOps?.guestRequest(tdi, &request) ?? 0
                                }
                            }.get()
                        }
                    }
                }
            }.get()
        }
    }

    // MARK: Test hooks: holding the locks across calls

    /// Takes the global pci-tsm lock for writing (as a connect in progress would) until
    /// ``LockHold/release()``. Waits in other calls then block; interruptible ones give `EINTR`
    /// when a signal is pending. For tests and scripts that pin EINTR paths; a single-threaded
    /// caller must not make an uninterruptible call (bind, unbind) while holding it.
    public func holdGlobalLock() -> LockHold {
        _ = rwsem.lockWrite(.uninterruptible)
        return LockHold { [rwsem] in rwsem.unlockWrite() }
    }

    /// Takes the DSM mutex of `dsm` until ``LockHold/release()`` (see ``holdGlobalLock()``).
    ///
    /// - Throws: `ENODEV` for an unknown function; `ENXIO` when it has no DSM context.
    public func holdDSMLock(_ dsm: PCIFunctionAddress) throws(Errno) -> LockHold {
        guard let node = node(dsm) else { throw .operationNotSupportedByDevice }
        let mutex = rwsem.withRead { node.context?.dsmLock }
        guard let mutex else { throw .noSuchAddressOrDevice }
        _ = mutex.lock(.uninterruptible)
        return LockHold { mutex.unlock() }
    }

    // MARK: Introspection

    /// What pci-tsm knows of one function, for tests and tools.
    public struct FunctionState: Sendable, Equatable {
        /// The owning TSM's name, if the function has a context.
        public var tsm: String?
        /// The DSM's address, if the function has a context.
        public var dsm: PCIFunctionAddress?
        /// The bound TDI: VM and TDI id.
        public var tdi: TDIState?
    }

    /// A bound TDI as seen from outside.
    public struct TDIState: Sendable, Equatable {
        /// The VM it is bound to.
        public var vm: VMHandle
        /// Its TDI id.
        public var tdiID: UInt32
        /// Creates a value (for comparisons in tests).
        public init(vm: VMHandle, tdiID: UInt32) {
            self.vm = vm
            self.tdiID = tdiID
        }
    }

    /// The state of `address` (nil if the function does not exist). Takes the locks briefly.
    public func state(_ address: PCIFunctionAddress) -> FunctionState? {
        guard let node = node(address) else { return nil }
        return rwsem.withRead { () -> FunctionState in
            guard let context = node.context else { return FunctionState(tsm: nil, dsm: nil, tdi: nil) }
            var tdi: TDIState?
            if let mutex = context.dsmMutex {
                mutex.withLock { _ in tdi = context.tdi.map { TDIState(vm: $0.vm, tdiID: $0.tdiID) } }
            }
            return FunctionState(tsm: context.tsm.name, dsm: context.dsm.address, tdi: tdi)
        }
    }

    /// Every bound TDI, by function address.
    public var boundTDIs: [PCIFunctionAddress: TDIState] {
        var result: [PCIFunctionAddress: TDIState] = [:]
        for node in allNodes() {
            if let tdi = state(node.address)?.tdi { result[node.address] = tdi }
        }
        return result
    }
}



/// A lock held on purpose by a test hook; ``release()`` drops it (once; later calls do nothing).
public final class LockHold: Sendable {
    private let released = Atomic<Bool>(false)
    private let unlock: @Sendable () -> Void

    init(_ unlock: @escaping @Sendable () -> Void) { self.unlock = unlock }

    /// Releases the lock.
    public func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { unlock() }
    }

    deinit { release() }
}
