// The TSM side of TDISP: the few requests a firmware model sends to a DSM and the checks it makes
// on each response (tdisp-spdm.md §2.1-§2.10). Internal: the firmware models use it; the TDISP
// module's public codecs serve everyone else.
import Wire

/// Byte-level TDISP helpers for the requester (tdisp-spdm.md §2.1-§2.3, §2.8).
enum TDISPWire {
    static let version: UInt8 = 0x10
    static let headerSize = 16

    enum Code {
        static let getVersion: UInt8 = 0x81
        static let getCapabilities: UInt8 = 0x82
        static let lockInterface: UInt8 = 0x83
        static let getReport: UInt8 = 0x84
        static let getState: UInt8 = 0x85
        static let startInterface: UInt8 = 0x86
        static let stopInterface: UInt8 = 0x87
        static let error: UInt8 = 0x7F
    }

    /// The 16-byte header: version, code, 2 reserved, FUNCTION_ID, 8 reserved.
    static func header(_ code: UInt8, _ function: FunctionID) -> ByteWriter {
        var writer = ByteWriter(capacity: 64)
        writer.u8(version)
        writer.u8(code)
        writer.u16(0)
        writer.u32(function.rawValue)
        writer.u64(0)
        return writer
    }

    /// A TDISP_ERROR answering `request` (used by fault injection: the DSM "answers" an error).
    static func errorResponse(to request: [UInt8], code: UInt32, data: UInt32) -> [UInt8] {
        var reader = ByteReader(request)
        _ = try? reader.skip(4)
        let function = (try? reader.u32()) ?? 0
        var writer = header(Code.error, FunctionID(rawValue: function))
        writer.u32(code)
        writer.u32(data)
        return writer.bytes
    }
}

/// One DSM as the firmware reaches it: the transport plus the fault state of the platform.
struct TDISPRequester {
    let transport: any TDISPTransport
    let function: FunctionID

    /// Sends a request and returns the payload after the header of the expected response.
    /// Checks: TDISP_ERROR → `.tdispError`; otherwise version 0x10, response code = request
    /// code with bit 7 cleared, FUNCTION_ID echoed, and (when given) the exact size.
    func send(_ request: ByteWriter, faults: inout FaultState, exactSize: Int? = nil) throws(DeviceFailure) -> ByteReader {
        let response = try faults.exchange(transport, request.bytes)
        var reader = ByteReader(response)
        guard let version = try? reader.u8(), let code = try? reader.u8(),
              (try? reader.skip(2)) != nil, let function = try? reader.u32(),
              (try? reader.skip(8)) != nil
        else { throw .malformed }
        if code == TDISPWire.Code.error {
            guard let errorCode = try? reader.u32() else { throw .malformed }
            throw .tdispError(errorCode)
        }
        let expected = request.bytes[1] & 0x7F
        guard version == TDISPWire.version, code == expected, function == self.function.rawValue else {
            throw .malformed
        }
        if let exactSize, response.count != exactSize { throw .malformed }
        return reader
    }

    /// GET_TDISP_VERSION → the version entries (expects 0x10 among them).
    func versions(faults: inout FaultState) throws(DeviceFailure) -> [UInt8] {
        var reader = try send(TDISPWire.header(TDISPWire.Code.getVersion, function), faults: &faults)
        guard let count = try? reader.u8(), let entries = try? reader.bytes(Int(count)), reader.isAtEnd else {
            throw .malformed
        }
        return entries
    }

    /// GET_TDISP_CAPABILITIES (TSM_CAPS 0) → the 28 payload bytes of TDISP_CAPABILITIES.
    func capabilities(faults: inout FaultState) throws(DeviceFailure) -> [UInt8] {
        var request = TDISPWire.header(TDISPWire.Code.getCapabilities, function)
        request.u32(0)
        var reader = try send(request, faults: &faults, exactSize: 44)
        return reader.rest()
    }

    /// GET_DEVICE_INTERFACE_STATE → the TDI state.
    func state(faults: inout FaultState) throws(DeviceFailure) -> TDISPState {
        var reader = try send(TDISPWire.header(TDISPWire.Code.getState, function), faults: &faults, exactSize: 17)
        guard let raw = try? reader.u8(), let state = TDISPState(rawValue: raw) else { throw .malformed }
        return state
    }

    /// LOCK_INTERFACE_REQUEST → the 32-byte START_INTERFACE_NONCE.
    func lock(flags: UInt16, streamID: UInt8, mmioReportingOffset: UInt64, faults: inout FaultState) throws(DeviceFailure) -> [UInt8] {
        var request = TDISPWire.header(TDISPWire.Code.lockInterface, function)
        request.u16(flags)
        request.u8(streamID)
        request.u8(0)
        request.u64(mmioReportingOffset)
        request.u64(0)
        var reader = try send(request, faults: &faults, exactSize: 48)
        guard let nonce = try? reader.bytes(32) else { throw .malformed }
        return nonce
    }

