import PCI
import TDISP

extension TDIFunction {
    /// Describes a function of the PCI model for the DSM (the report is built from this).
    ///
    /// - FUNCTION_ID: the function's routing ID; the segment (bit 24 + bits 23:16) only for a
    ///   non-zero PCI domain.
    /// - BARs: memory BARs only; a BAR whose size is unknown or whose address is 0 (unassigned)
    ///   is left out (DSM-CHOICE-3). A size the dump did not print is the PCI model's upper bound
    ///   from the address's alignment, shrunk to the largest power of two that does not reach
    ///   another BAR of the same function (DSM-CHOICE-5), so no two reported ranges overlap.
    /// - MSI-X: table/PBA BIR, offset and byte counts and Message Control of the capability.
    /// - PASID, ATS: present and enabled on the function, or for a VF on its PF (the model gives
    ///   VFs no extended capabilities; SR-IOV VFs use the PF's PASID). PRS: not modelled (false).
    ///
    /// Throws ``TDIFunctionBuildError/segmentOutOfRange(_:)`` for a PCI domain above 255 (the
    /// Requester Segment is 8 bits).
    public init(_ function: PCIFunction, in topology: PCITopology) throws(TDIFunctionBuildError) {
        let domain = function.bdf.domain
        guard domain <= 0xFF else { throw .segmentOutOfRange(domain) }
        let segment: UInt8? = domain == 0 ? nil : UInt8(domain)
        let pf = function.physicalFunction.flatMap { topology[$0] }
        let memory = function.bars.filter { $0.isMemory && $0.address != 0 && ($0.size ?? 0) > 0 }
        var bars = [TDIBAR]()
        for bar in memory {
            guard let size = bar.size, bar.index >= 0, bar.index <= 5 else { continue }
            var reported = size
            if bar.sizeSource == .derivedFromAlignment {
                for other in memory where other.index != bar.index && other.address > bar.address {
                    while reported > 0x1000, bar.address &+ reported > other.address { reported >>= 1 }
                }
            }
            bars.append(TDIBAR(index: UInt8(bar.index), address: bar.address, size: reported,
                               is64Bit: bar.is64Bit, prefetchable: bar.isPrefetchable))
        }
        let msix = function.msix.map {
            TDIMSIX(tableBIR: $0.tableBIR, tableOffset: $0.tableOffset, tableSize: UInt32(clamping: $0.tableByteCount),
                    pbaBIR: $0.pbaBIR, pbaOffset: $0.pbaOffset, pbaSize: UInt32(clamping: $0.pbaByteCount),
                    messageControl: $0.messageControl)
        }
        let pasid = function.pasid ?? pf?.pasid
        let ats = function.ats ?? pf?.ats
        self.init(
            functionID: FunctionID(requesterID: function.bdf.routingID, segment: segment),
            physicalFunction: pf.map { FunctionID(requesterID: $0.bdf.routingID, segment: segment) },
            bars: bars, msix: msix,
            pasidEnabled: pasid?.isEnabled ?? false,
            atsEnabled: ats?.isEnabled ?? false)
    }
}

/// Why a ``TDIFunction`` could not be made from the PCI model.
public enum TDIFunctionBuildError: Error, Equatable, Sendable {
    /// The PCI domain does not fit the 8-bit Requester Segment of FUNCTION_ID.
    case segmentOutOfRange(UInt32)
}

/// Why a DSM could not be made for a device of the PCI model.
public enum DeviceDSMError: Error, Equatable, Sendable {
    /// No function at that address.
    case noSuchFunction(BDF)
    /// The function cannot be a DSM (Linux `is_pci_tsm_pf0()`: PCIe Endpoint/Upstream Port/RCiEP,
    /// not a VF, function 0, with IDE or DevCap TEE-IO; docs/spec/kernel-uapi.md §6.2).
    case notDSMCapable(BDF)
    /// A managed function could not be described.
    case function(BDF, TDIFunctionBuildError)
    /// The DSM refused the function list.
    case configuration(DSMConfigurationError)
}

extension DSM {
    /// The DSM of the DSM-capable function `dsm` of `topology`, serving that function and every
    /// function the kernel's walk gives it (``PCITopology/dsmWalk(from:isDSM:)``: functions 1-7
    /// of the slot and the VFs of each; a function listed twice is served once).
    ///
    /// Throws ``DeviceDSMError``: no such function, not DSM-capable, a function that cannot be
    /// described, or a duplicate INTERFACE_ID.
    public convenience init(device topology: PCITopology, dsm: BDF, profile: DSMProfile = .standard,
                            entropy: DSMEntropy = .system) throws(DeviceDSMError) {
        guard let owner = topology[dsm] else { throw .noSuchFunction(dsm) }
        guard owner.canBeDSM else { throw .notDSMCapable(dsm) }
        var seen = Set<BDF>()
        var functions = [TDIFunction]()
        for function in [owner] + topology.dsmWalk(from: dsm) where seen.insert(function.bdf).inserted {
            do {
                functions.append(try TDIFunction(function, in: topology))
            } catch {
                throw .function(function.bdf, error)
            }
        }
        do {
            try self.init(functions: functions, profile: profile, entropy: entropy)
        } catch {
            throw .configuration(error)
        }
    }
}
