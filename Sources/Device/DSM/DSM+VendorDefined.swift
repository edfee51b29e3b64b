import TDISP
import Wire

extension DSM {
    /// Answers a TDISP request carried in an SPDM VENDOR_DEFINED_REQUEST (docs/spec/tdisp-spdm.md
    /// §3.1) with the VENDOR_DEFINED_RESPONSE carrying the TDISP response; the SPDM version byte is
    /// echoed, the protocol id and vendor id are copied.
    ///
    /// Throws (the SPDM layer answers with an SPDM ERROR; nothing changes): the decoding errors of
    /// ``PCISIGVendorDefinedMessage/init(decoding:)``; ``WireError/invalidValue(field:value:)``
    /// with field `RequestResponseCode` for a response (0x7E), `VendorID` for a vendor other than
    /// PCI-SIG (0x0001), `ProtocolID` for a protocol other than TDISP (0x01).
    public func respond(vendorDefined request: [UInt8]) throws(WireError) -> [UInt8] {
        let message = try PCISIGVendorDefinedMessage(decoding: request)
        guard message.isRequest else {
            throw .invalidValue(field: "RequestResponseCode", value: UInt64(PCISIGVendorDefinedMessage.responseCode))
        }
        guard message.vendorID == PCISIGVendorDefinedMessage.pciSIGVendorID else {
            throw .invalidValue(field: "VendorID", value: UInt64(message.vendorID))
        }
        guard message.protocolID == PCISIGVendorDefinedMessage.tdispProtocolID else {
            throw .invalidValue(field: "ProtocolID", value: UInt64(message.protocolID))
        }
        return PCISIGVendorDefinedMessage.tdisp(response: respond(message.payload), spdmVersion: message.spdmVersion).encoded()
    }
}
