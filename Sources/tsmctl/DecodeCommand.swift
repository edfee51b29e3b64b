import ArgumentParser
import Foundation
import UAPI
import Wire

/// `tsmctl decode [INPUT] [--as KIND] [--profile NAME] [--json]`: decodes hex (an argument, a
/// file, or stdin `-`) or a trace file of JSON Lines, naming every field (docs/decode.md).
///
/// Bad input (bad hex, wrong length, unknown kind or profile, a bad trace line) prints one line
/// on stderr naming the problem and listing the valid kinds, and exits with status 2.
struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode hex or a trace file as a uAPI struct, a TDISP message, an evidence object or an architecture payload.",
        discussion: """
            INPUT is '-' (stdin, the default), an existing file, or hex text. A file or stdin whose \
            first non-blank character is '{' is a trace: one JSON object a line with "kind" and "hex" \
            (and optionally "layer", "profile"); see docs/decode.md. Kinds: \
            \(DecodeRegistry.kinds.joined(separator: ", ")).
            """)

    @Argument(help: "Hex text, a file of hex or of trace lines, or '-' for stdin.")
    var input: String = "-"

    @Option(name: .customLong("as"), help: "What the bytes are (default: auto, which tries the TDISP header first).")
    var kind: String = "auto"

    @Option(name: .long, help: "uAPI profile for uAPI structs: \(UAPIProfile.all.map(\.name).joined(separator: ", ")).")
    var profile: String = UAPIProfile.default.name

    @Flag(name: .long, help: "Print JSON (one object per decoded message, one a line) instead of text.")
    var json = false

    func run() throws {
        do {
            let profile: UAPIProfile
            do { profile = try UAPIProfile.named(self.profile) } catch {
                throw DecodeError.unknownProfile(message: error.description)
            }
            guard DecodeRegistry.kinds.contains(kind) else { throw DecodeError.unknownKind(kind) }
            let (text, source, isArgument) = try readInput()
            if !isArgument, text.first(where: { !$0.isWhitespace }) == "{" {
                let records = try DecodeTrace.decode(text, source: source, defaultKind: kind, defaultProfile: profile)
                for record in records { emit(record.message, trace: record) }
            } else {
                if isArgument, text.contains("/") || text.contains("."), (try? Hex.decode(text)) == nil {
                    throw DecodeError.unreadable(path: text, reason: "no such file, and not hex")
                }
                let bytes = try DecodeInput.bytes(from: text, source: source)
                emit(try DecodeRegistry.decode(bytes, as: kind, profile: profile), trace: nil)
            }
        } catch let error as DecodeError {
            FileHandle.standardError.write(Data(("tsmctl decode: " + error.description + "\n").utf8))
            Foundation.exit(2)
        }
    }

    /// The input text, a name for it in messages, and whether it came from the argument itself.
    private func readInput() throws(DecodeError) -> (String, String, Bool) {
        if input == "-" {
            var lines: [String] = []
            while let line = readLine(strippingNewline: true) { lines.append(line) }
            return (lines.joined(separator: "\n"), "stdin", false)
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) {
            guard !isDirectory.boolValue else { throw .unreadable(path: input, reason: "is a directory") }
            do { return (try String(contentsOfFile: input, encoding: .utf8), input, false) } catch {
                throw .unreadable(path: input, reason: "not UTF-8 text")
            }
        }
        return (input, "argument", true)
    }

    private func emit(_ message: DecodedMessage, trace: DecodeTrace.Record?) {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let data: Data?
            if let trace {
                data = try? encoder.encode(DecodeTrace.Output(line: trace.line, layer: trace.layer, decoded: message))
            } else {
                data = try? encoder.encode(message)
            }
            print(String(decoding: data ?? Data(), as: UTF8.self))
        } else {
            if let trace {
                print("line \(trace.line)" + (trace.layer.map { " [\($0)]" } ?? "") + ": " + message.title)
            } else {
                print(message.title)
            }
            print(DecodeText.table(message.fields), terminator: "")
        }
    }
}

/// Hex text to bytes for `tsmctl decode`: one or more lines, `#` comments, and an optional
/// `OFFSET:` prefix (hex digits, a colon, then a blank) on each line, as hex dumps print.
enum DecodeInput {
    static func bytes(from text: String, source: String) throws(DecodeError) -> [UInt8] {
        var bytes: [UInt8] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (number, rawLine) in lines.enumerated() {
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            line = line.drop { $0 == " " || $0 == "\t" }
            while line.last == "\r" || line.last == " " || line.last == "\t" { line = line.dropLast() }
            var skipped = 0
            if let colon = line.firstIndex(of: ":"), line.index(after: colon) < line.endIndex,
               line[line.index(after: colon)] == " ",
               line[..<colon].allSatisfy(\.isHexDigit), !line[..<colon].isEmpty {
                let after = line.index(after: colon)
                skipped = line.distance(from: line.startIndex, to: after)
                line = line[after...]
            }
            do { bytes += try Hex.decode(String(line)) } catch {
                var position = 0
                if case let .invalidHex(at) = error { position = at + skipped }
                let place = lines.count > 1 ? "\(source) line \(number + 1)" : source
                throw .badHex(source: place, position: position)
            }
        }
        guard !bytes.isEmpty else { throw .empty(source: source) }
        return bytes
    }
}

