import ArgumentParser
import Foundation
import Guest
import KernelScript
import SystemPackage
import UAPI

/// `tsmctl assign`: assigns one PCI function of a device dump into a confidential VM of one
/// architecture, end to end (VMM library → simulated kernel → arch TSM → DSM, and the TVM's
/// agent), and prints one transcript line per step. docs/assign.md.
///
/// Exit status: 0 when the TDI reached RUN and the guest verified the evidence; 1 when the flow
/// ran but did not get there (a refusal, a failed step, an injected fault); 2 for bad input (one
/// line on stderr naming the problem and the input).
struct AssignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assign",
        abstract: "Assign a device function into a confidential VM (CCA, SEV-TIO, TDX Connect), end to end.",
        discussion: """
            Example: tsmctl assign --arch cca --device Examples/devices/tee-io-endpoint-sriov.lspci --vf 1
            Each transcript line: step number, actor, the layers crossed, the step, what was sent,
            the result and the TDI state the device holds afterwards. See docs/assign.md.
            """)

    @Option(name: .long, help: "Architecture: cca, sev or tdx.")
    var arch: String

    @Option(name: .long, help: "An lspci -vvv -xxxx dump (repeatable).")
    var device: [String] = []

    @Option(name: .long, help: "The function to assign (BB:DD.F); default: the first DSM-capable function.")
    var function: String?

    @Option(name: .long, help: "Assign VF N (1-based) of the function instead.")
    var vf: Int?

    @Option(name: .long, help: "uAPI profile: revised or rev-k.")
    var profile: String = UAPIProfile.default.name

    @Option(name: .long, help: "Backend: simulated (default) or linux.")
    var backend: String = "simulated"

    @Flag(name: .long, help: "Leave the device assigned and print its state (no teardown).")
    var keep = false

    @Option(name: .long, help: "Make the untrusted VMM path alter an object: report, measurements or certificate.")
    var tamper: String?

    @Option(name: .long, help: "A firmware fault rule, e.g. fw:TDI_BIND=0x3c (repeatable; docs/firmware.md).")
    var fault: [String] = []

    @Option(name: .long, help: "The guest's trust anchor: a root certificate file, PEM or DER (default: the emulated device's root).")
    var trustAnchor: String?

    @Flag(name: .long, help: "Print the transcript and summary as JSON.")
    var json = false

    @Option(name: .long, help: "Write every uAPI call, TDISP message and guest payload as JSON Lines (tsmctl decode reads it).")
    var trace: String?

    @Option(name: .long, help: "Write the flow as a Mermaid sequence diagram.")
    var diagram: String?

    func run() async throws {
        // Output files first: a path that cannot be written is bad input, found before the flow
        // runs (checked with access(2), so nothing is created or truncated yet).
        for (option, path) in [("--trace", trace), ("--diagram", diagram)] {
            guard let path else { continue }
            let directory = (path as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            let writable = exists ? !isDirectory.boolValue && access(path, W_OK) == 0
                                  : access(directory.isEmpty ? "." : directory, W_OK) == 0
            guard writable else {
                ScriptCommand.printError("tsmctl assign: cannot write \(option) \(path)")
                throw ExitCode(2)
            }
        }
        let prepared = await perform()
        if isatty(STDERR_FILENO) == 1 { _ = try? FileDescriptor.standardError.writeAll(Array("\r\u{1B}[K".utf8)) }
        guard case let .success((flow, outcome)) = prepared else {
            if case let .failure(error) = prepared { ScriptCommand.printError("tsmctl assign: \(error.description)") }
            throw ExitCode(2)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            let data = (try? encoder.encode(outcome)) ?? Data("{}".utf8)
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(AssignRender.transcript(outcome, keep: keep))
        }
        if let trace {
            let text = flow.trace.map(AssignRender.jsonLine).joined(separator: "\n") + "\n"
            guard FileManager.default.createFile(atPath: trace, contents: Data(text.utf8)) else {
                ScriptCommand.printError("tsmctl assign: cannot write --trace \(trace)")
                throw ExitCode(2)
            }
        }
        if let diagram {
            guard FileManager.default.createFile(atPath: diagram, contents: Data(AssignRender.mermaid(outcome).utf8)) else {
                ScriptCommand.printError("tsmctl assign: cannot write --diagram \(diagram)")
                throw ExitCode(2)
            }
        }
        if !outcome.succeeded { throw ExitCode(1) }
    }

    /// Checks the input and runs the flow.
    private func perform() async -> Result<(AssignFlow, AssignOutcome), AssignInputError> {
        let flow: AssignFlow
        switch Result(catching: { () throws(AssignInputError) -> AssignFlow in try AssignFlow(try makeRequest()) }) {
        case let .success(value): flow = value
        case let .failure(error): return .failure(error)
        }
        do {
            return .success((flow, try await flow.run(linux: backend == "linux")))
        } catch {
            return .failure(error)
        }
    }

    private func makeRequest() throws(AssignInputError) -> AssignRequest {
        guard let tvmArch = TVMArch.allCases.first(where: { $0.name == arch.lowercased() }) else {
            throw AssignInputError("--arch \(arch): not an architecture (cca, sev, tdx)")
        }
        guard backend == "simulated" || backend == "linux" else {
            throw AssignInputError("--backend \(backend): not a backend (simulated, linux)")
        }
        if backend == "linux" {
            // Faults go into the simulated firmware; tampering and the trust anchor act on the
            // guest, which tsmctl does not run on Linux (it runs inside the TVM).
            let simulatedOnly = [("--fault", !fault.isEmpty), ("--tamper", tamper != nil), ("--trust-anchor", trustAnchor != nil)]
            if let (option, _) = simulatedOnly.first(where: \.1) {
                throw AssignInputError("\(option) works with --backend simulated only: on Linux the firmware is real and the guest runs inside the TVM")
            }
        }
        let uapiProfile: UAPIProfile
        do { uapiProfile = try UAPIProfile.named(profile) } catch {
            throw AssignInputError("--profile \(profile): unknown uAPI profile; valid profiles: \(UAPIProfile.all.map(\.name).joined(separator: ", "))")
        }
        var target: TamperingChannel.Target?
        if let tamper {
            guard let chosen = TamperingChannel.Target.allCases.first(where: { $0.rawValue == tamper.lowercased() }) else {
                throw AssignInputError("--tamper \(tamper): choose report, measurements or certificate")
            }
            target = chosen
        }
        var anchor: (path: String, verifier: EvidenceVerifier)?
        if let trustAnchor {
            guard let data = FileManager.default.contents(atPath: trustAnchor) else {
                throw AssignInputError("--trust-anchor \(trustAnchor): cannot read the file")
            }
            let text = String(decoding: data, as: UTF8.self)
            do {
                let verifier = text.contains("-----BEGIN")
                    ? try EvidenceVerifier(trustAnchorPEM: text) : try EvidenceVerifier(trustAnchorDER: Array(data))
                anchor = (trustAnchor, verifier)
            } catch {
                throw AssignInputError("--trust-anchor \(trustAnchor): not an X.509 certificate (PEM or DER)")
            }
        }
        var devices: [(path: String, text: String)] = []
        for path in device {
            guard let text = readTextFile(path, limit: 16 << 20) else { throw AssignInputError("--device \(path): cannot read the file") }
            devices.append((path, text))
        }
        return AssignRequest(arch: tvmArch, devices: devices, function: function, vf: vf, profile: uapiProfile,
                             keep: keep, tamper: target, faults: fault, trustAnchor: anchor)
    }
}

