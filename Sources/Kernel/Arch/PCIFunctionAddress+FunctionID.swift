import TDISP

extension PCIFunctionAddress {
    /// The TDISP FUNCTION_ID of this function (tdisp-spdm.md §2.1): the routing ID in bits 15:0,
    /// and for a non-zero PCI domain the Requester Segment in bits 23:16 with bit 24 set, as
    /// `Device.TDIFunction(_:in:)` builds it for the DSM. `nil` for a domain above 255 (the
    /// segment is 8 bits), which no DSM built from a dump can serve.
    public var functionID: FunctionID? {
        guard domain <= 0xFF else { return nil }
        return FunctionID(requesterID: routingID, segment: domain == 0 ? nil : UInt8(domain))
    }
}
