import SystemPackage
import Wire

/// What one step did: the JSON line `tsmctl script` prints for it (docs/script-format.md,
/// "Output").
public struct ScriptStepResult: Sendable {
    /// How the step ended.
    public enum Verdict: String, Sendable {
        /// Every expectation held.
        case ok
        /// The step ran but an expectation did not hold.
        case mismatch
        /// The step could not be carried out (undefined name, unknown command or device …);
        /// the run stops here.
        case error
    }

    /// 1-based line of the step.
    public var line: Int
    /// The step's `"name"`.
    public var label: String?
    /// The step's op (`ioctl`, `connect`, …).
    public var op: String
    /// The ioctl's command name, or nil.
    public var command: String?
    /// Return value: the non-negative value, or -1 when `errno` is set; nil for steps without one.
    public var rc: Int?
    /// Errno name when the step failed in the kernel.
    public var errno: String?
    /// Output fields (name, value) read back after an ioctl, in layout order.
    public var fields: [(name: String, value: UInt64)] = []
    /// Names saved by the step.
    public var saved: [(name: String, value: UInt64)] = []
    /// Text (comment text, sysfs content).
    public var text: String?
    /// The verdict.
    public var verdict: Verdict
    /// The `expect` of the step, printed on a mismatch.
    public var expected: String?
    /// Why the step is a mismatch or an error, one entry per failed check.
    public var details: [String] = []

    /// The output line: one JSON object, keys in a fixed order.
    public var jsonLine: String {
        var pairs: [(key: String, value: JSONValue)] = [("line", .number("\(line)"))]
        if let label { pairs.append(("name", .string(label))) }
        pairs.append(("op", .string(op)))
        if let command { pairs.append(("cmd", .string(command))) }
        if let rc {
            pairs.append(("rc", .number("\(rc)")))
            pairs.append(("errno", errno.map { .string($0) } ?? .null))
        }
        if !fields.isEmpty {
            pairs.append(("fields", .object(fields.map { ($0.name, .number("\($0.value)")) })))
        }
        if !saved.isEmpty {
            pairs.append(("saved", .object(saved.map { ($0.name, .number("\($0.value)")) })))
        }
        if let text { pairs.append(("text", .string(text))) }
        pairs.append(("result", .string(verdict.rawValue)))
        if verdict != .ok, let expected { pairs.append(("expected", .string(expected))) }
        if !details.isEmpty { pairs.append(("detail", .array(details.map { .string($0) }))) }
        return JSONValue.object(pairs).serialized
    }
}

/// Runs parsed steps against a fresh simulated kernel, one result per step.
///
/// Order: the `platform` step (or, if the script has none before its first kernel step, the
/// default platform: `revised` profile, the sample link TSM, the built-in sample device) builds
/// the kernel; every later step acts on it. A step whose verdict is ``ScriptStepResult/Verdict/error``
/// ends the run; mismatches do not.
public final class ScriptEngine {
    let host: any ScriptHost
    let baseDirectory: String?
    var target: (any ScriptTarget)?
    var environment = ScriptEnvironment()
    var lastIOMMUFD: Int32?

    /// - Parameters:
    ///   - host: builds the kernel and names errnos.
    ///   - baseDirectory: folder against which relative device dump paths are resolved.
    public init(host: any ScriptHost, baseDirectory: String? = nil) {
        self.host = host
        self.baseDirectory = baseDirectory
    }

    /// Parses `text` and runs it, calling `emit` with each step's result as soon as it is known.
    ///
    /// - Returns: the results (also passed to `emit`).
    /// - Throws: ``ScriptSyntaxError`` for a malformed line; nothing has run then.
    @discardableResult
    public static func run(
        _ text: String, host: any ScriptHost, baseDirectory: String? = nil,
        emit: (ScriptStepResult) -> Void = { _ in }
    ) throws(ScriptSyntaxError) -> [ScriptStepResult] {
        let steps = try ScriptParser.parse(text, isErrnoName: { [host] in host.errno(named: $0) != nil })
        let engine = ScriptEngine(host: host, baseDirectory: baseDirectory)
        var results: [ScriptStepResult] = []
        for step in steps {
            let result = engine.run(step)
            results.append(result)
            emit(result)
            if result.verdict == .error { break }
        }
        return results
    }

    /// The kernel the script has built so far (nil before the first kernel step).
    public var currentTarget: (any ScriptTarget)? { target }

    /// The value of `$name` now: a saved number or a buffer's address; nil if undefined.
    public func savedValue(_ name: String) -> UInt64? {
        environment.numbers[name] ?? environment.buffers[name]?.address
    }

