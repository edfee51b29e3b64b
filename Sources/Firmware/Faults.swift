// Fault injection (issue 5, deliverable 5): a per-platform plan that makes a firmware call fail
// with a chosen status, makes the DSM answer a TDISP request with a chosen TDISP_ERROR, or makes
// the device stop answering. EMU-CCA-3 (CCA statuses are recorded, never exported in tsm_code).
import TDISP
import Wire

/// A per-platform fault plan: an ordered list of rules, each consulted on every firmware call or
/// TDISP request of the platform after the plan is installed.
///
/// Firmware calls are counted from 1 in the order the model makes them (the names are the
/// architecture's own: `RMI_VDEV_START`, `TDI_BIND`, `TDH.TDI.START`, …; see docs/firmware.md).
/// A rule fires at most once unless its effect is ``Effect/deviceSilent``, which lasts until the
/// plan is replaced.
public struct FaultPlan: Sendable, Equatable {
    /// When a rule fires.
    public enum Trigger: Sendable, Equatable {
        /// The `n`th firmware call of any name (1-based) since the plan was installed.
        case nthFirmwareCall(Int)
        /// The `occurrence`th call (1-based) of the firmware call named `name`.
        case firmwareCall(String, occurrence: Int = 1)
        /// The `occurrence`th TDISP request with message code `code` (e.g. 0x86 START_INTERFACE).
        case tdispRequest(UInt8, occurrence: Int = 1)
    }

    /// What happens when a rule fires.
    public enum Effect: Sendable, Equatable {
        /// The firmware call fails with this status (RMI status, SEV_RET code or TDX status).
        /// Only meaningful with a firmware-call trigger.
        case firmwareStatus(UInt64)
        /// The DSM answers with TDISP_ERROR `code` (ERROR_DATA `data`) instead of handling the
        /// request; the DSM's state does not change. Only meaningful with a TDISP trigger.
        case tdispError(code: UInt32, data: UInt32 = 0)
        /// From now on the device does not answer any TDISP request.
        case deviceSilent
    }

    /// One trigger/effect pair.
    public struct Rule: Sendable, Equatable {
        /// When the rule fires.
        public var trigger: Trigger
        /// What happens then.
        public var effect: Effect
        /// Creates the value from its fields.
        public init(_ trigger: Trigger, _ effect: Effect) {
            self.trigger = trigger
            self.effect = effect
        }
    }

    /// The rules, consulted in order; the first that matches fires.
    public var rules: [Rule]

    /// Creates the value from its fields.
    public init(_ rules: [Rule] = []) { self.rules = rules }
}

/// Why a TDISP exchange with the DSM failed (the firmware's view).
enum DeviceFailure: Error, Equatable {
    /// The DSM answered TDISP_ERROR with this ERROR_CODE.
    case tdispError(UInt32)
    /// The device did not answer.
    case noResponse
    /// The answer was not the expected response (size, version, code or INTERFACE_ID).
    case malformed
}

/// The mutable fault-injection state of one platform: the plan, counters, and the log of
/// firmware calls and TDISP requests (so tests and scripts can assert which calls happened).
struct FaultState: Sendable {
    var plan = FaultPlan()
    var fired: Set<Int> = []
    var firmwareCalls = 0
    var callCounts: [String: Int] = [:]
    var tdispCounts: [UInt8: Int] = [:]
    var silent = false
    var log: [String] = []

    mutating func install(_ newPlan: FaultPlan) {
        plan = newPlan
        fired = []
        firmwareCalls = 0
        callCounts = [:]
        tdispCounts = [:]
        silent = false
    }

    /// Records a firmware call and returns the injected failure status, if a rule fires.
    mutating func firmwareCall(_ name: String) -> UInt64? {
        firmwareCalls += 1
        let occurrence = (callCounts[name] ?? 0) + 1
        callCounts[name] = occurrence
        log.append(name)
        for (index, rule) in plan.rules.enumerated() where !fired.contains(index) {
            guard case let .firmwareStatus(status) = rule.effect else { continue }
            switch rule.trigger {
            case let .nthFirmwareCall(n) where n == firmwareCalls:
                fired.insert(index)
                return status
            case let .firmwareCall(ruleName, ruleOccurrence) where ruleName == name && ruleOccurrence == occurrence:
                fired.insert(index)
                return status
            default:
                continue
            }
        }
        return nil
    }

    /// Sends one TDISP request through `transport`, applying TDISP faults; returns the response.
    mutating func exchange(_ transport: any TDISPTransport, _ request: [UInt8]) throws(DeviceFailure) -> [UInt8] {
        let code = request.count > 1 ? request[1] : 0
        let occurrence = (tdispCounts[code] ?? 0) + 1
        tdispCounts[code] = occurrence
        log.append("TDISP 0x" + String(code, radix: 16))
        if silent { throw .noResponse }
        for (index, rule) in plan.rules.enumerated() where !fired.contains(index) {
            guard case let .tdispRequest(ruleCode, ruleOccurrence) = rule.trigger,
                  ruleCode == code, ruleOccurrence == occurrence else { continue }
            switch rule.effect {
            case let .tdispError(errorCode, data):
                fired.insert(index)
                let function = (try? TDISPHeader(decoding: Array(request.prefix(TDISPHeader.size))))?.interfaceID
                    ?? InterfaceID(functionID: FunctionID(rawValue: 0))
                return TDISPErrorResponse(interfaceID: function, errorCode: TDISPErrorCode(rawValue: errorCode),
                                          errorData: data).encoded()
            case .deviceSilent:
                fired.insert(index)
                silent = true
                throw .noResponse
            case .firmwareStatus:
                continue
            }
        }
        for (index, rule) in plan.rules.enumerated() where !fired.contains(index) {
            guard case .deviceSilent = rule.effect else { continue }
            switch rule.trigger {
            case let .nthFirmwareCall(n) where n <= firmwareCalls:
                fired.insert(index)
                silent = true
                throw .noResponse
            case let .firmwareCall(name, occurrence) where (callCounts[name] ?? 0) >= occurrence:
                fired.insert(index)
                silent = true
                throw .noResponse
            default:
                continue
            }
        }
        do {
            return try transport.exchange(request)
        } catch {
            throw .noResponse
        }
    }
}

