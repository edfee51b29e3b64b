/// A JSON value as the step language reads and writes it.
///
/// The script format (docs/script-format.md) is JSON Lines. This small reader keeps what a generic
/// decoder loses: the order of an object's keys (output lines print fields in layout order), the
/// exact text of a number (so `18446744073709551615` is not rounded through `Double`), and the
/// column of a syntax error (so a malformed line is reported as `line N, column C`).
///
/// Limits: nesting depth at most ``JSONValue/maximumDepth``; numbers must be integers (the step
/// language has no use for fractions and rejects them with a clear message).
public indirect enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` / `false`.
    case bool(Bool)
    /// An integer, kept as its exact decimal text (optionally with a leading `-`).
    case number(String)
    /// A string, with escapes decoded.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object; keys in the order they appear. A repeated key is a syntax error.
    case object([(key: String, value: JSONValue)])

    /// Deepest nesting of arrays and objects the reader accepts.
    public static let maximumDepth = 32

    /// Structural equality: same case and contents; objects compare key by key in order (tuples are
    /// not `Equatable`), so `{"a":1,"b":2}` ≠ `{"b":2,"a":1}`; numbers compare by exact text.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            guard a.count == b.count else { return false }
            for (x, y) in zip(a, b) where x.key != y.key || x.value != y.value { return false }
            return true
        default: return false
        }
    }

    /// The value of `key` when this is an object, else nil.
    public subscript(key: String) -> JSONValue? {
        guard case let .object(pairs) = self else { return nil }
        return pairs.first(where: { $0.key == key })?.value
    }

    /// A short name of the value's kind, for error messages ("a string", "an object", …).
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Why a line is not valid JSON: the 1-based column of the offending character and a reason.
public struct JSONSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    /// 1-based column (in Unicode scalars) where the problem was found.
    public var column: Int
    /// What was wrong there.
    public var reason: String

    /// An error at 1-based `column` (Unicode scalars) with human-readable `reason`.
    public init(column: Int, reason: String) {
        self.column = column
        self.reason = reason
    }

    /// `column C: reason`, as printed after the script's `line N, `.
    public var description: String { "column \(column): \(reason)" }
}

extension JSONValue {
    /// Parses one complete JSON text (one line of a script).
    ///
    /// Errors: ``JSONSyntaxError`` for any syntax fault, a fractional or exponent number, a
    /// repeated object key, nesting deeper than ``maximumDepth`` or text after the value.
    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        var reader = JSONReader(Array(text.unicodeScalars))
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.atEnd else { throw reader.error("unexpected text after the JSON value") }
        return value
    }

    /// Serialises the value on one line, keys in their stored order, no spaces after separators.
    public var serialized: String {
        var out = ""
        write(into: &out)
        return out
    }

    private func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(flag): out += flag ? "true" : "false"
        case let .number(text): out += text
        case let .string(text): JSONValue.writeString(text, into: &out)
        case let .array(items):
            out += "["
            for (index, item) in items.enumerated() {
                if index > 0 { out += "," }
                item.write(into: &out)
            }
            out += "]"
        case let .object(pairs):
            out += "{"
            for (index, pair) in pairs.enumerated() {
                if index > 0 { out += "," }
                JSONValue.writeString(pair.key, into: &out)
                out += ":"
                pair.value.write(into: &out)
            }
            out += "}"
        }
    }

    /// `text` as a JSON string literal: in double quotes, with `"`, `\`, newline, carriage return
    /// and tab escaped as `\"`, `\\`, `\n`, `\r`, `\t`, other scalars below U+0020 as `\u00XX`
    /// (RFC 8259 section 7), everything else as is.
    public static func quoted(_ text: String) -> String {
        var out = ""
        writeString(text, into: &out)
        return out
    }

    private static func writeString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// Recursive-descent reader over the scalars of one line.
private struct JSONReader {
    let scalars: [Unicode.Scalar]
    var index = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    var atEnd: Bool { index >= scalars.count }

    func error(_ reason: String) -> JSONSyntaxError {
        JSONSyntaxError(column: index + 1, reason: reason)
    }

    mutating func skipSpace() {
        while index < scalars.count, [" ", "\t", "\r", "\n"].contains(scalars[index]) { index += 1 }
    }