    /// Runs one step.
    public func run(_ step: ScriptStep) -> ScriptStepResult {
        var result = ScriptStepResult(line: step.line, label: step.label, op: step.opName, verdict: .ok)
        do {
            try perform(step, into: &result)
        } catch {
            result.verdict = .error
            result.details.append(error.reason)
        }
        return result
    }

    // MARK: - Steps

    private func perform(_ step: ScriptStep, into result: inout ScriptStepResult) throws(ScriptRunError) {
        switch step.action {
        case let .comment(text):
            result.text = text.isEmpty ? step.why : text
            return
        case let .platform(platform):
            guard target == nil else {
                throw ScriptRunError("\"platform\" must come before every step that uses the kernel")
            }
            target = try host.makeTarget(platform, baseDirectory: baseDirectory)
            result.text = "profile \(target?.profileName ?? "?")"
            return
        case let .arch(arch):
            try performArch(arch, step, into: &result)
            return
        default:
            break
        }
        let kernel = try kernelTarget()
        try checkHeldLocks(step, kernel: kernel)
        switch step.action {
        case .comment, .platform, .arch:
            return
        case let .openIOMMUFD(save):
            let outcome = kernel.openIOMMUFD()
            if case let .success(fd) = outcome { lastIOMMUFD = fd }
            check(outcome.map { Int($0) }, step: step, into: &result, save: save)
        case let .close(fdValue):
            let fd = try fileDescriptor(fdValue)
            let outcome = kernel.close(fd: fd)
            if case .success = outcome, lastIOMMUFD == fd { lastIOMMUFD = nil }
            check(outcome.map { 0 }, step: step, into: &result, save: nil, reportValue: false)
        case let .createVM(save):
            let outcome = kernel.createVM()
            check(outcome.map { Int(truncatingIfNeeded: $0) }, step: step, into: &result, save: save)
        case let .vfioOpen(device, save):
            check(kernel.vfioOpen(device: device).map { Int($0) }, step: step, into: &result, save: save)
        case let .vfioAssociate(vfio, vm):
            let fd = try fileDescriptor(vfio)
            let handle = try resolve(vm)
            check(kernel.vfioAssociate(vfio: fd, vm: handle).map { 0 }, step: step, into: &result, save: nil, reportValue: false)
        case let .vfioBind(vfio, iommufd, save):
            let outcome = kernel.vfioBind(vfio: try fileDescriptor(vfio), iommufd: try fileDescriptor(iommufd))
            if case let .success(devid) = outcome { result.fields = [("out_devid", UInt64(devid))] }
            check(outcome.map { _ in 0 }, step: step, into: &result, save: nil, reportValue: false)
            if case let .success(devid) = outcome, let save { saveNumber(save, UInt64(devid), into: &result) }
        case let .connect(device, input, signalPending):
            let outcome = kernel.connect(device: device, input: input, signalPending: signalPending)
            check(outcome.map { 0 }, step: step, into: &result, save: nil, reportValue: false)
        case let .disconnect(device, input, signalPending):
            let outcome = kernel.disconnect(device: device, input: input, signalPending: signalPending)
            check(outcome.map { 0 }, step: step, into: &result, save: nil, reportValue: false)
        case let .devsecLock(device, tsm):
            check(kernel.devsecLock(device: device, tsm: tsm).map { 0 }, step: step, into: &result, save: nil, reportValue: false)
        case let .sysfsRead(device, attribute, expectText):
            let outcome = kernel.sysfsRead(device: device, attribute: attribute)
            if case let .success(text) = outcome { result.text = text }
            check(outcome.map { _ in 0 }, step: step, into: &result, save: nil, reportValue: false)
            if let expectText, case let .success(text) = outcome, text != expectText {
                result.verdict = .mismatch
                result.details.append("text: expected \"\(expectText)\", got \"\(text)\"")
            }
        case let .buffer(name, size, contents, readOnly):
            let address = try kernel.map(size: size)
            if !contents.isEmpty, !kernel.write(contents, at: address) {
                throw ScriptRunError("could not initialise buffer \(name) at 0x\(String(address, radix: 16))")
            }
            if readOnly, !kernel.protect(address, writable: false) {
                throw ScriptRunError("could not make buffer \(name) read-only")
            }
            environment.saveBuffer(name, .init(address: address, size: size))
            result.saved = [(name, address)]
        case let .protect(name, writable):
            guard let buffer = environment.buffers[name] else { throw ScriptRunError("no buffer named \(name)") }
            guard kernel.protect(buffer.address, writable: writable) else {
                throw ScriptRunError("buffer \(name) is no longer mapped")
            }
        case let .holdLock(lock, device, save):
            let outcome = kernel.holdLock(lock, device: device)
            check(outcome.map { Int(truncatingIfNeeded: $0) }, step: step, into: &result, save: save, reportValue: false)
        case let .releaseLock(value):
            guard kernel.releaseLock(try resolve(value)) else { throw ScriptRunError("\(value) is not a held lock") }
        case let .checkBuffer(expectations):
            try checkBuffers(expectations, kernel: kernel, into: &result)
        case let .ioctl(spec):
            try performIoctl(spec, step: step, kernel: kernel, into: &result)
        case let .sampleTSM(spec):
            let residue = try spec.residue.map { (value) throws(ScriptRunError) in try resolve(value) }
            let tsmCode = try spec.tsmCode.map { (value) throws(ScriptRunError) in try resolve(value) }
            try kernel.configureSampleTSM(spec, residue: residue, tsmCode: tsmCode)
        }
    }

