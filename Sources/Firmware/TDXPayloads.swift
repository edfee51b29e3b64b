// Intel TDX Connect (tvm_arch = 3): the TDCM buffer the guest shares with the VMM, the
// emulator-defined op payloads (EMU-TDX-2: CCA-shaped), and the TDX status numbers.
// Source: arch-backends.md §3 [P] and §6.3 (EMU-TDX-1..3).
import Wire

/// Intel TDX Connect payloads and constants (arch-backends.md §3).
public enum TDX {
    /// READ_OBJECT request (EMU-TDX-2): the 16-byte CCA layout; object types ``ObjectType``.
    public typealias ReadObjectRequest = CCA.ReadObjectRequest
    /// REGEN_OBJECT request (EMU-TDX-2): the 24-byte CCA layout (nonce is a user pointer).
    public typealias RegenObjectRequest = CCA.RegenObjectRequest
    /// OBJECT_INFO request (EMU-TDX-2): u32 object_type.
    public typealias ObjectInfoRequest = CCA.ObjectInfoRequest
    /// OBJECT_INFO response (EMU-TDX-2): u32 size.
    public typealias ObjectInfoResponse = CCA.ObjectInfoResponse
    /// VALIDATE_MMIO request (EMU-TDX-2): gpa_base, gpa_top, pa_base, 24 bytes.
    public typealias ValidateMMIORequest = CCA.ValidateMMIORequest
    /// SET_TDI_STATE request (EMU-TDX-2): u32 TDISP state, only RUN (2) accepted.
    public typealias SetTDIStateRequest = CCA.SetTDIStateRequest

    /// TDX object types of READ_OBJECT / OBJECT_INFO / REGEN_OBJECT (EMU-TDX-2).
    public enum ObjectType: UInt32, Sendable {
        /// The TDI report (DEVICE_INTERFACE_REPORT).
        case tdiReport = 1
        /// Device info (GET_DEV_INFO; format not public, §5.4): the model serves the
        /// TDISP_CAPABILITIES payload (28 bytes) the DSM sent at connect.
        case deviceInfo = 2
    }

