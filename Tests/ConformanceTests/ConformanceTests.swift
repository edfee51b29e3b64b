import Foundation
import KernelScript
import Testing

/// The conformance suite: every `Tests/Conformance/*.jsonl` script, run by the same engine as
/// `tsmctl script` against a fresh simulated kernel. A case passes when every step is `ok`.
@Suite struct ConformanceTests {
    /// The folder holding the case files, found from this source file's path.
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Conformance")

    /// Every case file name, sorted.
    static let caseNames: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".jsonl") }.sorted()
    }()

    static func text(of name: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
    }

    static func steps(of name: String) throws -> [ScriptStep] {
        try ScriptParser.parse(try text(of: name), isErrnoName: { ScriptErrnoNames.errno(named: $0) != nil })
    }

    @Test("conformance case", arguments: caseNames)
    func runCase(_ name: String) throws {
        let text = try Self.text(of: name)
        let results = try ScriptEngine.run(text, host: SimulatedKernelHost(), baseDirectory: Self.folder.path)
        let steps = try Self.steps(of: name)
        #expect(results.count == steps.count, "\(name): the run stopped at line \(results.last?.line ?? 0)")
        for result in results where result.verdict != .ok {
            Issue.record("\(name): \(result.jsonLine)")
        }
    }

    @Test func atLeastSixtyCases() {
        #expect(Self.caseNames.count >= 60)
    }

    /// Each case opens with a comment step whose `why` cites the spec section it checks.
    @Test("case cites the spec", arguments: caseNames)
    func citesTheSpec(_ name: String) throws {
        let first = try #require(try Self.steps(of: name).first)
        guard case .comment = first.action else {
            Issue.record("\(name): the first step is \(first.opName), not a comment")
            return
        }
        #expect(first.label?.isEmpty == false)
        #expect(first.why?.hasPrefix("spec ") == true, "\(name): why = \(first.why ?? "nil")")
    }

    /// Every errno of sections 2.2, 3, 4.2, 4.3, 6.5 and 6.6 is expected by at least one case.
    @Test func errnoCoverage() throws {
        var expected = Set<String>()
        for name in Self.caseNames {
            for step in try Self.steps(of: name) {
                if case let .errno(errno)? = step.expect { expected.insert(errno) }
            }
        }
        for errno in ["ENOTTY", "EFAULT", "EINVAL", "E2BIG", "EOPNOTSUPP", "ENOENT", "ENODEV", "ENXIO", "EBUSY", "EEXIST"] {
            #expect(expected.contains(errno), "no case expects \(errno)")
        }
    }

    /// Each profile is exercised by at least one case.
    @Test func everyProfileIsUsed() throws {
        var profiles = Set<String>()
        for name in Self.caseNames {
            for step in try Self.steps(of: name) {
                if case let .platform(platform) = step.action { profiles.insert(platform.profile ?? "revised") }
            }
        }
        #expect(profiles == ["revised", "v5", "rev-k"])
    }
}
