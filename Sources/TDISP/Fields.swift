import Wire

/// TDI_STATE: the state of one TDI (docs/spec/tdisp-spdm.md §2.3, §2.7).
///
/// The initial state is CONFIG_UNLOCKED. Decoding any other byte throws
/// ``WireError/invalidValue(field:value:)`` with field `TDI_STATE`.
public enum TDIState: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// 0: the host may configure the function; no TVM data.
    case configUnlocked = 0
    /// 1: configuration locked (LOCK_INTERFACE_REQUEST succeeded), not yet attached to the TVM.
    case configLocked = 1
    /// 2: running for the TVM (START_INTERFACE_REQUEST succeeded).
    case run = 2
    /// 3: a change to the locked configuration was detected; only STOP leaves it.
    case error = 3

    /// The standard's name: `CONFIG_UNLOCKED`, `CONFIG_LOCKED`, `RUN`, `ERROR`.
    public var description: String {
        switch self {
        case .configUnlocked: return "CONFIG_UNLOCKED"
        case .configLocked: return "CONFIG_LOCKED"
        case .run: return "RUN"
        case .error: return "ERROR"
        }
    }
}

/// LOCK_INTERFACE_REQUEST FLAGS and TDISP_CAPABILITIES LOCK_INTERFACE_FLAGS_SUPPORTED (u16).
///
/// | Bit | Name |
/// |---|---|
/// | 0 | NO_FW_UPDATE |
/// | 1 | SYSTEM_CACHE_LINE_SIZE (0: 64 bytes, 1: 128 bytes) |
/// | 2 | LOCK_MSIX |
/// | 3 | BIND_P2P |
/// | 4 | ALL_REQUEST_REDIRECT |
/// | 15:5 | reserved (``reserved``) |
///
/// Source: docs/spec/tdisp-spdm.md §2.5.
public struct LockInterfaceFlags: OptionSet, Hashable, Sendable {
    /// The raw value as on the wire.
    public var rawValue: UInt16
    /// Wraps a raw value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Bit 0: NO_FW_UPDATE (firmware updates not permitted while locked / INTERFACE_INFO: not permitted).
    public static let noFirmwareUpdate = Self(rawValue: 1 << 0)
    /// Bit 1: SYSTEM_CACHE_LINE_SIZE, set = 128-byte system cache line (clear = 64).
    public static let systemCacheLineSize128 = Self(rawValue: 1 << 1)
    /// Bit 2: LOCK_MSIX, lock the MSI-X table and PBA.
    public static let lockMSIX = Self(rawValue: 1 << 2)
    /// Bit 3: BIND_P2P, P2P may later be bound; BIND_P2P_ADDRESS_MASK is valid.
    public static let bindP2P = Self(rawValue: 1 << 3)
    /// Bit 4: ALL_REQUEST_REDIRECT, redirect all ATS-translated requests upstream.
    public static let allRequestRedirect = Self(rawValue: 1 << 4)
    /// Every bit TDISP 1.0 defines (0x001F).
    public static let defined: Self = [.noFirmwareUpdate, .systemCacheLineSize128, .lockMSIX, .bindP2P, .allRequestRedirect]
    /// Bits 15:5, reserved (0xFFE0).
    public static let reserved = Self(rawValue: 0xFFE0)
}

/// REQ_MSGS_SUPPORTED: a 128-bit bitmap in TDISP_CAPABILITIES, one bit per request code.
///
/// Bit index = request code − 0x80; byte = index / 8, bit = index % 8 (GET_TDISP_VERSION 0x81 is
/// byte 0 bit 1; STOP 0x87 byte 0 bit 7; VDM 0x8B byte 1 bit 3). Source: docs/spec/tdisp-spdm.md §2.4.
public struct RequestMessagesSupported: Hashable, Sendable {
    /// Size on the wire, in bytes.
    public static let size = 16
    /// The 16 bytes.
    public private(set) var bytes: [UInt8]

    /// Wraps 16 bytes; other lengths are zero-padded or truncated to 16.
    public init(bytes: [UInt8]) {
        var fixed = Array(bytes.prefix(Self.size))
        fixed.append(contentsOf: repeatElement(0, count: Self.size - fixed.count))
        self.bytes = fixed
    }

    /// The bitmap with exactly the bits of `codes` (codes below 0x80 are ignored).
    public init(_ codes: [TDISPMessageType]) {
        self.init(bytes: [])
        for code in codes { insert(code) }
    }

    /// Sets the bit of `code` (a request code, 0x80-0xFF; others are ignored).
    public mutating func insert(_ code: TDISPMessageType) {
        guard code.rawValue >= 0x80 else { return }
        let index = Int(code.rawValue - 0x80)
        bytes[index / 8] |= 1 << UInt8(index % 8)
    }

    /// True if the bit of `code` is set (false for codes below 0x80).
    public func contains(_ code: TDISPMessageType) -> Bool {
        guard code.rawValue >= 0x80 else { return false }
        let index = Int(code.rawValue - 0x80)
        return bytes[index / 8] & (1 << UInt8(index % 8)) != 0
    }