/// The renderings of an ``AssignOutcome``: the readable transcript, the Mermaid diagram, trace lines.
enum AssignRender {
    static let arrow = " → "

    /// One line per step, then the summary.
    static func transcript(_ outcome: AssignOutcome, keep: Bool) -> String {
        var lines = ["tsmctl assign: \(outcome.function) (DSM \(outcome.dsm)) into a \(outcome.arch.uppercased()) VM, \(outcome.backend) backend, profile \(outcome.profile)"]
        for step in outcome.steps {
            let path = step.path.isEmpty ? "-" : step.path.joined(separator: arrow)
            let state = step.tdiState ?? "-"
            let mark = step.status == "ok" ? "" : " [\(step.status.uppercased())]"
            let number = String(step.index)
            var line = String(repeating: " ", count: max(0, 3 - number.count)) + number + " "
                + step.actor.padding(toLength: 10, withPad: " ", startingAt: 0) + " " + step.step
            line += "\(mark)\n      \(path) | sent: \(step.sent.isEmpty ? "-" : step.sent) | result: \(step.result) | TDI: \(state)"
            if step.tdispMessages > 0 { line += " | TDISP messages: \(step.tdispMessages)" }
            lines.append(line)
        }
        lines.append("summary: " + summary(outcome, keep: keep))
        return lines.joined(separator: "\n")
    }

