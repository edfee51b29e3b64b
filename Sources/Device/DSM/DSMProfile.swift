import TDISP

/// How a ``DSM`` behaves where implementations differ (docs/spec/tdisp-spdm.md §2.7-2.12).
///
/// ``standard`` is TSMKit's DSM with every EMU-TDISP choice; ``spdmEmu`` reproduces DMTF's
/// spdm-emu sample device (§2.11) byte for byte; ``portion64`` is ``standard`` with spdm-emu's
/// 0x40-byte report portions (EMU-TDISP-7).
public struct DSMProfile: Hashable, Sendable {
    /// Name used by `tsmctl dsm --profile` (`standard`, `spdm-emu`, `portion64`).
    public var name: String
    /// Requests served; any other code gets UNSUPPORTED_REQUEST with ERROR_DATA = the code.
    /// Also sent as REQ_MSGS_SUPPORTED.
    public var requestMessagesSupported: RequestMessagesSupported
    /// LOCK_INTERFACE_FLAGS_SUPPORTED.
    public var lockInterfaceFlagsSupported: LockInterfaceFlags
    /// DEV_ADDR_WIDTH (address bits).
    public var deviceAddressWidth: UInt8
    /// NUM_REQ_THIS / NUM_REQ_ALL.
    public var numRequestsThis: UInt8
    /// NUM_REQ_ALL: outstanding requests permitted for all TDIs of the DSM.
    public var numRequestsAll: UInt8
    /// Largest PORTION_LENGTH served (EMU-TDISP-7).
    public var maxPortion: UInt16
    /// EMU-TDISP-3 `stopStrict`: STOP in CONFIG_UNLOCKED → INVALID_INTERFACE_STATE (spdm-emu);
    /// false: STOP_INTERFACE_RESPONSE, nothing changes.
    public var stopStrict: Bool
    /// EMU-TDISP-1 and EMU-TDISP-6: LOCK rejects unsupported/reserved FLAGS and an
    /// MMIO_REPORTING_OFFSET that is not 4 KiB aligned (INVALID_REQUEST). spdm-emu stores them
    /// unchecked.
    public var checkLockParameters: Bool
    /// GET_DEVICE_INTERFACE_REPORT only in CONFIG_LOCKED and RUN (§2.7). spdm-emu does not check.
    public var reportRequiresLock: Bool
    /// EMU-TDISP-2: the START nonce is single use and destroyed whenever the TDI leaves
    /// CONFIG_LOCKED other than by a successful START. spdm-emu never clears it.
    public var singleUseNonce: Bool
    /// STOP discards the report (spdm-emu keeps serving the old one after STOP).
    public var stopDiscardsReport: Bool
    /// EMU-TDISP-5: TDISP_ERROR header version is 0x10 (false: echo the request's byte, spdm-emu).
    public var errorVersionIsV1_0: Bool
    /// spdm-emu's single global TDI context: GET_TDISP_VERSION (re)initialises it from the
    /// request's INTERFACE_ID (state CONFIG_UNLOCKED, nonce and report cleared); every other
    /// request must carry that INTERFACE_ID (else INVALID_INTERFACE). Before the first
    /// GET_TDISP_VERSION the context's INTERFACE_ID is all zero bytes.
    public var versionInitialisesGlobalContext: Bool
    /// When set, LOCK installs this report instead of building one from the function's BARs and
    /// MMIO_REPORTING_OFFSET is not applied (spdm-emu's sample device).
    public var fixedReport: DeviceInterfaceReport?

    /// Creates a profile; see each property for what it changes.
    public init(name: String, requestMessagesSupported: RequestMessagesSupported,
                lockInterfaceFlagsSupported: LockInterfaceFlags, deviceAddressWidth: UInt8,
                numRequestsThis: UInt8 = 0, numRequestsAll: UInt8 = 0, maxPortion: UInt16,
                stopStrict: Bool, checkLockParameters: Bool, reportRequiresLock: Bool, singleUseNonce: Bool,
                stopDiscardsReport: Bool, errorVersionIsV1_0: Bool, versionInitialisesGlobalContext: Bool,
                fixedReport: DeviceInterfaceReport?) {
        self.name = name
        self.requestMessagesSupported = requestMessagesSupported
        self.lockInterfaceFlagsSupported = lockInterfaceFlagsSupported
        self.deviceAddressWidth = deviceAddressWidth
        self.numRequestsThis = numRequestsThis
        self.numRequestsAll = numRequestsAll
        self.maxPortion = maxPortion
        self.stopStrict = stopStrict
        self.checkLockParameters = checkLockParameters
        self.reportRequiresLock = reportRequiresLock
        self.singleUseNonce = singleUseNonce
        self.stopDiscardsReport = stopDiscardsReport
        self.errorVersionIsV1_0 = errorVersionIsV1_0
        self.versionInitialisesGlobalContext = versionInitialisesGlobalContext
        self.fixedReport = fixedReport
    }

