import Foundation
@testable import PCI

/// The shared dumps of Examples/devices and helpers that build small configuration spaces.
enum Fixtures {
    static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Examples/devices")

    static func text(_ name: String) -> String {
        (try? String(contentsOf: examples.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    /// Examples/devices/tee-io-endpoint-sriov.lspci (pciutils tests/cap-ide).
    static let teeIO = text("tee-io-endpoint-sriov.lspci")
    /// Examples/devices/doe-two-mailboxes.lspci (pciutils tests/cap-doe).
    static let doe = text("doe-two-mailboxes.lspci")

    /// The lines of `text` (no terminators).
    static func lines(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Only the header line and hex rows of a dump (what `lspci -xxxx` prints).
    static func hexOnly(_ text: String, keepHeader: Bool = true) -> String {
        lines(text).enumerated().filter { index, line in
            (keepHeader && index == 0) || (line.first.map { !$0.isWhitespace } ?? false) && index > 0
        }.map(\.element).joined(separator: "\n")
    }

    /// Renders `bytes` as `lspci` hex rows.
    static func hexRows(_ bytes: [UInt8]) -> String {
        stride(from: 0, to: bytes.count, by: 16).map { offset in
            String(offset, radix: 16) + ":" + bytes[offset..<min(offset + 16, bytes.count)]
                .map { " " + (($0 < 16) ? "0" : "") + String($0, radix: 16) }.joined()
        }.joined(separator: "\n")
    }

    /// The configuration bytes of a dump's first device.
    static func bytes(_ text: String) -> [UInt8] {
        (try? LspciDump.parse(text).devices.first?.config.bytes) ?? []
    }

    /// A dump of one device at `bdf` with `bytes` and no text.
    static func dump(_ bdf: String, _ bytes: [UInt8], title: String = "Device") -> String {
        "\(bdf) \(title)\n" + hexRows(bytes) + "\n"
    }

    /// A 256- or 4096-byte image: type `headerType`, capability list on, PCIe capability at 0x40
    /// (version 2) of `portType` with DevCap `devCap`, and type 1 bus numbers when given.
    static func image(
        size: Int = 256, headerType: UInt8 = 0, portType: UInt8 = 0, devCap: UInt32 = 0,
        buses: (UInt8, UInt8, UInt8)? = nil, vendor: UInt16 = 0x1af4, device: UInt16 = 0x1000
    ) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        put16(&bytes, 0x00, vendor)
        put16(&bytes, 0x02, device)
        put16(&bytes, 0x06, 0x0010)
        bytes[0x0e] = headerType
        bytes[0x34] = 0x40
        bytes[0x40] = 0x10
        bytes[0x41] = 0x00
        put16(&bytes, 0x42, UInt16(portType) << 4 | 0x2)
        put32(&bytes, 0x44, devCap)
        if let buses {
            bytes[0x18] = buses.0
            bytes[0x19] = buses.1
            bytes[0x1a] = buses.2
        }
        return bytes
    }

    static func put16(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt16) {
        bytes[offset] = UInt8(value & 0xff)
        bytes[offset + 1] = UInt8(value >> 8)
    }

    static func put32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for index in 0..<4 { bytes[offset + index] = UInt8((value >> (8 * UInt32(index))) & 0xff) }
    }
}

/// SplitMix64: a small seeded generator so fuzz tests are deterministic.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