    /// The TDCM buffer header, 20 bytes, followed by `data_length` data bytes
    /// (arch-backends.md §3.2 [P]).
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 2 | operation (``TDCMOperation``) |
    /// | 2 | 1 | version |
    /// | 3 | 1 | reserved |
    /// | 4 | 4 | reserved |
    /// | 8 | 1 | status (WAIT 0, COMPLETED 1, ERROR 2) |
    /// | 9 | 1 | error (``TDCMError``) |
    /// | 10 | 2 | reserved |
    /// | 12 | 4 | reserved |
    /// | 16 | 4 | data_length |
    /// | 20 | n | data |
    public struct TDCMBuffer: Sendable, Equatable {
        /// `hdr_sz` (96).
        public static let headerSize = 20
        /// `operation` (``TDX/TDCMOperation``).
        public var operation: UInt16
        /// `version`.
        public var version: UInt8
        /// `status` (the message's status table).
        public var status: UInt8
        /// `error` (``TDX/TDCMError``), meaningful with status ERROR.
        public var error: UInt8
        /// `data[data_length]`.
        public var data: [UInt8]
        /// Creates the value from its fields.
        public init(operation: UInt16, version: UInt8 = 1, status: UInt8 = TDCMStatus.wait, error: UInt8 = 0, data: [UInt8] = []) {
            self.operation = operation
            self.version = version
            self.status = status
            self.error = error
            self.data = data
        }
        /// Decodes a buffer whose length is exactly 20 + data_length.
        /// Errors: truncation; `trailingBytes` when bytes follow the data.
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            operation = try reader.u16()
            version = try reader.u8()
            try reader.skip(5)
            status = try reader.u8()
            error = try reader.u8()
            try reader.skip(6)
            let length = try reader.u32()
            guard UInt64(length) <= UInt64(reader.remaining) else {
                throw .truncated(offset: reader.offset, needed: Int(clamping: UInt64(length)), available: reader.remaining)
            }
            data = try reader.bytes(Int(length))
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.headerSize + data.count)
            writer.u16(operation)
            writer.u8(version)
            writer.zeros(5)
            writer.u8(status)
            writer.u8(error)
            writer.zeros(6)
            writer.u32(UInt32(truncatingIfNeeded: data.count))
            writer.bytes(data)
            return writer.bytes
        }
    }

    /// TDCM operations (arch-backends.md §3.2 [P]).
    public enum TDCMOperation: UInt16, Sendable, CaseIterable {
        case checkTEEIOSupport = 1, bind = 2, getDeviceInfo = 3, getTDIReport = 4
        case startTDI = 5, getTDIState = 6, unbind = 7
    }

    /// TDCM status byte values (arch-backends.md §3.2 [P]).
    public enum TDCMStatus {
        /// WAIT (0).
        public static let wait: UInt8 = 0
        /// COMPLETED (1).
        public static let completed: UInt8 = 1
        /// `error` (``TDX/TDCMError``), meaningful with status ERROR.
        public static let error: UInt8 = 2
    }

    /// TDCM error byte values (arch-backends.md §3.2 [P]; EMU-TDX-3: link errors surface here,
    /// never in tsm_code).
    public enum TDCMError: UInt8, Sendable {
        case tdxModule = 10, tdxioDevice = 11, spdmMessage = 12, ideKMMessage = 13
        case tdispMessage = 14, invalidState = 15
    }

    /// 64-bit TDX module statuses carried in `tsm_code` (arch-backends.md §3.2 [P] for the class
    /// values in the high 32 bits; §6.3).
    ///
    /// `tdiInvalidState` and `tdiDeviceError` have no public value (openvmm names the first,
    /// nothing names the second); the model uses 0xC0000F42 / 0xC0000F43 in the high half,
    /// next to the public TDI_* values (FW-TDX-1 in docs/firmware.md).
    public enum Status {
        /// SUCCESS (0).
        public static let success: UInt64 = 0
        /// INVALID_OPERAND (0xC000_0100_0000_0000).
        public static let invalidOperand: UInt64 = 0xC000_0100_0000_0000
        /// OPERAND_BUSY (0x8000_0200_0000_0000).
        public static let operandBusy: UInt64 = 0x8000_0200_0000_0000
        /// TDI_NOT_PRESENT (0xC000_0F40_0000_0000).
        public static let tdiNotPresent: UInt64 = 0xC000_0F40_0000_0000
        /// TDI_INVALID_METADATA (0xC000_0F41_0000_0000).
        public static let tdiInvalidMetadata: UInt64 = 0xC000_0F41_0000_0000
        /// FW-TDX-1 (not public).
        public static let tdiInvalidState: UInt64 = 0xC000_0F42_0000_0000
        /// FW-TDX-1 (not public): the device answered a TDISP request with an error or not at all.
        public static let tdiDeviceError: UInt64 = 0xC000_0F43_0000_0000
    }

    /// `TDG.TDI.RD` field ids (arch-backends.md §3.1 [P]).
    public enum TDIField: UInt64, Sendable {
        case tdispState = 2
        case bindSessionID = 5
    }

    /// SEAMCALL / TDCALL names used as firmware-call names (fault injection, call log). Their
    /// leaf numbers are not public (§3.1); the names follow the guest comments.
    public enum SEAMCALL {
        /// The call TDH.SPDM.CREATE.
        public static let spdmCreate = "TDH.SPDM.CREATE"
        /// The call TDH.SPDM.CONNECT.
        public static let spdmConnect = "TDH.SPDM.CONNECT"
        /// The call TDH.IDE.STREAM.CREATE.
        public static let ideStreamCreate = "TDH.IDE.STREAM.CREATE"
        /// The call TDH.IDE.STREAM.KM.
        public static let ideStreamKM = "TDH.IDE.STREAM.KM"
        /// The call TDH.IOMMU.SETUP.
        public static let iommuSetup = "TDH.IOMMU.SETUP"
        /// The call TDH.SPDM.DISCONNECT.
        public static let spdmDisconnect = "TDH.SPDM.DISCONNECT"
        /// The call TDH.TDI.CREATE.
        public static let tdiCreate = "TDH.TDI.CREATE"
        /// The call TDH.TDI.BIND.
        public static let tdiBind = "TDH.TDI.BIND"
        /// The call TDH.TDI.GET_REPORT.
        public static let tdiGetReport = "TDH.TDI.GET_REPORT"
        /// The call TDH.TDI.START.
        public static let tdiStart = "TDH.TDI.START"
        /// The call TDH.TDI.STOP.
        public static let tdiStop = "TDH.TDI.STOP"
        /// The call TDH.TDI.UNBIND.
        public static let tdiUnbind = "TDH.TDI.UNBIND"
        /// The call TDH.MMIO.MAP.
        public static let mmioMap = "TDH.MMIO.MAP"
    }
}
