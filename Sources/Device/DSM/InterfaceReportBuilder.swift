import TDISP

/// Builds a TDI's DEVICE_INTERFACE_REPORT from its function's real BARs (docs/spec/tdisp-spdm.md
/// §2.9), the way our DSM does at LOCK_INTERFACE_REQUEST.
///
/// Rules (each a documented choice, see docs/tdisp.md "DSM choices"):
/// - INTERFACE_INFO: bit 0 from LOCK FLAGS NO_FW_UPDATE; bits 1-4 from the function
///   (``TDIFunction/dmaWithoutPASID``, PASID, ATS, PRS enabled).
/// - MSI_X_MESSAGE_CONTROL: the capability's Message Control when FLAGS has LOCK_MSIX, else 0.
///   LNR_CONTROL and TPH_CONTROL: 0 (not modelled).
/// - One or more MMIO_RANGEs per memory BAR of non-zero size, BARs by ascending index, RANGE_ID =
///   BAR index. FIRST_PAGE = (BAR base + offset in BAR + MMIO_REPORTING_OFFSET) >> 12
///   (EMU-TDISP-6); pages are 4 KiB.
/// - A BAR holding the MSI-X table or PBA is split at the 4 KiB pages they touch: with LOCK_MSIX
///   those pages carry RANGE_ATTRIBUTES bit 0 (table) / bit 1 (PBA); without it they carry
///   IS_NON_TEE_MEM (bit 2), because the host then owns the vectors (DSM-CHOICE-2).
/// - BAR flags add IS_NON_TEE_MEM / IS_MEM_ATTR_UPDATABLE to all of the BAR's ranges.
///
/// Errors (``InterfaceReportBuildError``): the offset makes an address overflow 64 bits
/// (``InterfaceReportBuildError/addressOverflow(barIndex:)``, a DSM answers INVALID_REQUEST); a
/// BAR spans more than 2³² − 1 pages or the report exceeds 65 535 bytes
/// (``InterfaceReportBuildError/rangeTooLarge(barIndex:)``,
/// ``InterfaceReportBuildError/reportTooLarge(size:)``; INVALID_DEVICE_CONFIGURATION).
public enum InterfaceReportBuilder {
    /// Builds the report for `function` locked with `flags` and `mmioReportingOffset` (bytes).
    public static func build(function: TDIFunction, flags: LockInterfaceFlags,
                             mmioReportingOffset: UInt64) throws(InterfaceReportBuildError) -> DeviceInterfaceReport {
        var info: InterfaceInfo = []
        if flags.contains(.noFirmwareUpdate) { info.insert(.noFirmwareUpdate) }
        if function.dmaWithoutPASID { info.insert(.dmaWithoutPASID) }
        if function.pasidEnabled { info.insert(.dmaWithPASID) }
        if function.atsEnabled { info.insert(.atsEnabled) }
        if function.prsEnabled { info.insert(.prsEnabled) }
        let lockMSIX = flags.contains(.lockMSIX)

        var ranges = [MMIORange]()
        for bar in function.bars.sorted(by: { $0.index < $1.index }) where bar.size > 0 {
            ranges += try barRanges(bar, msix: function.msix, lockMSIX: lockMSIX, offset: mmioReportingOffset)
        }
        let report = DeviceInterfaceReport(
            interfaceInfo: info,
            msixMessageControl: lockMSIX ? (function.msix?.messageControl ?? 0) : 0,
            mmioRanges: ranges,
            deviceSpecificInfo: function.deviceSpecificInfo)
        guard report.encodedSize <= DeviceInterfaceReport.maximumSize else {
            throw .reportTooLarge(size: report.encodedSize)
        }
        return report
    }

    private static func barRanges(_ bar: TDIBAR, msix: TDIMSIX?, lockMSIX: Bool,
                                  offset: UInt64) throws(InterfaceReportBuildError) -> [MMIORange] {
        let page = MMIORange.pageSize
        let (start, overflow) = bar.address.addingReportingOverflow(offset)
        guard !overflow, start.addingReportingOverflow(bar.size - 1).overflow == false else {
            throw .addressOverflow(barIndex: bar.index)
        }
        let firstPage = start / page
        let lead = start % page  // a BAR under 4 KiB need not start on a page
        let pageCount = (lead + bar.size - 1) / page + 1  // size > 0, and start + size - 1 fits
        guard pageCount <= UInt64(UInt32.max) else { throw .rangeTooLarge(barIndex: bar.index) }

        // Page intervals [from, to) inside the BAR touched by the MSI-X table and PBA.
        var marks: [(from: UInt64, to: UInt64, attribute: MMIORangeAttributes)] = []
        if let msix {
            let tableAttribute: MMIORangeAttributes = lockMSIX ? .msixTable : .nonTEEMemory
            let pbaAttribute: MMIORangeAttributes = lockMSIX ? .msixPBA : .nonTEEMemory
            if msix.tableBIR == bar.index, msix.tableSize > 0 {
                marks.append(span(lead, UInt64(msix.tableOffset), UInt64(msix.tableSize), pageCount, tableAttribute))
            }
            if msix.pbaBIR == bar.index, msix.pbaSize > 0 {
                marks.append(span(lead, UInt64(msix.pbaOffset), UInt64(msix.pbaSize), pageCount, pbaAttribute))
            }
        }
        var base: MMIORangeAttributes = []
        if bar.nonTEE { base.insert(.nonTEEMemory) }
        if bar.memoryAttributeUpdatable { base.insert(.memoryAttributeUpdatable) }

        var cuts: Set<UInt64> = [0, pageCount]
        for mark in marks where mark.from < mark.to {
            cuts.insert(mark.from)
            cuts.insert(mark.to)
        }
        let edges = cuts.sorted()
        var ranges = [MMIORange]()
        for (from, to) in zip(edges, edges.dropFirst()) where from < to {
            var attribute = base
            for mark in marks where mark.from < to && from < mark.to { attribute.formUnion(mark.attribute) }
            if let last = ranges.last, last.attributes == attribute {
                ranges[ranges.count - 1].numberOfPages += UInt32(to - from)
            } else {
                ranges.append(MMIORange(firstPage: firstPage + from, numberOfPages: UInt32(to - from),
                                        attributes: attribute, rangeID: UInt16(bar.index)))
            }
        }
        return ranges
    }

    /// Pages [from, to) of `pageCount` touched by `size` bytes at `offset` in a BAR whose first
    /// byte sits `lead` bytes into its first page; clipped to the BAR.
    private static func span(_ lead: UInt64, _ offset: UInt64, _ size: UInt64, _ pageCount: UInt64,
                             _ attribute: MMIORangeAttributes) -> (UInt64, UInt64, MMIORangeAttributes) {
        let page = MMIORange.pageSize
        let from = min((lead + offset) / page, pageCount)
        let to = min((lead + offset + size + page - 1) / page, pageCount)
        return (from, to, attribute)
    }
}

/// Why ``InterfaceReportBuilder`` could not build a report.
public enum InterfaceReportBuildError: Error, Equatable, Sendable {
    /// BAR base + MMIO_REPORTING_OFFSET (+ size) passes 2⁶⁴.
    case addressOverflow(barIndex: UInt8)
    /// The BAR spans more than 2³² − 1 pages (NUMBER_OF_PAGES is u32).
    case rangeTooLarge(barIndex: UInt8)
    /// The report would exceed 65 535 bytes.
    case reportTooLarge(size: Int)
}