    /// While a lock is held (`hold_lock`), a single-threaded script may only make calls that
    /// wait *interruptibly* with a signal pending (they return EINTR instead of waiting): guest
    /// requests (spec 4.2 steps 7/10, 4.3 steps 8/11). Anything else could wait for ever. (sysfs
    /// connect/disconnect are killable in the kernel, but the simulated kernel's attribute
    /// visibility check takes the global lock for reading without a signal check first, so they
    /// would hang here; reported to the kernel's owner.)
    private func checkHeldLocks(_ step: ScriptStep, kernel: any ScriptTarget) throws(ScriptRunError) {
        let held = kernel.heldLocks
        guard held.global || held.dsm else { return }
        switch step.action {
        case .comment, .buffer, .checkBuffer, .protect, .holdLock, .releaseLock, .sampleTSM:
            return
        case let .ioctl(spec) where spec.signalPending && spec.command == "IOMMU_VDEVICE_TSM_REQ" && spec.request == nil:
            return
        default:
            throw ScriptRunError(
                "a pci-tsm lock is held: only guest requests with \"signal_pending\": true may run until \"release_lock\"")
        }
    }

    private func kernelTarget() throws(ScriptRunError) -> any ScriptTarget {
        if let target { return target }
        let made = try host.makeTarget(
            PlatformSpec(profile: nil, tsm: "link", devices: ["sample"], configTSM: true), baseDirectory: baseDirectory)
        target = made
        return made
    }

    // MARK: - ioctl