/// The trace line format (docs/decode.md): one JSON object a line,
/// `{"layer":"uapi","kind":"iommu_vdevice_tsm_req","profile":"revised","hex":"30000000…"}`.
/// `kind` and `hex` are required (`kind` may be `auto`); `profile` defaults to `--profile`;
/// `layer` is a label; other keys are ignored. Blank lines are skipped.
enum DecodeTrace {
    /// One trace line, as read (every key optional here; `decode` requires `hex`) and as written
    /// by `tsmctl assign --trace` with ``init(layer:kind:profile:bytes:)`` and ``jsonLine()``.
    struct Line: Codable {
        /// A label: `guest`, `vmm`, `uapi`, `kernel`, `firmware`, `tdisp`, `spdm`, `device`.
        let layer: String?
        /// A ``DecodeRegistry/kinds`` value (`auto` allowed).
        let kind: String?
        /// The uAPI profile name, for uAPI structs.
        let profile: String?
        /// The bytes, lower-case hex.
        let hex: String?

        /// A line for `bytes` of `kind`, crossing `layer`.
        init(layer: String, kind: String, profile: String? = nil, bytes: [UInt8]) {
            self.layer = layer
            self.kind = kind
            self.profile = profile
            self.hex = Hex.encode(bytes)
        }

        /// The line as one line of JSON with sorted keys (no newline).
        func jsonLine() -> String {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        }
    }

    /// One decoded trace line.
    struct Record {
        let line: Int
        let layer: String?
        let message: DecodedMessage
    }

    /// The JSON form of a decoded trace line.
    struct Output: Encodable {
        let line: Int
        let layer: String?
        let decoded: DecodedMessage
    }

    static func decode(_ text: String, source: String, defaultKind: String,
                       defaultProfile: UAPIProfile) throws(DecodeError) -> [Record] {
        var records: [Record] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            guard rawLine.contains(where: { !$0.isWhitespace }) else { continue }
            let line: Line
            do { line = try JSONDecoder().decode(Line.self, from: Data(rawLine.utf8)) } catch {
                throw .badTraceLine(source: source, line: number, problem: "not a JSON object with string fields kind and hex")
            }
            guard let hexText = line.hex else {
                throw .badTraceLine(source: source, line: number, problem: "no \"hex\" field")
            }
            let kind = line.kind ?? defaultKind
            guard DecodeRegistry.kinds.contains(kind) else {
                throw .badTraceLine(source: source, line: number, problem: "unknown kind '\(kind)'")
            }
            var profile = defaultProfile
            if let name = line.profile {
                do { profile = try UAPIProfile.named(name) } catch {
                    throw .badTraceLine(source: source, line: number, problem: error.description)
                }
            }
            let bytes: [UInt8]
            do { bytes = try Hex.decode(hexText) } catch {
                var position = 0
                if case let .invalidHex(at) = error { position = at }
                throw .badTraceLine(source: source, line: number, problem: "bad hex at character \(position)")
            }
            let message: DecodedMessage
            do { message = try DecodeRegistry.decode(bytes, as: kind, profile: profile) } catch {
                throw .badTraceLine(source: source, line: number, problem: error.problem)
            }
            records.append(Record(line: number, layer: line.layer, message: message))
        }
        guard !records.isEmpty else { throw .empty(source: source) }
        return records
    }
}

extension DecodeError {
    /// The problem without the valid-kinds tail (for embedding in a trace-line message).
    var problem: String {
        let full = description
        guard let range = full.range(of: "; valid kinds: ") else { return full }
        return String(full[..<range.lowerBound])
    }
}

/// The human-readable table of `tsmctl decode`.
enum DecodeText {
    static func table(_ fields: [DecodedField]) -> String {
        let nameWidth = min(40, fields.map(\.name.count).max() ?? 4)
        var out = "  offset  size  " + pad("field", nameWidth) + "  value\n"
        for field in fields {
            var value = field.value
            if value.count > 64 { value = String(value.prefix(64)) + "… (\(field.size) bytes)" }
            if value.isEmpty { value = "(empty)" }
            out += "  " + pad(String(field.offset), 6) + "  " + pad(String(field.size), 4) + "  "
                + pad(field.name, nameWidth) + "  " + value
                + (field.meaning.map { "  " + $0 } ?? "") + "\n"
        }
        return out
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
