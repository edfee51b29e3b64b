import Wire

/// A script that cannot be run as written: the 1-based line and what is wrong there.
public struct ScriptSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    /// 1-based line number in the script.
    public var line: Int
    /// What is wrong, naming the key where there is one.
    public var reason: String

    /// `line N: reason`, as `tsmctl script` prints it.
    public var description: String { "line \(line): \(reason)" }
}

/// Turns JSON Lines text into typed ``ScriptStep``s (docs/script-format.md).
///
/// Blank lines and lines whose first non-blank characters are `#` or `//` are skipped. Every
/// other line must be one JSON object with a known `"op"` and only the keys that op takes.
/// The whole file is parsed before anything runs, so a malformed line never leaves a
/// half-run script.
public enum ScriptParser {
    /// Keys every step may carry.
    static let commonKeys: Set<String> = ["op", "name", "why"]

    /// The keys each op accepts besides ``commonKeys``.
    static let keysByOp: [String: Set<String>] = [
        "comment": ["text"],
        "platform": ["profile", "tsm", "devices", "config_tsm"],
        "open_iommufd": ["save", "expect"],
        "close": ["fd", "expect"],
        "create_vm": ["save", "expect"],
        "vfio_open": ["device", "save", "expect"],
        "vfio_associate": ["vfio", "vm", "expect"],
        "vfio_bind": ["vfio", "iommufd", "save", "expect"],
        "connect": ["device", "tsm", "signal_pending", "expect"],
        "disconnect": ["device", "tsm", "signal_pending", "expect"],
        "devsec_lock": ["device", "tsm", "expect"],
        "sysfs_read": ["device", "attribute", "expect_text", "expect"],
        "buffer": ["name", "size", "hex", "readonly"],
        "protect": ["buffer", "writable"],
        "hold_lock": ["lock", "device", "save"],
        "release_lock": ["hold"],
        "check_buffer": ["buffers"],
        "ioctl": [
            "fd", "cmd", "request", "fields", "raw", "size", "tail", "arg", "readonly_arg", "signal_pending", "save",
            "expect", "expect_fields", "expect_buffer",
        ],
        "sample_tsm": ["mode", "response", "residue", "tsm_code", "errno", "bind_errno", "streams", "arch"],
    ].merging(ArchStep.keysByOp) { common, _ in common }

    /// Largest buffer a `buffer` step may map (16 MiB).
    public static let maximumBufferSize = 16 << 20

    /// Parses a whole script.
    ///
    /// - Parameter isErrnoName: answers whether a string is a known errno name; `expect` and
    ///   `sample_tsm.errno` values are checked with it.
    /// - Throws: ``ScriptSyntaxError`` for the first bad line.
    public static func parse(_ text: String, isErrnoName: @escaping @Sendable (String) -> Bool) throws(ScriptSyntaxError) -> [ScriptStep] {
        var steps: [ScriptStep] = []
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingBlanks()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("//") { continue }
            steps.append(try parseLine(String(line), number: lineNumber, isErrnoName: isErrnoName))
        }
        return steps
    }

    /// Parses one line (already known not to be blank or a comment line).
    public static func parseLine(_ text: String, number: Int, isErrnoName: @escaping @Sendable (String) -> Bool) throws(ScriptSyntaxError) -> ScriptStep {
        let json: JSONValue
        do {
            json = try JSONValue.parse(text)
        } catch {
            throw ScriptSyntaxError(line: number, reason: "not valid JSON: \(error)")
        }
        var line = LineReader(json: json, number: number, isErrnoName: isErrnoName)
        return try line.step()
    }
}

/// Reads the keys of one line's object, with errors that carry the line number.
private struct LineReader {
    let json: JSONValue
    let number: Int
    let isErrnoName: (String) -> Bool
    var pairs: [(key: String, value: JSONValue)] = []

    init(json: JSONValue, number: Int, isErrnoName: @escaping (String) -> Bool) {
        self.json = json
        self.number = number
        self.isErrnoName = isErrnoName
    }

    func fail(_ reason: String) -> ScriptSyntaxError { ScriptSyntaxError(line: number, reason: reason) }