    /// GET_DEVICE_INTERFACE_REPORT, portion by portion (tdisp-spdm.md §2.10), → the whole report.
    /// Checks PORTION ≤ LENGTH, exact sizes, and that OFFSET + PORTION + REMAINDER stays equal to
    /// the total announced by the first portion.
    func report(faults: inout FaultState) throws(DeviceFailure) -> [UInt8] {
        var report: [UInt8] = []
        var total: Int? = nil
        var length = 0x400
        while true {
            var request = TDISPWire.header(TDISPWire.Code.getReport, function)
            request.u16(UInt16(report.count))
            request.u16(UInt16(length))
            var reader = try send(request, faults: &faults)
            guard let portion = try? reader.u16(), let remainder = try? reader.u16(),
                  Int(portion) <= length, reader.remaining == Int(portion),
                  let bytes = try? reader.bytes(Int(portion))
            else { throw .malformed }
            let announced = report.count + Int(portion) + Int(remainder)
            if let total, total != announced { throw .malformed }
            guard announced <= 0xFFFF else { throw .malformed }
            total = announced
            report += bytes
            if remainder == 0 { return report }
            guard portion > 0 else { throw .malformed }
            length = min(Int(remainder), 0x400)
        }
    }

    /// START_INTERFACE_REQUEST with `nonce`.
    func start(nonce: [UInt8], faults: inout FaultState) throws(DeviceFailure) {
        var request = TDISPWire.header(TDISPWire.Code.startInterface, function)
        request.bytes(nonce)
        _ = try send(request, faults: &faults, exactSize: 16)
    }

    /// STOP_INTERFACE_REQUEST.
    func stop(faults: inout FaultState) throws(DeviceFailure) {
        _ = try send(TDISPWire.header(TDISPWire.Code.stopInterface, function), faults: &faults, exactSize: 16)
    }
}

/// One MMIO_RANGE of a DEVICE_INTERFACE_REPORT (tdisp-spdm.md §2.9).
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | FIRST_PAGE (4 KiB page number, MMIO_REPORTING_OFFSET added, EMU-TDISP-6) |
/// | 8 | 4 | NUMBER_OF_PAGES |
/// | 12 | 2 | RANGE_ATTRIBUTES (bit 0 MSI-X table, 1 MSI-X PBA, 2 IS_NON_TEE_MEM, 3 IS_MEM_ATTR_UPDATABLE) |
/// | 14 | 2 | RANGE_ID |
public struct ReportedMMIORange: Sendable, Equatable {
    public var firstPage: UInt64
    public var numberOfPages: UInt32
    public var attributes: UInt16
    public var rangeID: UInt16

    public init(firstPage: UInt64, numberOfPages: UInt32, attributes: UInt16, rangeID: UInt16) {
        self.firstPage = firstPage
        self.numberOfPages = numberOfPages
        self.attributes = attributes
        self.rangeID = rangeID
    }

    /// First byte address (FIRST_PAGE × 4096), saturating.
    public var base: UInt64 { firstPage.multipliedReportingOverflow(by: 4096).overflow ? .max : firstPage << 12 }
    /// Size in bytes.
    public var size: UInt64 { UInt64(numberOfPages) << 12 }

    /// Parses the MMIO ranges of a DEVICE_INTERFACE_REPORT (tdisp-spdm.md §2.9): header 16 bytes
    /// (MMIO_RANGE_COUNT at 12), N ranges of 16 bytes, then DEVICE_SPECIFIC_INFO_LEN and the info.
    /// Errors: ``WireError`` when the report is truncated or has trailing bytes.
    public static func ranges(ofReport report: [UInt8]) throws(WireError) -> [ReportedMMIORange] {
        var reader = ByteReader(report)
        try reader.skip(12)
        let count = try reader.u32()
        guard UInt64(count) * 16 <= UInt64(reader.remaining) else {
            throw .truncated(offset: reader.offset, needed: Int(clamping: UInt64(count) * 16), available: reader.remaining)
        }
        var ranges: [ReportedMMIORange] = []
        for _ in 0..<count {
            let first = try reader.u64()
            let pages = try reader.u32()
            let attributes = try reader.u16()
            let id = try reader.u16()
            ranges.append(ReportedMMIORange(firstPage: first, numberOfPages: pages, attributes: attributes, rangeID: id))
        }
        let infoLength = try reader.u32()
        try reader.skip(Int(infoLength))
        try reader.expectEnd()
        return ranges
    }
}