// MARK: - Text form (for `tsmctl script` and the CLI)

/// Why a fault rule's text form could not be read.
public struct FaultRuleSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text that was refused.
    public var text: String
    /// What was wrong with it.
    public var reason: String
    /// One line naming the rule's text and why it was refused.
    public var description: String { "fault rule \"\(text)\": \(reason)" }
}

extension FaultPlan.Rule: CustomStringConvertible {
    /// Reads a rule written as `TRIGGER=EFFECT`:
    ///
    /// | trigger | meaning |
    /// |---|---|
    /// | `fw#N` | the N-th firmware call (N ≥ 1) |
    /// | `fw:NAME` or `fw:NAME#K` | the K-th (default 1st) call named NAME (e.g. `fw:RMI_VDEV_START`) |
    /// | `tdisp:CODE` or `tdisp:CODE#K` | the K-th TDISP request with message code CODE (e.g. `tdisp:0x86`) |
    ///
    /// | effect | meaning |
    /// |---|---|
    /// | `STATUS` | ``FaultPlan/Effect/firmwareStatus(_:)`` (decimal or 0x-hex, 64 bits) |
    /// | `error:CODE` or `error:CODE,DATA` | ``FaultPlan/Effect/tdispError(code:data:)`` |
    /// | `silent` | ``FaultPlan/Effect/deviceSilent`` |
    ///
    /// Example: `tdisp:0x86=error:0x102`, `fw:TDI_BIND=0x3c`, `fw#3=silent`.
    /// Throws ``FaultRuleSyntaxError`` (never traps) for anything else.
    public init(parsing text: String) throws(FaultRuleSyntaxError) {
        func fail(_ reason: String) -> FaultRuleSyntaxError { FaultRuleSyntaxError(text: text, reason: reason) }
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw fail("expected TRIGGER=EFFECT") }
        let (triggerText, effectText) = (parts[0], parts[1])
        let trigger: FaultPlan.Trigger
        if triggerText.hasPrefix("fw#") {
            guard let n = Self.number(String(triggerText.dropFirst(3))), n >= 1, n <= UInt64(Int.max) else { throw fail("bad call number") }
            trigger = .nthFirmwareCall(Int(n))
        } else if triggerText.hasPrefix("fw:") || triggerText.hasPrefix("tdisp:") {
            let isFirmware = triggerText.hasPrefix("fw:")
            let body = String(triggerText.dropFirst(isFirmware ? 3 : 6))
            let pieces = body.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            var occurrence = 1
            if pieces.count == 2 {
                guard let k = Self.number(pieces[1]), k >= 1, k <= UInt64(Int.max) else { throw fail("bad occurrence") }
                occurrence = Int(k)
            }
            guard let name = pieces.first, !name.isEmpty else { throw fail("missing name or code") }
            if isFirmware {
                trigger = .firmwareCall(name, occurrence: occurrence)
            } else {
                guard let code = Self.number(name), code <= 0xFF else { throw fail("bad TDISP message code") }
                trigger = .tdispRequest(UInt8(code), occurrence: occurrence)
            }
        } else {
            throw fail("trigger must start with fw#, fw: or tdisp:")
        }
        let effect: FaultPlan.Effect
        if effectText == "silent" {
            effect = .deviceSilent
        } else if effectText.hasPrefix("error:") {
            let fields = effectText.dropFirst(6).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count <= 2, let code = fields.first.flatMap(Self.number), code <= UInt64(UInt32.max) else {
                throw fail("bad TDISP error")
            }
            var data: UInt64 = 0
            if fields.count == 2 {
                guard let value = Self.number(fields[1]), value <= UInt64(UInt32.max) else { throw fail("bad TDISP error data") }
                data = value
            }
            effect = .tdispError(code: UInt32(code), data: UInt32(data))
        } else {
            guard let status = Self.number(effectText) else { throw fail("bad firmware status") }
            effect = .firmwareStatus(status)
        }
        self.init(trigger, effect)
    }

    /// The text form ``init(parsing:)`` reads back.
    public var description: String {
        let triggerText: String
        switch trigger {
        case let .nthFirmwareCall(n): triggerText = "fw#\(n)"
        case let .firmwareCall(name, occurrence): triggerText = "fw:\(name)" + (occurrence == 1 ? "" : "#\(occurrence)")
        case let .tdispRequest(code, occurrence):
            triggerText = "tdisp:0x" + String(code, radix: 16) + (occurrence == 1 ? "" : "#\(occurrence)")
        }
        let effectText: String
        switch effect {
        case let .firmwareStatus(status): effectText = "0x" + String(status, radix: 16)
        case let .tdispError(code, data):
            effectText = "error:0x" + String(code, radix: 16) + (data == 0 ? "" : ",0x" + String(data, radix: 16))
        case .deviceSilent: effectText = "silent"
        }
        return triggerText + "=" + effectText
    }

    private static func number(_ text: String) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
        return UInt64(text, radix: 10)
    }
}

extension FaultPlan {
    /// A plan from rules in their text form (``FaultPlan/Rule/init(parsing:)``), in order.
    public init(parsing rules: [String]) throws(FaultRuleSyntaxError) {
        var parsed: [Rule] = []
        for text in rules { parsed.append(try Rule(parsing: text)) }
        self.init(parsed)
    }
}