    mutating func step() throws(ScriptSyntaxError) -> ScriptStep {
        guard case let .object(pairs) = json else { throw fail("a step must be a JSON object, found \(json.kindName)") }
        self.pairs = pairs
        guard let opValue = json["op"] else {
            throw fail("missing \"op\" (one of: \(ScriptParser.keysByOp.keys.sorted().joined(separator: ", ")))")
        }
        guard case let .string(op) = opValue else { throw fail("\"op\" must be a string") }
        guard let allowed = ScriptParser.keysByOp[op] else {
            throw fail("unknown op \"\(op)\" (one of: \(ScriptParser.keysByOp.keys.sorted().joined(separator: ", ")))")
        }
        for pair in pairs where !ScriptParser.commonKeys.contains(pair.key) && !allowed.contains(pair.key) {
            throw fail("op \"\(op)\" has no key \"\(pair.key)\" (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        let label = try optionalString("name")
        let why = try optionalString("why")
        let expect = allowed.contains("expect") ? try expectation() : nil
        let action = try self.action(op)
        return ScriptStep(line: number, label: label, why: why, action: action, expect: expect)
    }

    func action(_ op: String) throws(ScriptSyntaxError) -> ScriptStep.Action {
        switch op {
        case "comment":
            return .comment(try optionalString("text") ?? "")
        case "platform":
            var devices: [String] = ["sample"]
            if let value = json["devices"] {
                guard case let .array(items) = value else { throw fail("\"devices\" must be an array of strings") }
                devices = []
                for item in items {
                    guard case let .string(text) = item, !text.isEmpty else {
                        throw fail("\"devices\" must be an array of non-empty strings (\"sample\" or a dump path)")
                    }
                    devices.append(text)
                }
            }
            let tsm = try optionalString("tsm") ?? "link"
            guard ["link", "devsec", "link+devsec", "none"].contains(tsm) else {
                throw fail("\"tsm\" must be \"link\", \"devsec\", \"link+devsec\" or \"none\", found \"\(tsm)\"")
            }
            return .platform(PlatformSpec(
                profile: try optionalString("profile"), tsm: tsm, devices: devices,
                configTSM: try optionalBool("config_tsm") ?? true))
        case "open_iommufd":
            return .openIOMMUFD(save: try name("save"))
        case "close":
            return .close(fd: try value("fd"))
        case "create_vm":
            return .createVM(save: try name("save"))
        case "vfio_open":
            return .vfioOpen(device: try string("device"), save: try name("save"))
        case "vfio_associate":
            return .vfioAssociate(vfio: try value("vfio"), vm: try value("vm"))
        case "vfio_bind":
            return .vfioBind(vfio: try value("vfio"), iommufd: try value("iommufd"), save: try name("save"))
        case "connect":
            return .connect(
                device: try string("device"), input: try optionalString("tsm") ?? "tsm0",
                signalPending: try optionalBool("signal_pending") ?? false)
        case "disconnect":
            return .disconnect(
                device: try string("device"), input: try optionalString("tsm") ?? "tsm0",
                signalPending: try optionalBool("signal_pending") ?? false)
        case "devsec_lock":
            return .devsecLock(device: try string("device"), tsm: try optionalString("tsm") ?? "tsm1")
        case "sysfs_read":
            let attribute = try string("attribute")
            guard ["connect", "bound", "dsm", "authenticated"].contains(attribute) else {
                throw fail("\"attribute\" must be connect, bound, dsm or authenticated, found \"\(attribute)\"")
            }
            return .sysfsRead(device: try string("device"), attribute: attribute, expectText: try optionalString("expect_text"))
        case "buffer":
            guard let name = try name("name") else { throw fail("op \"buffer\" needs \"name\"") }
            let contents = try optionalHex("hex") ?? []
            var size = contents.count
            if json["size"] != nil {
                let requested = try count("size")
                guard requested >= contents.count else {
                    throw fail("\"size\" \(requested) is smaller than the \(contents.count) bytes of \"hex\"")
                }
                size = requested
            } else if contents.isEmpty {
                throw fail("op \"buffer\" needs \"size\" or \"hex\"")
            }
            guard size > 0, size <= ScriptParser.maximumBufferSize else {
                throw fail("a buffer's size must be 1...\(ScriptParser.maximumBufferSize), found \(size)")
            }
            return .buffer(name: name, size: size, contents: contents, readOnly: try optionalBool("readonly") ?? false)
        case "protect":
            guard let buffer = try name("buffer") else { throw fail("op \"protect\" needs \"buffer\"") }
            guard let writable = try optionalBool("writable") else { throw fail("op \"protect\" needs \"writable\": true or false") }
            return .protect(buffer: buffer, writable: writable)
        case "hold_lock":
            let lock = try string("lock")
            guard lock == "global" || lock == "dsm" else { throw fail("\"lock\" must be \"global\" or \"dsm\", found \"\(lock)\"") }
            let device = try optionalString("device")
            if lock == "dsm", device == nil { throw fail("a \"dsm\" lock needs \"device\" (the DSM's BDF)") }
            return .holdLock(lock: lock, device: device, save: try name("save"))
        case "release_lock":
            return .releaseLock(try value("hold"))
        case "check_buffer":
            guard let value = json["buffers"] else { throw fail("op \"check_buffer\" needs \"buffers\"") }
            return .checkBuffer(try bufferExpectations(value, key: "buffers"))
        case "ioctl":
            return .ioctl(try ioctl())
        case "sample_tsm":
            let mode = try optionalString("mode")
            if let mode, !["testing", "kernel-sample"].contains(mode) {
                throw fail("\"mode\" must be \"testing\" or \"kernel-sample\", found \"\(mode)\"")
            }
            var errnos: [String?] = []
            for key in ["errno", "bind_errno"] {
                let name = try optionalString(key)
                if let name, name != "none", !isErrnoName(name) { throw fail("\"\(key)\": unknown errno name \"\(name)\"") }
                errnos.append(name)
            }
            var response: SampleTSMSpec.SampleResponse?
            if case .string("echo")? = json["response"] {
                response = .echo
            } else if let bytes = try optionalHex("response") {
                response = .bytes(bytes)
            }
            if let arch = try optionalString("arch"), !["cca", "sev", "tdx", "any"].contains(arch) {
                throw fail("\"arch\" must be cca, sev, tdx or any, found \"\(arch)\"")
            }
            var streams: Int?
            if json["streams"] != nil { streams = try count("streams") }
            return .sampleTSM(SampleTSMSpec(
                mode: mode, response: response, residue: try optionalValue("residue"),
                tsmCode: try optionalValue("tsm_code"), errno: errnos[0], bindErrno: errnos[1], streams: streams,
                arch: try optionalString("arch")))
        default:
            return .arch(try ArchStepParser.parse(op, json, fail: fail))
        }
    }

    func ioctl() throws(ScriptSyntaxError) -> IoctlSpec {
        let command = try optionalString("cmd")
        let request = try optionalValue("request")
        guard command != nil || request != nil else { throw fail("op \"ioctl\" needs \"cmd\" or \"request\"") }
        let raw = try optionalHex("raw")
        let fields = try fieldValues("fields")
        if raw != nil, !fields.isEmpty { throw fail("\"raw\" and \"fields\" cannot be combined") }
        if raw != nil, json["size"] != nil || json["tail"] != nil {
            throw fail("\"raw\" is the whole argument: put the size word and any tail in its bytes")
        }
        if json["readonly_arg"] != nil, json["arg"] != nil {
            throw fail("\"readonly_arg\" applies to the fresh argument mapping; for \"arg\" use a read-only buffer")
        }
        if let raw, raw.isEmpty { throw fail("\"raw\" needs at least one byte (use \"arg\": 0 for a NULL argument)") }
        if raw == nil, command == nil, !fields.isEmpty {
            throw fail("\"fields\" needs \"cmd\" (the struct layout comes from the command)")
        }
        var save: [(name: String, field: String)] = []
        switch json["save"] {
        case nil:
            break
        case let .string(name)?:
            try checkName(name, key: "save")
            save = [(name, "")]  // "" = the command's single output field
        case let .object(pairs)?:
            for pair in pairs {
                try checkName(pair.key, key: "save")
                guard case let .string(field) = pair.value, !field.isEmpty else {
                    throw fail("\"save\": \"\(pair.key)\" must name an output field")
                }
                save.append((pair.key, field))
            }
        case let other?:
            throw fail("\"save\" must be a name or an object {name: field}, found \(other.kindName)")
        }
        var expectBuffer: [BufferExpectation] = []
        if let value = json["expect_buffer"] { expectBuffer = try bufferExpectations(value, key: "expect_buffer") }
        return IoctlSpec(
            fd: try optionalValue("fd"), command: command, request: request, fields: fields, raw: raw,
            size: try optionalValue("size"), tail: try optionalHex("tail") ?? [], argument: try optionalValue("arg"),
            signalPending: try optionalBool("signal_pending") ?? false,
            readOnlyArgument: try optionalBool("readonly_arg") ?? false, save: save,
            expectFields: try fieldValues("expect_fields"), expectBuffer: expectBuffer)
    }

    func expectation() throws(ScriptSyntaxError) -> ScriptStep.Expectation? {
        switch json["expect"] {
        case nil:
            return nil
        case let .string(text)?:
            if text.hasPrefix("E") {
                guard isErrnoName(text) else { throw fail("\"expect\": unknown errno name \"\(text)\"") }
                return .errno(text)
            }
            guard case let .success(.literal(magnitude, false)) = ScriptValue.parseNumber(text) else {
                throw fail("\"expect\" must be an errno name (\"EINVAL\"), 0 or a residue, found \"\(text)\"")
            }
            return .value(magnitude)
        case let .number(text)?:
            guard case let .success(.literal(magnitude, false)) = ScriptValue.parseNumber(text) else {
                throw fail("\"expect\" must be an errno name, 0 or a positive residue, found \(text)")
            }
            return .value(magnitude)
        case let other?:
            throw fail("\"expect\" must be an errno name, 0 or a residue, found \(other.kindName)")
        }
    }

    func fieldValues(_ key: String) throws(ScriptSyntaxError) -> [FieldValue] {
        guard let value = json[key] else { return [] }
        guard case let .object(pairs) = value else { throw fail("\"\(key)\" must be an object {field: value}") }
        var out: [FieldValue] = []
        for pair in pairs {
            switch ScriptValue.from(pair.value) {
            case let .success(resolved): out.append(FieldValue(name: pair.key, value: resolved))
            case let .failure(error): throw fail("\"\(key)\".\(pair.key): \(error.reason)")
            }
        }
        return out
    }

    func bufferExpectations(_ value: JSONValue, key: String) throws(ScriptSyntaxError) -> [BufferExpectation] {
        guard case let .object(pairs) = value else { throw fail("\"\(key)\" must be an object {buffer: hex}") }
        var out: [BufferExpectation] = []
        for pair in pairs {
            guard case let .string(hex) = pair.value else { throw fail("\"\(key)\".\(pair.key) must be a hex string") }
            let bytes: [UInt8]
            do { bytes = try Hex.decode(hex) } catch { throw fail("\"\(key)\".\(pair.key): \(error)") }
            guard case let .success(.reference(name, offset)) = ScriptValue.parseReference(pair.key.hasPrefix("$") ? String(pair.key.dropFirst()) : pair.key),
                  offset >= 0, offset <= Int64(ScriptParser.maximumBufferSize)
            else { throw fail("\"\(key)\": \"\(pair.key)\" must be a buffer name, optionally with +offset") }
            out.append(BufferExpectation(buffer: name, offset: Int(offset), bytes: bytes))
        }
        return out
    }

    func checkName(_ name: String, key: String) throws(ScriptSyntaxError) {
        guard case .success(.reference(_, 0)) = ScriptValue.parseReference(name), !name.contains("+"), !name.contains("-") else {
            throw fail("\"\(key)\": \"\(name)\" is not a valid name (letters, digits, '_' and '.')")
        }
    }

    func name(_ key: String) throws(ScriptSyntaxError) -> String? {
        guard let text = try optionalString(key) else { return nil }
        let bare = text.hasPrefix("$") ? String(text.dropFirst()) : text
        try checkName(bare, key: key)
        return bare
    }

    func string(_ key: String) throws(ScriptSyntaxError) -> String {
        guard let text = try optionalString(key) else { throw fail("missing \"\(key)\"") }
        return text
    }

    func optionalString(_ key: String) throws(ScriptSyntaxError) -> String? {
        switch json[key] {
        case nil: return nil
        case let .string(text)?: return text
        case let other?: throw fail("\"\(key)\" must be a string, found \(other.kindName)")
        }
    }

    func optionalBool(_ key: String) throws(ScriptSyntaxError) -> Bool? {
        switch json[key] {
        case nil: return nil
        case let .bool(flag)?: return flag
        case let other?: throw fail("\"\(key)\" must be true or false, found \(other.kindName)")
        }
    }

    func optionalHex(_ key: String) throws(ScriptSyntaxError) -> [UInt8]? {
        switch json[key] {
        case nil: return nil
        case let .string(text)?:
            do { return try Hex.decode(text) } catch { throw fail("\"\(key)\": \(error)") }
        case let other?: throw fail("\"\(key)\" must be a hex string, found \(other.kindName)")
        }
    }

    func value(_ key: String) throws(ScriptSyntaxError) -> ScriptValue {
        guard let value = try optionalValue(key) else { throw fail("missing \"\(key)\"") }
        return value
    }

    func optionalValue(_ key: String) throws(ScriptSyntaxError) -> ScriptValue? {
        guard let json = json[key] else { return nil }
        switch ScriptValue.from(json) {
        case let .success(value): return value
        case let .failure(error): throw fail("\"\(key)\": \(error.reason)")
        }
    }

    func count(_ key: String) throws(ScriptSyntaxError) -> Int {
        guard case let .literal(magnitude, false)? = try optionalValue(key), magnitude <= UInt64(Int.max) else {
            throw fail("\"\(key)\" must be a non-negative number")
        }
        return Int(magnitude)
    }
}

extension Substring {
    /// The text without leading and trailing spaces, tabs and carriage returns.
    func trimmingBlanks() -> Substring {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return self[first...last]
    }
}
