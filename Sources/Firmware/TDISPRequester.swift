// The TSM side of TDISP: the few requests a firmware model sends to a DSM and the checks it makes
// on each response (tdisp-spdm.md §2.1-§2.10), built on the TDISP module's message types.
import TDISP
import Wire

/// One TDI as the firmware reaches it over its DSM's transport.
struct TDISPRequester {
    let transport: any TDISPTransport
    let function: FunctionID

    var interfaceID: InterfaceID { InterfaceID(functionID: function) }

    /// Sends `message` and returns the decoded response. TDISP_ERROR → `.tdispError(code)`;
    /// otherwise the response must decode exactly, carry version 0x10, be the request's response
    /// type and echo the FUNCTION_ID, else `.malformed`.
    func send(_ message: some TDISPMessage, faults: inout FaultState) throws(DeviceFailure) -> TDISPResponse {
        let bytes = try faults.exchange(transport, message.encoded())
        guard let response = try? TDISPResponse(decoding: bytes) else { throw .malformed }
        if case let .error(error) = response { throw .tdispError(error.errorCode.rawValue) }
        let header = response.header
        guard header.version == TDISPVersion.v1_0,
              header.messageType == type(of: message).messageType.responseType,
              header.interfaceID.functionID == function
        else { throw .malformed }
        return response
    }

    /// GET_TDISP_VERSION → the version entries.
    func versions(faults: inout FaultState) throws(DeviceFailure) -> [UInt8] {
        guard case let .version(response) = try send(GetTDISPVersion(interfaceID: interfaceID), faults: &faults) else {
            throw .malformed
        }
        return response.versions
    }

    /// GET_TDISP_CAPABILITIES (TSM_CAPS 0) → TDISP_CAPABILITIES.
    func capabilities(faults: inout FaultState) throws(DeviceFailure) -> TDISPCapabilities {
        guard case let .capabilities(response) = try send(GetTDISPCapabilities(interfaceID: interfaceID), faults: &faults) else {
            throw .malformed
        }
        return response
    }

    /// GET_DEVICE_INTERFACE_STATE → the TDI state.
    func state(faults: inout FaultState) throws(DeviceFailure) -> TDIState {
        guard case let .deviceInterfaceState(response) = try send(GetDeviceInterfaceState(interfaceID: interfaceID), faults: &faults) else {
            throw .malformed
        }
        return response.state
    }

    /// LOCK_INTERFACE_REQUEST → the START_INTERFACE_NONCE.
    func lock(flags: LockInterfaceFlags, streamID: UInt8, mmioReportingOffset: UInt64,
              faults: inout FaultState) throws(DeviceFailure) -> StartInterfaceNonce {
        let request = LockInterfaceRequest(interfaceID: interfaceID, flags: flags, defaultStreamID: streamID,
                                           mmioReportingOffset: mmioReportingOffset)
        guard case let .lockInterface(response) = try send(request, faults: &faults) else { throw .malformed }
        return response.nonce
    }

    /// GET_DEVICE_INTERFACE_REPORT portion by portion (tdisp-spdm.md §2.10, the TDISP module's
    /// ``InterfaceReportReader`` checks) → the report bytes and their decoded form.
    func report(faults: inout FaultState) throws(DeviceFailure) -> (bytes: [UInt8], report: DeviceInterfaceReport) {
        var reader = InterfaceReportReader(maxPortion: 0x400)
        while !reader.isComplete {
            guard case let .deviceInterfaceReport(portion) = try send(reader.nextRequest(interfaceID: interfaceID), faults: &faults),
                  (try? reader.accept(portion)) != nil
            else { throw .malformed }
        }
        guard let report = try? reader.report() else { throw .malformed }
        return (reader.received, report)
    }

    /// START_INTERFACE_REQUEST with `nonce`.
    func start(nonce: StartInterfaceNonce, faults: inout FaultState) throws(DeviceFailure) {
        guard case .startInterface = try send(StartInterfaceRequest(interfaceID: interfaceID, nonce: nonce), faults: &faults) else {
            throw .malformed
        }
    }

    /// STOP_INTERFACE_REQUEST.
    func stop(faults: inout FaultState) throws(DeviceFailure) {
        guard case .stopInterface = try send(StopInterfaceRequest(interfaceID: interfaceID), faults: &faults) else {
            throw .malformed
        }
    }
}

extension MMIORange {
    /// First byte address (FIRST_PAGE × 4096); nil when it does not fit 64 bits.
    var byteBase: UInt64? {
        let (value, overflow) = firstPage.multipliedReportingOverflow(by: MMIORange.pageSize)
        return overflow ? nil : value
    }
    /// Size in bytes.
    var byteSize: UInt64 { UInt64(numberOfPages) * MMIORange.pageSize }
}
