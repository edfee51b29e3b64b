/// The devices of an `lspci` dump, each with its decoded configuration space.
///
/// Accepted input (pciutils `lspci`, see Examples/devices/SOURCES.md):
/// - `lspci -vvv -xxxx` (or `-xxx`): per device a header line (`[dddd:]bb:dd.f description`),
///   indented decoded text, then the hex block;
/// - a hex block alone, with or without its header line;
/// - several devices in one file, separated by blank lines or by their header lines.
///
/// The hex block is rows of `OFF: b0 b1 … b15` (OFF in hex, 16 bytes a row, rows consecutive from
/// 00), 256 bytes (`-xxx`) or 4096 bytes (`-xxxx`). The model is built from these bytes; from the
/// text only the `[size=...]` of `Region N`, `Expansion ROM` and (inside the SR-IOV capability)
/// VF `Region N` lines is used, because sizes are not in configuration space.
///
/// A hex block without a header line gets the address `0000:00:NN.0`, NN counting such blocks
/// from 0 in file order (see docs/pci.md, EMU-PCI-3).
public struct LspciDump: Sendable, Hashable {
    /// One device (function) of the dump.
    public struct Device: Sendable, Hashable {
        /// Its address from the header line (or EMU-PCI-3 for a bare hex block).
        public let bdf: BDF
        /// Line of its header (or of its first hex row for a bare hex block), from 1.
        public let line: Int
        /// The header line after the address (e.g. `Class 0800: Device aaaa:bbbb`), if any.
        public let title: String?
        /// The decoded configuration space.
        public let config: ConfigSpace
    }

    /// The devices in file order.
    public let devices: [Device]

    /// Parses a dump.
    ///
    /// - Throws: ``PCIDumpError``: bad hex (`invalidHex` with line and column), a row of other than
    ///   16 bytes, rows out of order, a block of other than 256/4096 bytes (`truncatedHexBlock`),
    ///   a device header without a hex block, an unreadable `[size=...]`, a repeated address, an
    ///   unsound conventional capability list (`configSpace`, naming the offset), or no device.
    public static func parse(_ text: String) throws(PCIDumpError) -> LspciDump {
        var parser = Parser()
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
        for (index, line) in lines.enumerated() {
            try parser.consume(Array(line), lineNumber: index + 1)
        }
        try parser.finish()
        guard !parser.devices.isEmpty else { throw .noDevices }
        return LspciDump(devices: parser.devices)
    }
}

extension LspciDump {
    /// Line-by-line state of the parser.
    private struct Parser {
        struct Pending {
            var bdf: BDF
            var line: Int
            var title: String?
            var barSizes: [Int: UInt64] = [:]
            var romSize: UInt64?
            var vfBARSizes: [Int: UInt64] = [:]
            var seenCapabilities = false
            var inSRIOV = false
            var bytes: [UInt8] = []
            var blockOpen = false
            var blockClosed = false
            var lastRowLine = 0
        }

        var devices: [Device] = []
        var seen: Set<BDF> = []
        var pending: Pending?
        var bareBlocks = 0

        mutating func consume(_ line: [Character], lineNumber: Int) throws(PCIDumpError) {
            if let row = try Self.hexRow(line, lineNumber: lineNumber) {
                try appendRow(row, lineNumber: lineNumber)
                return
            }
            try closeBlock()
            guard let first = line.first, !line.allSatisfy(\.isWhitespace) else { return }
            if !first.isWhitespace {
                let token = String(line.prefix { !$0.isWhitespace })
                if let bdf = BDF(token) {
                    try finishDevice()
                    let title = String(line.dropFirst(token.count)).trimmingSpaces()
                    pending = Pending(bdf: bdf, line: lineNumber, title: title.isEmpty ? nil : title)
                } else if Self.looksLikeAddress(token) {
                    throw .invalidAddress(line: lineNumber, text: token)
                }
                return
            }
            guard var device = pending, device.bytes.isEmpty else { return }
            try Self.readText(String(line).trimmingSpaces(), lineNumber: lineNumber, into: &device)
            pending = device
        }

        mutating func finish() throws(PCIDumpError) {
            try closeBlock()
            try finishDevice()
        }

        private mutating func appendRow(_ row: (offset: Int, bytes: [UInt8]), lineNumber: Int) throws(PCIDumpError) {
            if var device = pending, device.blockOpen {
                if row.offset == 0, !device.bytes.isEmpty {
                    try closeBlock()
                    try startBareBlock(lineNumber: lineNumber)
                } else {
                    guard row.offset == device.bytes.count else {
                        throw .unexpectedRowOffset(line: lineNumber, expected: device.bytes.count, found: row.offset)
                    }
                    device.bytes += row.bytes
                    device.lastRowLine = lineNumber
                    pending = device
                    return
                }
            } else if pending == nil || pending?.blockClosed == true {
                try startBareBlock(lineNumber: lineNumber)
            }
            guard var device = pending else { return }
            guard row.offset == 0 else { throw .unexpectedRowOffset(line: lineNumber, expected: 0, found: row.offset) }
            device.blockOpen = true
            device.bytes = row.bytes
            device.lastRowLine = lineNumber
            pending = device
        }

        private mutating func startBareBlock(lineNumber: Int) throws(PCIDumpError) {
            try finishDevice()
            let bdf = BDF(routingID: UInt16(truncatingIfNeeded: bareBlocks << 3))
            bareBlocks += 1
            pending = Pending(bdf: bdf, line: lineNumber, title: nil)
        }