    func peek() -> Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard depth <= JSONValue.maximumDepth else { throw error("nesting deeper than \(JSONValue.maximumDepth)") }
        guard let first = peek() else { throw error("expected a value, found the end of the line") }
        switch first {
        case "{": return try object(depth: depth)
        case "[": return try array(depth: depth)
        case "\"": return .string(try string())
        case "t": try literal("true"); return .bool(true)
        case "f": try literal("false"); return .bool(false)
        case "n": try literal("null"); return .null
        case "-", "0"..."9": return try number()
        default: throw error("unexpected character '\(first.escaped(asASCII: true))'")
        }
    }

    mutating func literal(_ word: String) throws(JSONSyntaxError) {
        for expected in word.unicodeScalars {
            guard peek() == expected else { throw error("invalid literal (expected '\(word)')") }
            index += 1
        }
    }

    mutating func number() throws(JSONSyntaxError) -> JSONValue {
        let start = index
        if peek() == "-" { index += 1 }
        guard let digit = peek(), ("0"..."9").contains(digit) else { throw error("a '-' must be followed by digits") }
        if digit == "0" {
            index += 1
            if let next = peek(), ("0"..."9").contains(next) { throw error("numbers must not have leading zeros") }
        } else {
            while let next = peek(), ("0"..."9").contains(next) { index += 1 }
        }
        if let next = peek(), next == "." || next == "e" || next == "E" {
            throw error("only integers are allowed (write large values as \"0x...\" strings)")
        }
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars[start..<index])
        return .number(text)
    }

    mutating func string() throws(JSONSyntaxError) -> String {
        index += 1  // opening quote
        var out = String.UnicodeScalarView()
        while true {
            guard let scalar = peek() else { throw error("unterminated string") }
            index += 1
            switch scalar {
            case "\"":
                return String(out)
            case "\\":
                guard let escape = peek() else { throw error("unterminated escape") }
                index += 1
                switch escape {
                case "\"": out.append("\"")
                case "\\": out.append("\\")
                case "/": out.append("/")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "u":
                    let unit = try hex4()
                    if (0xD800...0xDBFF).contains(unit) {
                        guard peek() == "\\" else { throw error("unpaired surrogate in \\u escape") }
                        index += 1
                        guard peek() == "u" else { throw error("unpaired surrogate in \\u escape") }
                        index += 1
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate in \\u escape") }
                        let combined = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        guard let decoded = Unicode.Scalar(combined) else { throw error("invalid \\u escape") }
                        out.append(decoded)
                    } else {
                        guard let decoded = Unicode.Scalar(unit) else { throw error("unpaired surrogate in \\u escape") }
                        out.append(decoded)
                    }
                default:
                    throw error("invalid escape '\\\(escape.escaped(asASCII: true))'")
                }
            default:
                guard scalar.value >= 0x20 else { throw error("control character inside a string") }
                out.append(scalar)
            }
        }
    }

    mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let scalar = peek(), let nibble = JSONReader.hexNibble(scalar) else {
                throw error("\\u needs four hex digits")
            }
            value = value << 4 | nibble
            index += 1
        }
        return value
    }

    static func hexNibble(_ scalar: Unicode.Scalar) -> UInt32? {
        switch scalar.value {
        case 0x30...0x39: return scalar.value - 0x30
        case 0x41...0x46: return scalar.value - 0x41 + 10
        case 0x61...0x66: return scalar.value - 0x61 + 10
        default: return nil
        }
    }

    mutating func array(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var items: [JSONValue] = []
        skipSpace()
        if peek() == "]" { index += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard let next = peek() else { throw error("unterminated array") }
            index += 1
            if next == "]" { return .array(items) }
            guard next == "," else { index -= 1; throw error("expected ',' or ']' in an array") }
        }
    }

    mutating func object(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        index += 1
        var pairs: [(key: String, value: JSONValue)] = []
        skipSpace()
        if peek() == "}" { index += 1; return .object(pairs) }
        while true {
            skipSpace()
            guard peek() == "\"" else { throw error("expected a quoted key") }
            let keyColumn = index
            let key = try string()
            if pairs.contains(where: { $0.key == key }) {
                throw JSONSyntaxError(column: keyColumn + 1, reason: "repeated key \"\(key)\"")
            }
            skipSpace()
            guard peek() == ":" else { throw error("expected ':' after a key") }
            index += 1
            skipSpace()
            pairs.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard let next = peek() else { throw error("unterminated object") }
            index += 1
            if next == "}" { return .object(pairs) }
            guard next == "," else { index -= 1; throw error("expected ',' or '}' in an object") }
        }
    }
}