    /// The largest PORTION_LENGTH whose DEVICE_INTERFACE_REPORT (20 + p bytes) still fits an SPDM
    /// VENDOR_DEFINED_RESPONSE (RespLength u16 counting the protocol id byte): 0xFFFE − 20.
    /// The default of EMU-TDISP-7 until an SPDM layer passes the peer's DataTransferSize.
    public static let vendorDefinedMaxPortion: UInt16 = UInt16(PCISIGVendorDefinedMessage.maximumPayload - 20)

    /// TSMKit's DSM: serves 0x81-0x8A, supports every defined LOCK flag (0x001F), DEV_ADDR_WIDTH
    /// 52, all EMU-TDISP choices on, portions up to ``vendorDefinedMaxPortion``.
    public static let standard = DSMProfile(
        name: "standard",
        requestMessagesSupported: RequestMessagesSupported(Array(TDISPMessageType.allRequests.dropLast())),
        lockInterfaceFlagsSupported: .defined,
        deviceAddressWidth: 52,
        maxPortion: vendorDefinedMaxPortion,
        stopStrict: false, checkLockParameters: true, reportRequiresLock: true, singleUseNonce: true,
        stopDiscardsReport: true, errorVersionIsV1_0: true, versionInitialisesGlobalContext: false,
        fixedReport: nil)

    /// ``standard`` with 0x40-byte portions (EMU-TDISP-7 `portion64`).
    public static let portion64: DSMProfile = {
        var profile = standard
        profile.name = "portion64"
        profile.maxPortion = 0x40
        return profile
    }()

    /// DMTF spdm-emu's sample device (docs/spec/tdisp-spdm.md §2.11): serves 0x81-0x87
    /// (REQ_MSGS_SUPPORTED byte 0 = 0xFE), flags 0x0007, DEV_ADDR_WIDTH 48, NUM_REQ 0/0, portions
    /// of 0x40, STOP strict, no LOCK checks, no report state check, nonce never cleared, report
    /// kept after STOP, error version echoed, GET_TDISP_VERSION resets its one global context,
    /// and the fixed 100-byte sample report (``spdmEmuSampleReport``).
    public static let spdmEmu = DSMProfile(
        name: "spdm-emu",
        requestMessagesSupported: RequestMessagesSupported(Array(TDISPMessageType.allRequests.prefix(7))),
        lockInterfaceFlagsSupported: [.noFirmwareUpdate, .systemCacheLineSize128, .lockMSIX],
        deviceAddressWidth: 48,
        maxPortion: 0x40,
        stopStrict: true, checkLockParameters: false, reportRequiresLock: false, singleUseNonce: false,
        stopDiscardsReport: false, errorVersionIsV1_0: false, versionInitialisesGlobalContext: true,
        fixedReport: spdmEmuSampleReport)

    /// The sample report spdm-emu's device builds at LOCK (§2.11): INTERFACE_INFO 0x0003, four
    /// ranges (page 0x0 ×1 non-TEE id 1; 0x8000 ×4, 0x10000 ×8, 0x20000 ×8 updatable, ids 2-4),
    /// DEVICE_SPECIFIC_INFO "tdisp_dev_emu" NUL NUL NUL (16 bytes). 100 bytes.
    public static let spdmEmuSampleReport = DeviceInterfaceReport(
        interfaceInfo: [.noFirmwareUpdate, .dmaWithoutPASID],
        mmioRanges: [
            MMIORange(firstPage: 0x0, numberOfPages: 1, attributes: .nonTEEMemory, rangeID: 1),
            MMIORange(firstPage: 0x8000, numberOfPages: 4, attributes: .memoryAttributeUpdatable, rangeID: 2),
            MMIORange(firstPage: 0x10000, numberOfPages: 8, attributes: .memoryAttributeUpdatable, rangeID: 3),
            MMIORange(firstPage: 0x20000, numberOfPages: 8, attributes: .memoryAttributeUpdatable, rangeID: 4),
        ],
        deviceSpecificInfo: Array("tdisp_dev_emu".utf8) + [0, 0, 0])

    /// The profiles `tsmctl dsm --profile` knows, by name.
    public static let all: [DSMProfile] = [standard, portion64, spdmEmu]

    /// The profile called `name`, or nil.
    public static func named(_ name: String) -> DSMProfile? { all.first { $0.name == name } }
}