        private mutating func closeBlock() throws(PCIDumpError) {
            guard var device = pending, device.blockOpen else { return }
            guard device.bytes.count == 256 || device.bytes.count == 4096 else {
                throw .truncatedHexBlock(line: device.lastRowLine, byteCount: device.bytes.count)
            }
            device.blockOpen = false
            device.blockClosed = true
            pending = device
        }

        private mutating func finishDevice() throws(PCIDumpError) {
            guard let device = pending else { return }
            pending = nil
            guard device.blockClosed else { throw .missingHexBlock(line: device.line, bdf: device.bdf) }
            guard seen.insert(device.bdf).inserted else { throw .duplicateDevice(line: device.line, bdf: device.bdf) }
            let config: ConfigSpace
            do {
                config = try ConfigSpace(bytes: device.bytes, barSizes: device.barSizes, romSize: device.romSize,
                                         vfBARSizes: device.vfBARSizes)
            } catch {
                throw .configSpace(line: device.line, bdf: device.bdf, error)
            }
            devices.append(Device(bdf: device.bdf, line: device.line, title: device.title, config: config))
        }

        /// Reads a hex row `OFF: b0 … b15`; nil when the line is not shaped like one (its first
        /// token is not 1-3 hex digits followed by `:` and a space or the end).
        static func hexRow(_ line: [Character], lineNumber: Int) throws(PCIDumpError) -> (offset: Int, bytes: [UInt8])? {
            guard let colon = line.firstIndex(of: ":"), (1...3).contains(colon),
                  line[..<colon].allSatisfy(\.isHexDigit),
                  colon + 1 == line.count || line[colon + 1] == " " || line[colon + 1] == "\t",
                  let offset = Int(String(line[..<colon]), radix: 16)
            else { return nil }
            var bytes: [UInt8] = []
            var index = colon + 1
            while index < line.count {
                if line[index] == " " || line[index] == "\t" { index += 1; continue }
                let start = index
                while index < line.count, line[index] != " ", line[index] != "\t" {
                    guard nibble(line[index]) != nil else { throw .invalidHex(line: lineNumber, column: index + 1) }
                    index += 1
                }
                guard index - start == 2, let high = nibble(line[start]), let low = nibble(line[start + 1]) else {
                    throw .invalidHex(line: lineNumber, column: start + 1)
                }
                bytes.append(high << 4 | low)
            }
            guard bytes.count == 16 else { throw .malformedHexRow(line: lineNumber, byteCount: bytes.count) }
            return (offset, bytes)
        }

        static func nibble(_ character: Character) -> UInt8? {
            guard let ascii = character.asciiValue else { return nil }
            switch ascii {
            case 0x30...0x39: return ascii - 0x30
            case 0x41...0x46: return ascii - 0x41 + 10
            case 0x61...0x66: return ascii - 0x61 + 10
            default: return nil
            }
        }

        /// A column-0 token shaped like `x:y.z` with hex-ish parts: a mistyped address.
        static func looksLikeAddress(_ token: String) -> Bool {
            token.contains(":") && token.contains(".")
                && token.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }

        /// Picks the sizes out of `Region N: … [size=S]` and `Expansion ROM at … [size=S]`, and
        /// follows which capability the text is in.
        static func readText(_ line: String, lineNumber: Int, into device: inout Pending) throws(PCIDumpError) {
            // lspci marks resources it read from the kernel rather than the device "[virtual] ".
            let text = line.hasPrefix("[virtual] ") ? String(line.dropFirst("[virtual] ".count)) : line
            if text.hasPrefix("Capabilities:") {
                device.seenCapabilities = true
                device.inSRIOV = text.contains("Single Root I/O Virtualization") || text.contains("SR-IOV")
                return
            }
            if text.hasPrefix("Region ") {
                let digits = text.dropFirst("Region ".count).prefix { $0.isNumber }
                guard let index = Int(digits), (0..<6).contains(index) else { return }
                guard let size = try sizeAnnotation(text, lineNumber: lineNumber) else { return }
                if device.inSRIOV {
                    device.vfBARSizes[index] = size
                } else if !device.seenCapabilities {
                    device.barSizes[index] = size
                }
            } else if text.hasPrefix("Expansion ROM"), !device.seenCapabilities {
                device.romSize = try sizeAnnotation(text, lineNumber: lineNumber)
            }
        }

        /// `[size=N]` with N decimal and an optional K, M, G or T suffix (pciutils `show_size()`).
        static func sizeAnnotation(_ text: String, lineNumber: Int) throws(PCIDumpError) -> UInt64? {
            guard let start = text.firstRange(of: "[size=") else { return nil }
            let rest = text[start.upperBound...]
            guard let end = rest.firstIndex(of: "]") else { throw .invalidSizeAnnotation(line: lineNumber) }
            var body = Substring(rest[..<end])
            var multiplier: UInt64 = 1
            switch body.last {
            case "K": multiplier = 1 << 10
            case "M": multiplier = 1 << 20
            case "G": multiplier = 1 << 30
            case "T": multiplier = 1 << 40
            default: break
            }
            if multiplier != 1 { body = body.dropLast() }
            guard !body.isEmpty, body.count <= 20, body.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let value = UInt64(body)
            else { throw .invalidSizeAnnotation(line: lineNumber) }
            let (size, overflow) = value.multipliedReportingOverflow(by: multiplier)
            guard !overflow, size > 0 else { throw .invalidSizeAnnotation(line: lineNumber) }
            return size
        }
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        let characters = Array(self)
        guard let first = characters.firstIndex(where: { $0 != " " && $0 != "\t" }),
              let last = characters.lastIndex(where: { $0 != " " && $0 != "\t" })
        else { return "" }
        return String(characters[first...last])
    }
}