    static func summary(_ outcome: AssignOutcome, keep: Bool) -> String {
        var parts: [String] = []
        if outcome.backend == "linux" {
            // The host side only: the guest's checks and RUN happen inside the TVM.
            parts.append(outcome.failure == nil ? "TDI bound on the host (CONFIG_LOCKED); the guest's evidence checks and RUN happen inside the TVM"
                                                : "TDI not bound")
            if let failure = outcome.failure { parts.append("reason: \(failure)") }
            parts.append(keep ? "kept bound" : (outcome.tornDown ? "torn down, TDI \(outcome.finalState ?? "released")" : "teardown incomplete"))
            parts.append("\(outcome.steps.count) steps")
            return (outcome.succeeded ? "OK: " : "FAILED: ") + parts.joined(separator: "; ")
        }
        parts.append(outcome.reachedRun ? "TDI reached RUN" : "TDI did not reach RUN")
        parts.append(outcome.evidenceVerified ? "evidence verified"
                     : (outcome.guestRan ? "evidence not verified" : "evidence not checked (the guest did not start)"))
        if let refusal = outcome.refusal { parts.append("guest did not accept the device (\(refusal))") }
        if let failure = outcome.failure { parts.append("reason: \(failure)") }
        parts.append(keep ? "kept assigned, TDI \(outcome.finalState ?? "none")"
                          : (outcome.tornDown ? "torn down, TDI \(outcome.finalState ?? "destroyed")" : "teardown incomplete"))
        if !outcome.faults.isEmpty {
            let rules = outcome.faults.map { rule in
                outcome.unmatchedFaults.contains(rule)
                    ? "\(rule) (never matched in this run: no effect)" : rule
            }
            parts.append("injected: " + rules.joined(separator: ", "))
        }
        parts.append("\(outcome.steps.count) steps")
        return (outcome.succeeded ? "OK: " : "FAILED: ") + parts.joined(separator: "; ")
    }

    /// Mermaid: one participant per layer; each step is an arrow out along its path and a reply back.
    static func mermaid(_ outcome: AssignOutcome) -> String {
        let names = ["guest": "Guest (TVM)", "vmm": "VMM", "host-admin": "Host admin", "kernel": "Kernel",
                     "tsm": "TSM (\(outcome.arch.uppercased()))", "device": "Device (DSM)"]
        var lines = ["sequenceDiagram"]
        for key in ["guest", "vmm", "host-admin", "kernel", "tsm", "device"] {
            lines.append("    participant \(key.replacingOccurrences(of: "-", with: "_")) as \(names[key] ?? key)")
        }
        func id(_ layer: String) -> String { layer.replacingOccurrences(of: "-", with: "_") }
        func clean(_ text: String) -> String {
            String(text.map { ";#:\n".contains($0) ? " " : $0 }.prefix(80))
        }
        for step in outcome.steps {
            var path = step.path
            if path.first != step.actor && step.actor != "guest" { path.insert(step.actor, at: 0) }
            if path.count < 2 {
                lines.append("    Note over \(id(step.actor)): \(step.index). \(clean(step.step)) \(clean(step.result))")
                continue
            }
            for (from, to) in zip(path, path.dropFirst()) {
                let label = from == path[0] ? "\(step.index). \(clean(step.step))" : clean(step.step)
                lines.append("    \(id(from))->>\(id(to)): \(label)")
            }
            let back = "\(step.status == "ok" ? "" : step.status.uppercased() + " ")\(clean(step.result))" + (step.tdiState.map { " [\($0)]" } ?? "")
            lines.append("    \(id(path[path.count - 1]))-->>\(id(path[0])): \(back)")
        }
        lines.append("    Note over guest,device: \(outcome.succeeded ? "RUN, evidence verified" : "not accepted")")
        return lines.joined(separator: "\n") + "\n"
    }

    static func jsonLine(_ line: AssignTraceLine) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(line)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