    private func performIoctl(
        _ spec: IoctlSpec, step: ScriptStep, kernel: any ScriptTarget, into result: inout ScriptStepResult
    ) throws(ScriptRunError) {
        let fd: Int32
        if let value = spec.fd {
            fd = try fileDescriptor(value)
        } else if let lastIOMMUFD {
            fd = lastIOMMUFD
        } else {
            throw ScriptRunError("no iommufd is open: add {\"op\":\"open_iommufd\"} or give \"fd\"")
        }
        var layout: ScriptStructLayout?
        var request: UInt32 = 0
        if let name = spec.command {
            guard let command = kernel.command(named: name) else {
                throw ScriptRunError(
                    "profile \(kernel.profileName) has no command \(name) (it has: \(kernel.commandNames.joined(separator: ", ")))")
            }
            layout = command.layout
            request = command.request
            if layout == nil, !spec.fields.isEmpty || spec.size != nil || !spec.tail.isEmpty {
                throw ScriptRunError("\(name) has no modelled struct: use \"raw\" or \"arg\"")
            }
            result.command = name
        }
        if let value = spec.request {
            let bits = try resolve(value)
            guard bits <= UInt64(UInt32.max) else { throw ScriptRunError("\"request\" 0x\(String(bits, radix: 16)) is wider than 32 bits") }
            request = UInt32(bits)
            if result.command == nil { result.command = "0x" + String(bits, radix: 16) }
        }

        // The argument bytes.
        var bytes: [UInt8] = []
        let wroteExplicitly = spec.raw != nil || !spec.fields.isEmpty
        if let raw = spec.raw {
            bytes = raw
        } else if let layout {
            let sizeWord = try spec.size.map { (value) throws(ScriptRunError) in try resolveField(value, width: 4, field: "size") }
            let length = max(layout.size, Int(sizeWord ?? 0))
            guard length <= ScriptParser.maximumBufferSize else { throw ScriptRunError("\"size\" \(length) is larger than 16 MiB") }
            bytes = [UInt8](repeating: 0, count: length)
            if let name = layout.sizeField, let sizeField = layout.field(name) {
                store(sizeWord ?? UInt64(layout.size), into: &bytes, at: sizeField.offset, width: sizeField.size)
            }
            for field in spec.fields {
                guard let slot = layout.field(field.name) else {
                    throw ScriptRunError(
                        "\(layout.name) has no field \(field.name) (fields: \(layout.fields.map(\.name).joined(separator: ", ")))")
                }
                store(try resolveField(field.value, width: slot.size, field: field.name), into: &bytes, at: slot.offset, width: slot.size)
            }
            if !spec.tail.isEmpty {
                let end = layout.size + spec.tail.count
                if bytes.count < end { bytes.append(contentsOf: [UInt8](repeating: 0, count: end - bytes.count)) }
                bytes.replaceSubrange(layout.size..<end, with: spec.tail)
            }
        }

        // Where it lives.
        let argument: UInt64
        if let value = spec.argument {
            argument = try resolve(value)
            if wroteExplicitly, !kernel.write(bytes, at: argument) {
                throw ScriptRunError("cannot place the argument at 0x\(String(argument, radix: 16)): not mapped")
            }
        } else if bytes.isEmpty {
            throw ScriptRunError("nothing to pass: give \"cmd\" (a struct), \"raw\" bytes, or \"arg\"")
        } else {
            argument = try kernel.map(size: bytes.count)
            guard kernel.write(bytes, at: argument) else { throw ScriptRunError("could not write the argument") }
            if spec.readOnlyArgument, !kernel.protect(argument, writable: false) {
                throw ScriptRunError("could not make the argument read-only")
            }
        }

        let outcome = kernel.ioctl(fd: fd, request: request, argument: argument, signalPending: spec.signalPending)

        // Outputs read back from the argument.
        var readBack: [UInt8]?
        if let layout { readBack = kernel.read(at: argument, count: layout.size) }
        if let layout, let readBack {
            let wanted = Set(spec.expectFields.map(\.name))
            result.fields = layout.fields.filter { $0.isOutput || wanted.contains($0.name) }
                .map { ($0.name, load(readBack, at: $0.offset, width: $0.size)) }
        }
        check(outcome, step: step, into: &result, save: nil, reportValue: true)

        if case .success = outcome {
            for entry in spec.save {
                guard let layout, let readBack else {
                    throw ScriptRunError("\"save\" needs \"cmd\" and a readable argument")
                }
                let field: ScriptStructLayout.Field
                if entry.field.isEmpty {
                    let outputs = layout.fields.filter { $0.isOutput && $0.name.hasPrefix("out_") }
                    guard outputs.count == 1, let only = outputs.first else {
                        throw ScriptRunError(
                            "\(layout.name) has \(outputs.count) output fields: write \"save\":{\"\(entry.name)\":\"field\"}")
                    }
                    field = only
                } else {
                    guard let named = layout.field(entry.field) else {
                        throw ScriptRunError("\"save\": \(layout.name) has no field \(entry.field)")
                    }
                    field = named
                }
                saveNumber(entry.name, load(readBack, at: field.offset, width: field.size), into: &result)
            }
        }
        for expectation in spec.expectFields {
            guard let layout, let slot = layout.field(expectation.name) else {
                throw ScriptRunError("\"expect_fields\": no field \(expectation.name) in \(layout?.name ?? "a raw argument")")
            }
            let expected = try resolveField(expectation.value, width: slot.size, field: slot.name)
            guard let readBack else {
                result.verdict = .mismatch
                result.details.append("\(slot.name): the argument is not readable")
                continue
            }
            let actual = load(readBack, at: slot.offset, width: slot.size)
            if actual != expected {
                result.verdict = .mismatch
                result.details.append("\(slot.name): expected \(expected), got \(actual)")
            }
        }
        try checkBuffers(spec.expectBuffer, kernel: kernel, into: &result)
    }

    // MARK: - Checks

    /// Compares a kernel outcome with the step's `expect` (nil = must not fail) and fills rc/errno.
    func check(
        _ outcome: Result<Int, Errno>, step: ScriptStep, into result: inout ScriptStepResult, save: String?,
        reportValue: Bool = true
    ) {
        switch outcome {
        case let .success(value):
            result.rc = reportValue ? value : 0
            if let save { saveNumber(save, UInt64(truncatingIfNeeded: value), into: &result) }
        case let .failure(errno):
            result.rc = -1
            result.errno = host.name(of: errno)
        }
        result.expected = step.expect?.description
        switch (step.expect, outcome) {
        case (nil, .success):
            break
        case let (nil, .failure(errno)):
            result.verdict = .mismatch
            result.expected = "success"
            result.details.append("expected success, got \(host.name(of: errno))")
        case let (.errno(name)?, .failure(errno)):
            if host.name(of: errno) != name {
                result.verdict = .mismatch
                result.details.append("expected \(name), got \(host.name(of: errno))")
            }
        case let (.errno(name)?, .success(value)):
            result.verdict = .mismatch
            result.details.append("expected \(name), got \(value)")
        case let (.value(expected)?, .success(value)):
            if UInt64(truncatingIfNeeded: value) != expected || value < 0 {
                result.verdict = .mismatch
                result.details.append("expected \(expected), got \(value)")
            }
        case let (.value(expected)?, .failure(errno)):
            result.verdict = .mismatch
            result.details.append("expected \(expected), got \(host.name(of: errno))")
        }
    }