    /// The request codes whose bit is set, in ascending order.
    public var codes: [TDISPMessageType] {
        (0x80...0xFF).map { TDISPMessageType(rawValue: UInt8($0)) }.filter { contains($0) }
    }
}

/// A START_INTERFACE_NONCE: exactly 32 bytes (docs/spec/tdisp-spdm.md §2.3, §2.6).
public struct StartInterfaceNonce: Hashable, Sendable, CustomStringConvertible {
    /// Size on the wire, in bytes.
    public static let size = 32
    /// The 32 bytes.
    public let bytes: [UInt8]

    /// Wraps `bytes`; nil unless there are exactly 32.
    public init?(_ bytes: [UInt8]) {
        guard bytes.count == Self.size else { return nil }
        self.bytes = bytes
    }

    /// Reads 32 bytes.
    public init(from reader: inout ByteReader) throws(WireError) {
        bytes = try reader.bytes(Self.size)
    }

    /// Compares with `other` in time independent of where they differ (as spdm-emu does).
    public func constantTimeEquals(_ other: StartInterfaceNonce) -> Bool {
        var difference: UInt8 = 0
        for (a, b) in zip(bytes, other.bytes) { difference |= a ^ b }
        return difference == 0
    }

    /// Lower-case hex.
    public var description: String { Hex.encode(bytes) }
}

/// TDISP_ERROR ERROR_CODE (u32). A struct over the value, so codes from newer revisions decode.
///
/// | Code | Name | ERROR_DATA |
/// |---|---|---|
/// | 0x0001 | INVALID_REQUEST | 0 |
/// | 0x0003 | BUSY | 0 |
/// | 0x0004 | INVALID_INTERFACE_STATE | 0 |
/// | 0x0005 | UNSPECIFIED | 0 |
/// | 0x0007 | UNSUPPORTED_REQUEST | the offending request code |
/// | 0x0041 | VERSION_MISMATCH | 0 |
/// | 0x00FF | VENDOR_SPECIFIC_ERROR | vendor; extended error data present |
/// | 0x0101 | INVALID_INTERFACE | 0 |
/// | 0x0102 | INVALID_NONCE | 0 |
/// | 0x0103 | INSUFFICIENT_ENTROPY | 0 |
/// | 0x0104 | INVALID_DEVICE_CONFIGURATION | 0 |
///
/// Source: docs/spec/tdisp-spdm.md §2.8.
public struct TDISPErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The raw value as on the wire.
    public var rawValue: UInt32
    /// Wraps a raw value.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 0x0001: INVALID_REQUEST.
    public static let invalidRequest = Self(rawValue: 0x0001)
    /// 0x0003: BUSY.
    public static let busy = Self(rawValue: 0x0003)
    /// 0x0004: INVALID_INTERFACE_STATE.
    public static let invalidInterfaceState = Self(rawValue: 0x0004)
    /// 0x0005: UNSPECIFIED.
    public static let unspecified = Self(rawValue: 0x0005)
    /// 0x0007: UNSUPPORTED_REQUEST (ERROR_DATA: the request code).
    public static let unsupportedRequest = Self(rawValue: 0x0007)
    /// 0x0041: VERSION_MISMATCH.
    public static let versionMismatch = Self(rawValue: 0x0041)
    /// 0x00FF: VENDOR_SPECIFIC_ERROR (extended error data present).
    public static let vendorSpecificError = Self(rawValue: 0x00FF)
    /// 0x0101: INVALID_INTERFACE.
    public static let invalidInterface = Self(rawValue: 0x0101)
    /// 0x0102: INVALID_NONCE.
    public static let invalidNonce = Self(rawValue: 0x0102)
    /// 0x0103: INSUFFICIENT_ENTROPY.
    public static let insufficientEntropy = Self(rawValue: 0x0103)
    /// 0x0104: INVALID_DEVICE_CONFIGURATION.
    public static let invalidDeviceConfiguration = Self(rawValue: 0x0104)

    /// The standard's name, or `ERROR_0xNNNN` for a code TDISP 1.0 does not define.
    public var name: String {
        switch rawValue {
        case 0x0001: return "INVALID_REQUEST"
        case 0x0003: return "BUSY"
        case 0x0004: return "INVALID_INTERFACE_STATE"
        case 0x0005: return "UNSPECIFIED"
        case 0x0007: return "UNSUPPORTED_REQUEST"
        case 0x0041: return "VERSION_MISMATCH"
        case 0x00FF: return "VENDOR_SPECIFIC_ERROR"
        case 0x0101: return "INVALID_INTERFACE"
        case 0x0102: return "INVALID_NONCE"
        case 0x0103: return "INSUFFICIENT_ENTROPY"
        case 0x0104: return "INVALID_DEVICE_CONFIGURATION"
        default: return "ERROR_0x" + String(rawValue, radix: 16, uppercase: true)
        }
    }

    /// A readable form for traces and the CLI.
    public var description: String { name }
}
