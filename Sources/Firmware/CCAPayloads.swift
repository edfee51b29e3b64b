// Arm CCA (tvm_arch = 1): guest-request payloads of the op API and the RMI/RHI numbers the RMM
// model uses. Source: arch-backends.md §1.2-§1.5 [P]; EMU-CCA-1..4.
import Wire

/// A guest-request payload with an exact wire size: `decode` rejects any other length with
/// ``WireError/truncated(offset:needed:available:)`` or ``WireError/trailingBytes(offset:count:)``
/// and never traps.
public protocol FixedSizePayload: Sendable, Equatable {
    /// The exact encoded size in bytes.
    static var size: Int { get }
    /// Decodes exactly ``size`` bytes.
    init(decoding bytes: [UInt8]) throws(WireError)
    /// The ``size`` encoded bytes.
    func encoded() -> [UInt8]
}

/// Arm CCA payloads and constants (arch-backends.md §1).
public enum CCA {
    /// READ_OBJECT (op 1) request, 16 bytes (arch-backends.md §1.2 [P]).
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 4 | object_type (``ObjectType``, numbering per profile, EMU-CCA-1) |
    /// | 4 | 4 | reserved |
    /// | 8 | 8 | offset (ignored unless EMU-CCA-4 is switched on) |
    public struct ReadObjectRequest: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 16
        /// `object_type`: which object (numbering per profile).
        public var objectType: UInt32
        /// The reserved field as received (not checked).
        public var reserved: UInt32
        /// `offset` into the object, in bytes (honoured only with EMU-CCA-4).
        public var offset: UInt64
        /// Creates the value from its fields.
        public init(objectType: UInt32, reserved: UInt32 = 0, offset: UInt64 = 0) {
            self.objectType = objectType
            self.reserved = reserved
            self.offset = offset
        }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            objectType = try reader.u32()
            reserved = try reader.u32()
            offset = try reader.u64()
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u32(objectType)
            writer.u32(reserved)
            writer.u64(offset)
            return writer.bytes
        }
    }

    /// REGEN_OBJECT (op 2) request, 24 bytes (arch-backends.md §1.2 [P]).
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 4 | object_type (only INTERFACE_REPORT is accepted) |
    /// | 4 | 4 | reserved |
    /// | 8 | 8 | flags |
    /// | 16 | 8 | nonce: a **user pointer** to a 32-byte nonce |
    public struct RegenObjectRequest: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 24
        /// Size of the nonce the pointer refers to.
        public static let nonceSize = 32
        /// `object_type`: which object (numbering per profile).
        public var objectType: UInt32
        /// The reserved field as received (not checked).
        public var reserved: UInt32
        /// `flags` (no flag is defined by the driver we read; kept as given).
        public var flags: UInt64
        /// `nonce`: user address of the 32-byte nonce.
        public var nonceAddress: UInt64
        /// Creates the value from its fields.
        public init(objectType: UInt32, reserved: UInt32 = 0, flags: UInt64 = 0, nonceAddress: UInt64) {
            self.objectType = objectType
            self.reserved = reserved
            self.flags = flags
            self.nonceAddress = nonceAddress
        }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            objectType = try reader.u32()
            reserved = try reader.u32()
            flags = try reader.u64()
            nonceAddress = try reader.u64()
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u32(objectType)
            writer.u32(reserved)
            writer.u64(flags)
            writer.u64(nonceAddress)
            return writer.bytes
        }
    }

    /// OBJECT_INFO (op 3) request, 4 bytes: u32 object_type at 0 (arch-backends.md §1.2 [P]).
    public struct ObjectInfoRequest: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 4
        /// `object_type`: which object (numbering per profile).
        public var objectType: UInt32
        /// Creates the value from its fields.
        public init(objectType: UInt32) { self.objectType = objectType }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            objectType = try reader.u32()
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: 4)
            writer.u32(objectType)
            return writer.bytes
        }
    }

    /// OBJECT_INFO (op 3) response, 4 bytes: u32 size of the cached object in bytes at 0
    /// (arch-backends.md §1.2 [P]).
    public struct ObjectInfoResponse: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 4
        /// Size of the cached object, in bytes.
        public var objectSize: UInt32
        /// Creates the value from its fields.
        public init(objectSize: UInt32) { self.objectSize = objectSize }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            objectSize = try reader.u32()
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: 4)
            writer.u32(objectSize)
            return writer.bytes
        }
    }

    /// VALIDATE_MMIO (op 4) request, 24 bytes (arch-backends.md §1.2 [P]): the fields of the
    /// `cca_exit` record that name a device-memory range.
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 8 | gpa_base (IPA, 4 KiB aligned) |
    /// | 8 | 8 | gpa_top (exclusive, 4 KiB aligned, > gpa_base) |
    /// | 16 | 8 | pa_base (host physical address of the MMIO, 4 KiB aligned) |
    public struct ValidateMMIORequest: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 24
        /// `gpa_base`: first guest (IPA/GPA) byte address, 4 KiB aligned.
        public var gpaBase: UInt64
        /// `gpa_top`: end of the range (exclusive), 4 KiB aligned.
        public var gpaTop: UInt64
        /// `pa_base`: host physical address the range maps to, 4 KiB aligned.
        public var paBase: UInt64
        /// Creates the value from its fields.
        public init(gpaBase: UInt64, gpaTop: UInt64, paBase: UInt64) {
            self.gpaBase = gpaBase
            self.gpaTop = gpaTop
            self.paBase = paBase
        }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            gpaBase = try reader.u64()
            gpaTop = try reader.u64()
            paBase = try reader.u64()
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u64(gpaBase)
            writer.u64(gpaTop)
            writer.u64(paBase)
            return writer.bytes
        }
    }

    /// SET_TDI_STATE (op 5) request, 4 bytes: u32 tdi_state (``RHITDIState`` value) at 0
    /// (arch-backends.md §1.2 [P]). Only RUN (2) is accepted.
    public struct SetTDIStateRequest: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 4
        /// `tdi_state`: the RHI TDI state asked for (``RHITDIState``; only RUN = 2 is served).
        public var state: UInt32
        /// Creates the value from its fields.
        public init(state: UInt32) { self.state = state }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            state = try reader.u32()
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: 4)
            writer.u32(state)
            return writer.bytes
        }
    }

    /// The objects the RMM caches for a VDEV (arch-backends.md §1.3).
    public enum Object: Sendable, Hashable, CaseIterable {
        case vca, certificateChain, measurements, interfaceReport, extensionEvidence
    }

    /// Object type numbers (arch-backends.md §1.3 [P]; EMU-CCA-1 picks `linux` for the tunnel).
    ///
    /// | object | linux (`rhi.h`) | acs (`val_rhi.h`) |
    /// |---|---|---|
    /// | VCA | 4 | 0 |
    /// | certificate chain | 1 | 1 |
    /// | measurements | 2 | 2 |
    /// | interface report | 3 | 3 |
    /// | extension evidence | – | 4 (OBJECT_UNSUPPORTED) |
    public enum ObjectType {
        /// The object a wire `object_type` names under `numbering`, or nil when unknown.
        public static func object(_ raw: UInt32, numbering: FirmwareProfile.CCAObjectNumbering) -> Object? {
            switch (numbering, raw) {
            case (.linux, 1), (.acs, 1): return .certificateChain
            case (.linux, 2), (.acs, 2): return .measurements
            case (.linux, 3), (.acs, 3): return .interfaceReport
            case (.linux, 4), (.acs, 0): return .vca
            case (.acs, 4): return .extensionEvidence
            default: return nil
            }
        }

        /// The wire number of `object` under `numbering` (nil: not numbered there).
        public static func raw(_ object: Object, numbering: FirmwareProfile.CCAObjectNumbering) -> UInt32? {
            switch (numbering, object) {
            case (_, .certificateChain): return 1
            case (_, .measurements): return 2
            case (_, .interfaceReport): return 3
            case (.linux, .vca): return 4
            case (.acs, .vca): return 0
            case (.acs, .extensionEvidence): return 4
            case (.linux, .extensionEvidence): return nil
            }
        }
    }

    /// RHI-DA TDI states carried by SET_TDI_STATE (arch-backends.md §1.4 [P]).
    public enum RHITDIState: UInt32, Sendable {
        case unlocked = 0, locked = 1, run = 2
    }

    /// RMI command status codes, bits 7:0 of the status word (arch-backends.md §1.5 [P]).
    public enum RMIStatus: UInt64, Sendable {
        case success = 0, errorInput = 1, errorRealm = 2, errorREC = 3, errorRTT = 4
        case errorNotSupported = 5, errorDevice = 6, errorRTTAux = 7, errorPSMMUST = 8
        case errorDPT = 9, busy = 10, errorGlobal = 11
    }

    /// RSI status codes returned to the Realm (arch-backends.md §1.5 [P]).
    public enum RSIStatus: UInt64, Sendable {
        case success = 0, errorInput = 1, errorState = 2, incomplete = 3, errorUnknown = 4, errorDevice = 5
    }

    /// RMI VDEV states (arch-backends.md §1.5 [P]).
    public enum VDEVState: UInt8, Sendable, CustomStringConvertible {
        case new = 0, unlocked = 1, locked = 2, started = 3, error = 4
        /// The name the standard or spec uses.
        public var description: String {
            switch self {
            case .new: return "NEW"
            case .unlocked: return "UNLOCKED"
            case .locked: return "LOCKED"
            case .started: return "STARTED"
            case .error: return "ERROR"
            }
        }
    }

    /// RMI PDEV states (arch-backends.md §1.5 [P]).
    public enum PDEVState: UInt8, Sendable {
        case new = 0, needsKey = 1, hasKey = 2, ready = 3, ideResetting = 4
        case communicating = 5, stopping = 6, stopped = 7, error = 8
    }

    /// RMI function names used as firmware-call names (fault injection, call log), with their
    /// FIDs where public (arch-backends.md §1.2 [P]).
    public enum RMI {
        /// PDEV creation (FID not captured).
        public static let pdevCreate = "RMI_PDEV_CREATE"
        /// PDEV communicate step (FID not captured).
        public static let pdevCommunicate = "RMI_PDEV_COMMUNICATE"
        /// PDEV destruction (FID not captured).
        public static let pdevDestroy = "RMI_PDEV_DESTROY"
        /// 0xC4000187
        public static let vdevCreate = "RMI_VDEV_CREATE"
        /// 0xC4000186
        public static let vdevCommunicate = "RMI_VDEV_COMMUNICATE"
        /// 0xC40001D2
        public static let vdevLock = "RMI_VDEV_LOCK"
        /// 0xC40001D0
        public static let vdevGetInterfaceReport = "RMI_VDEV_GET_INTERFACE_REPORT"
        /// 0xC40001D3
        public static let vdevStart = "RMI_VDEV_START"
        /// 0xC400018A
        public static let vdevUnlock = "RMI_VDEV_UNLOCK"
        /// 0xC4000188
        public static let vdevDestroy = "RMI_VDEV_DESTROY"
        /// Delegating the device-memory granules to the Realm world.
        public static let granuleDelegate = "RMI_GRANULE_DELEGATE"
        /// Undelegating them (rollback and unbind).
        public static let granuleUndelegate = "RMI_GRANULE_UNDELEGATE"
        /// Creating a missing RTT level after RMI_ERROR_RTT.
        public static let rttCreate = "RMI_RTT_CREATE"
        /// The RMI device-memory map call.
        public static let devMemMap = "RMI_DEV_MEM_MAP"
        /// The matching unmap.
        public static let devMemUnmap = "RMI_DEV_MEM_UNMAP"
    }

    /// Cache limits (arch-backends.md §1.3 [P]): 4 KiB chunks, at most 16 MiB per object.
    public static let cacheChunkSize = 4096
    /// Largest object the cache holds.
    public static let cacheMaxObjectSize = 16 << 20
}