    private func checkBuffers(
        _ expectations: [BufferExpectation], kernel: any ScriptTarget, into result: inout ScriptStepResult
    ) throws(ScriptRunError) {
        for expectation in expectations {
            guard let buffer = environment.buffers[expectation.buffer] else {
                throw ScriptRunError("no buffer named \(expectation.buffer)")
            }
            guard expectation.offset + expectation.bytes.count <= buffer.size else {
                throw ScriptRunError(
                    "\(expectation.buffer)+\(expectation.offset): \(expectation.bytes.count) bytes pass the end of the \(buffer.size)-byte buffer")
            }
            let address = buffer.address &+ UInt64(expectation.offset)
            guard let actual = kernel.read(at: address, count: expectation.bytes.count) else {
                throw ScriptRunError("buffer \(expectation.buffer) is no longer readable")
            }
            if actual != expectation.bytes {
                result.verdict = .mismatch
                let name = expectation.offset == 0 ? expectation.buffer : "\(expectation.buffer)+\(expectation.offset)"
                result.details.append("\(name): expected \(Hex.encode(expectation.bytes)), got \(Hex.encode(actual))")
            }
        }
    }

    // MARK: - Values

    private func saveNumber(_ name: String, _ value: UInt64, into result: inout ScriptStepResult) {
        environment.save(name, value)
        result.saved.append((name, value))
    }

    private func resolve(_ value: ScriptValue) throws(ScriptRunError) -> UInt64 {
        do { return try environment.resolve(value) } catch { throw ScriptRunError(error.reason) }
    }

    private func resolveField(_ value: ScriptValue, width: Int, field: String) throws(ScriptRunError) -> UInt64 {
        do { return try environment.resolve(value, width: width, field: field) } catch { throw ScriptRunError(error.reason) }
    }

    private func fileDescriptor(_ value: ScriptValue) throws(ScriptRunError) -> Int32 {
        let bits = try resolve(value)
        let signed = Int64(bitPattern: bits)
        guard signed >= Int64(Int32.min), signed <= Int64(Int32.max) else {
            throw ScriptRunError("\(value) = \(bits) is not a file descriptor")
        }
        return Int32(signed)
    }
}

/// Stores the low `width` bytes of `value` little-endian at `offset` (which the caller keeps in range).
func store(_ value: UInt64, into bytes: inout [UInt8], at offset: Int, width: Int) {
    for index in 0..<width where offset + index < bytes.count {
        bytes[offset + index] = UInt8(truncatingIfNeeded: value >> UInt64(8 * index))
    }
}

/// Loads a little-endian value of `width` bytes at `offset`; bytes past the end read as zero.
func load(_ bytes: [UInt8], at offset: Int, width: Int) -> UInt64 {
    var reader = ByteReader(bytes, offset: offset)
    var value: UInt64 = 0
    for index in 0..<width {
        guard let byte = try? reader.u8() else { break }
        value |= UInt64(byte) << UInt64(8 * index)
    }
    return value
}

extension ScriptStep {
    /// The op's name as written in the script.
    public var opName: String {
        switch action {
        case .comment: return "comment"
        case .platform: return "platform"
        case .openIOMMUFD: return "open_iommufd"
        case .close: return "close"
        case .createVM: return "create_vm"
        case .vfioOpen: return "vfio_open"
        case .vfioAssociate: return "vfio_associate"
        case .vfioBind: return "vfio_bind"
        case .connect: return "connect"
        case .disconnect: return "disconnect"
        case .devsecLock: return "devsec_lock"
        case .sysfsRead: return "sysfs_read"
        case .buffer: return "buffer"
        case .protect: return "protect"
        case .holdLock: return "hold_lock"
        case .releaseLock: return "release_lock"
        case .checkBuffer: return "check_buffer"
        case .ioctl: return "ioctl"
        case .sampleTSM: return "sample_tsm"
        case let .arch(arch): return arch.opName
        }
    }
}
