import Wire

/// Assembles a DEVICE_INTERFACE_REPORT from its portions, the requester's side of §2.10.
///
/// Use: ask ``nextRequest(interfaceID:)`` for the next GET_DEVICE_INTERFACE_REPORT, send it, feed
/// the DEVICE_INTERFACE_REPORT to ``accept(_:)``; repeat until ``isComplete``; then ``report()``.
///
/// Consistency checks (as spdm-emu's requester makes, docs/spec/tdisp-spdm.md §2.10), each a
/// ``InterfaceReportReaderError`` and leaving the reader unchanged:
/// - PORTION_LENGTH 0 while bytes remain → ``InterfaceReportReaderError/emptyPortion``;
/// - PORTION_LENGTH > the LENGTH asked → ``InterfaceReportReaderError/portionTooLong(asked:got:)``;
/// - OFFSET + PORTION + REMAINDER ≠ the total announced by the first response →
///   ``InterfaceReportReaderError/inconsistentTotal(expected:got:)``;
/// - a total over ``capacity`` → ``InterfaceReportReaderError/reportTooLarge(total:capacity:)``;
/// - a portion after the last one → ``InterfaceReportReaderError/alreadyComplete``.
public struct InterfaceReportReader: Sendable {
    /// Most bytes asked per portion (LENGTH of each request).
    public let maxPortion: UInt16
    /// Largest report accepted, in bytes (spdm-emu's requester: 0x1000).
    public let capacity: Int
    /// Bytes received so far (the next OFFSET).
    public private(set) var received: [UInt8] = []
    /// Total size announced by the first portion (OFFSET 0 + PORTION + REMAINDER), nil before it.
    public private(set) var total: Int?
    /// LENGTH of the last request handed out.
    public private(set) var lastLength: UInt16

    /// A reader asking `maxPortion` bytes at a time (0 is treated as 1).
    public init(maxPortion: UInt16 = 0xFFFF, capacity: Int = DeviceInterfaceReport.maximumSize) {
        self.maxPortion = max(1, maxPortion)
        self.capacity = capacity
        self.lastLength = max(1, maxPortion)
    }

    /// True once the last portion (REMAINDER_LENGTH 0) has been accepted.
    public var isComplete: Bool { total.map { received.count == $0 } ?? false }

    /// The next request: OFFSET = bytes received, LENGTH = min(maxPortion, bytes remaining).
    public mutating func nextRequest(interfaceID: InterfaceID) -> GetDeviceInterfaceReport {
        var length = maxPortion
        if let total { length = UInt16(clamping: min(Int(maxPortion), total - received.count)) }
        lastLength = length
        return GetDeviceInterfaceReport(interfaceID: interfaceID, offset: UInt16(clamping: received.count), length: length)
    }

    /// Checks and appends one portion (see the type's checks).
    public mutating func accept(_ response: DeviceInterfaceReportResponse) throws(InterfaceReportReaderError) {
        if isComplete { throw .alreadyComplete }
        let portion = response.portion.count
        guard portion <= Int(lastLength) else { throw .portionTooLong(asked: lastLength, got: portion) }
        let announced = received.count + portion + Int(response.remainderLength)
        if let total {
            guard announced == total else { throw .inconsistentTotal(expected: total, got: announced) }
        } else {
            guard announced <= capacity else { throw .reportTooLarge(total: announced, capacity: capacity) }
        }
        guard portion > 0 || announced == received.count else { throw .emptyPortion }
        total = announced
        received.append(contentsOf: response.portion)
    }

    /// The assembled report, decoded. Throws ``InterfaceReportReaderError/incomplete`` before the
    /// last portion, ``InterfaceReportReaderError/malformed(_:)`` when the bytes do not decode.
    public func report() throws(InterfaceReportReaderError) -> DeviceInterfaceReport {
        guard isComplete else { throw .incomplete }
        do { return try DeviceInterfaceReport(decoding: received) } catch { throw .malformed(error) }
    }
}

/// Why ``InterfaceReportReader`` refused a portion or a report.
public enum InterfaceReportReaderError: Error, Equatable, Sendable {
    case emptyPortion
    case portionTooLong(asked: UInt16, got: Int)
    case inconsistentTotal(expected: Int, got: Int)
    case reportTooLarge(total: Int, capacity: Int)
    case alreadyComplete
    case incomplete
    case malformed(WireError)
}
