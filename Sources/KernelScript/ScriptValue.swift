/// A value in a script step: a number, or a name saved earlier plus an optional offset.
///
/// Written forms (docs/script-format.md, "Values"):
///
/// | form | example | meaning |
/// |---|---|---|
/// | JSON integer | `64`, `-1` | the number; negatives are two's complement in the field's width |
/// | hex string | `"0x3b96"` | the number (up to 64 bits) |
/// | decimal string | `"18446744073709551615"` | the number (up to 64 bits) |
/// | reference | `"$resp"` | a buffer's address, or an id/fd/handle saved with `"save"` |
/// | reference ± offset | `"$resp+4092"`, `"$resp-0x10"` | address arithmetic (wraps modulo 2^64) |
public enum ScriptValue: Sendable, Equatable, CustomStringConvertible {
    /// A literal number: its magnitude and sign.
    case literal(magnitude: UInt64, negative: Bool)
    /// `$name` plus `offset` (which may be negative).
    case reference(name: String, offset: Int64)

    /// A non-negative literal.
    public static func number(_ value: UInt64) -> ScriptValue { .literal(magnitude: value, negative: false) }

    /// The value in script form: a literal in decimal (`-1`, `64`), a reference as `$name`,
    /// `$name+4092` or `$name-16` (offset in decimal).
    public var description: String {
        switch self {
        case let .literal(magnitude, negative):
            return negative ? "-\(magnitude)" : "\(magnitude)"
        case let .reference(name, offset):
            if offset == 0 { return "$\(name)" }
            return offset > 0 ? "$\(name)+\(offset)" : "$\(name)\(offset)"
        }
    }

    /// Reads a value from its JSON form. Returns a reason string on failure (the parser adds
    /// the line and key).
    static func from(_ json: JSONValue) -> Result<ScriptValue, ScriptValueError> {
        switch json {
        case let .number(text):
            return parseNumber(text)
        case let .string(text):
            if text.hasPrefix("$") { return parseReference(String(text.dropFirst())) }
            return parseNumber(text)
        default:
            return .failure(ScriptValueError("expected a number, \"0x...\" or \"$name\", found \(json.kindName)"))
        }
    }

    static func parseNumber(_ text: String) -> Result<ScriptValue, ScriptValueError> {
        var body = Substring(text)
        var negative = false
        if body.hasPrefix("-") { negative = true; body = body.dropFirst() }
        var magnitude: UInt64?
        if body.hasPrefix("0x") || body.hasPrefix("0X") {
            let digits = body.dropFirst(2).filter { $0 != "_" }
            magnitude = digits.isEmpty ? nil : UInt64(digits, radix: 16)
        } else {
            let digits = body.filter { $0 != "_" }
            magnitude = digits.isEmpty ? nil : UInt64(digits, radix: 10)
        }
        guard let magnitude else {
            return .failure(ScriptValueError("\"\(text)\" is not a number (decimal or 0x-hex, at most 64 bits)"))
        }
        return .success(.literal(magnitude: magnitude, negative: negative && magnitude != 0))
    }

    static func parseReference(_ text: String) -> Result<ScriptValue, ScriptValueError> {
        let isNameCharacter: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }
        let name = text.prefix(while: isNameCharacter)
        guard !name.isEmpty else { return .failure(ScriptValueError("\"$\(text)\": a name must follow '$'")) }
        let rest = text.dropFirst(name.count)
        if rest.isEmpty { return .success(.reference(name: String(name), offset: 0)) }
        guard let sign = rest.first, sign == "+" || sign == "-" else {
            return .failure(ScriptValueError("\"$\(text)\": only '+N' or '-N' may follow a name"))
        }
        guard case let .success(.literal(magnitude, false)) = parseNumber(String(rest.dropFirst())),
              magnitude <= UInt64(Int64.max)
        else { return .failure(ScriptValueError("\"$\(text)\": the offset must be a number below 2^63")) }
        let offset = Int64(magnitude)
        return .success(.reference(name: String(name), offset: sign == "-" ? -offset : offset))
    }
}

/// Why a value could not be read or resolved.
public struct ScriptValueError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Human-readable reason.
    public var reason: String
    init(_ reason: String) { self.reason = reason }
    /// The reason, as is.
    public var description: String { reason }
}

/// Names a script has defined so far: buffers (address and size) and saved numbers.
///
/// A name lives in one namespace: saving an id under a buffer's name replaces the buffer's entry.
public struct ScriptEnvironment: Sendable {
    /// A named user buffer mapped in the simulated address space.
    public struct Buffer: Sendable, Equatable {
        /// Its user virtual address.
        public var address: UInt64
        /// Its length in bytes.
        public var size: Int
        /// A buffer of `size` bytes at user virtual address `address` (as ``ScriptTarget/map(size:)``
        /// returned it). Not validated.
        public init(address: UInt64, size: Int) {
            self.address = address
            self.size = size
        }
    }

    /// Saved numbers (ids, fds, VM handles) by name.
    public private(set) var numbers: [String: UInt64] = [:]
    /// Buffers by name.
    public private(set) var buffers: [String: Buffer] = [:]

    /// An empty environment: no buffers, no saved numbers.
    public init() {}

    /// Saves a number under `name` (replacing any buffer or number of that name).
    public mutating func save(_ name: String, _ value: UInt64) {
        buffers[name] = nil
        numbers[name] = value
    }

    /// Records a buffer under `name` (replacing any buffer or number of that name).
    public mutating func saveBuffer(_ name: String, _ buffer: Buffer) {
        numbers[name] = nil
        buffers[name] = buffer
    }

    /// The 64-bit pattern of `value`: a literal as two's complement, a reference as the saved
    /// number or buffer address plus the offset (wrapping).
    ///
    /// Errors: ``ScriptValueError`` when a reference names nothing defined yet.
    public func resolve(_ value: ScriptValue) throws(ScriptValueError) -> UInt64 {
        switch value {
        case let .literal(magnitude, negative):
            return negative ? (~magnitude &+ 1) : magnitude
        case let .reference(name, offset):
            let base: UInt64
            if let number = numbers[name] {
                base = number
            } else if let buffer = buffers[name] {
                base = buffer.address
            } else {
                throw ScriptValueError("$\(name) is not defined (no buffer or saved value of that name yet)")
            }
            return base &+ UInt64(bitPattern: offset)
        }
    }

    /// Resolves `value` and checks that it fits a field of `width` bytes (1...8): an unsigned value
    /// below 2^(8·width), or a negative literal whose two's complement fits. Returns the truncated
    /// field value.
    public func resolve(_ value: ScriptValue, width: Int, field: String) throws(ScriptValueError) -> UInt64 {
        let bits = try resolve(value)
        guard width < 8 else { return bits }
        let limit = UInt64(1) << UInt64(8 * width)
        if case let .literal(magnitude, true) = value {
            guard magnitude <= limit / 2 else {
                throw ScriptValueError("\(value) does not fit the \(width)-byte field \(field)")
            }
            return bits & (limit - 1)
        }
        guard bits < limit else {
            throw ScriptValueError("\(value) = 0x\(String(bits, radix: 16)) does not fit the \(width)-byte field \(field)")
        }
        return bits
    }
}
