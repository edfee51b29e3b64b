import Foundation
import Testing

/// `tsmctl dsm` as a user runs it: the built executable, its standard output and exit status.
@Suite struct DSMCommandTests {
    /// The package root, found from this source file's path.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `tsmctl dsm <arguments>` with `input` on standard input, through the shared ``CLIRunner``.
    static func run(_ arguments: [String], input: String = "") throws -> (status: Int32, stdout: String, stderr: String) {
        let result = try CLIRunner.run(["dsm"] + arguments, stdin: input)
        return (result.status, result.stdout, result.stderr)
    }

    static func field(_ line: Substring, _ name: String) -> String? {
        guard let range = line.range(of: "\"\(name)\":\"") else { return nil }
        let rest = line[range.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    @Test func exampleWalkReachesRunAndBack() throws {
        let path = Self.root.appendingPathComponent("Examples/dsm/walk.txt").path
        let result = try Self.run(["builtin", path, "--seed", "1"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 11)
        let states = lines.compactMap { Self.field($0, "state") }
        #expect(states == ["CONFIG_UNLOCKED", "CONFIG_LOCKED", "RUN", "CONFIG_UNLOCKED"])
        #expect(!result.stdout.contains("TDISP_ERROR"))
        // The report arrives in two portions (0x20 then 0x14) and is decoded once complete: the
        // PF's BAR 0 (64 MiB at 0x20014000000) moved by MMIO_REPORTING_OFFSET 0x100000000.
        let portions = lines.filter { $0.contains("\"type\":\"DEVICE_INTERFACE_REPORT\"") }
        #expect(portions.count == 2)
        #expect(portions.first?.contains("\"portionLength\":32,\"remainderLength\":20") == true)
        #expect(portions.last?.contains("\"portionLength\":20,\"remainderLength\":0") == true)
        #expect(portions.last?.contains("{\"firstPage\":\"0x20114000\",\"numberOfPages\":16384,\"attributes\":[],\"rangeId\":0}") == true)
        // START carried the LOCK nonce.
        let lockNonce = try #require(lines.first { $0.contains("\"type\":\"LOCK_INTERFACE_RESPONSE\"") }.flatMap { Self.field($0, "nonce") })
        #expect(lines.contains { $0.contains("\"type\":\"START_INTERFACE_REQUEST\"") && $0.contains(lockNonce) })
    }

    @Test func spdmEmuProfileServesTheGoldenPortions() throws {
        let path = Self.root.appendingPathComponent("Examples/dsm/spdm-emu-walk.txt").path
        let result = try Self.run(["builtin", path, "--profile", "spdm-emu", "--seed", "1"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let portions = result.stdout.split(separator: "\n").filter { $0.contains("\"type\":\"DEVICE_INTERFACE_REPORT\"") }
        #expect(portions.map { Self.field($0, "portion") } == [
            "03000000000000000000000004000000" + "00000000000000000100000004000100"
                + "00800000000000000400000008000200" + "00000100000000000800000008000300",
            "00000200000000000800000008000400" + "1000000074646973705f6465765f656d" + "75000000",
        ])
        // The first response, byte for byte as in spec 3.1.
        #expect(result.stdout.hasPrefix("{\"line\":4,\"request\":\"10810000efbe0000" + "0000000000000000\""))
        #expect(result.stdout.contains("\"response\":\"10010000efbe0000000000000000000001" + "10\""))
    }

    @Test func standardInputAndErrorResponses() throws {
        let input = """
            # a wrong version, an unknown code, then STOP for a function the device lacks
            11 87 0000 {function} 0000000000000000
            10 8c 0000 {function} 0000000000000000
            10 87 0000 00e20000 0000000000000000
            """
        let result = try Self.run(["builtin", "-", "--function", "e1:04.1"], input: input)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let codes = result.stdout.split(separator: "\n").compactMap { Self.field($0, "errorCode") }
        #expect(codes == ["VERSION_MISMATCH", "UNSUPPORTED_REQUEST", "INVALID_INTERFACE"])
        #expect(result.stdout.contains("\"request\":\"1187000021e10000"))  // {function} = e1:04.1 = 0xe121
    }

    @Test func realDumpWalksThePFAndAVF() throws {
        let dump = Self.root.appendingPathComponent("Examples/devices/tee-io-endpoint-sriov.lspci").path
        let walk = Self.root.appendingPathComponent("Examples/dsm/walk.txt").path
        let pf = try Self.run([dump, walk, "--seed", "2"])
        #expect(pf.status == 0, "stderr: \(pf.stderr)")
        #expect(pf.stdout.split(separator: "\n").compactMap { Self.field($0, "state") } == ["CONFIG_UNLOCKED", "CONFIG_LOCKED", "RUN", "CONFIG_UNLOCKED"])
        #expect(pf.stdout.contains("\"function\":\"e1:00.0\""))
        let vf = try Self.run([dump, walk, "--seed", "2", "--function", "e1:04.3"])
        #expect(vf.status == 0, "stderr: \(vf.stderr)")
        #expect(vf.stdout.contains("\"function\":\"e1:04.3\"") && !vf.stdout.contains("TDISP_ERROR"))
        let doe = Self.root.appendingPathComponent("Examples/devices/doe-two-mailboxes.lspci").path
        let none = try Self.run([doe, "-"])
        #expect(none.status == 2 && none.stderr.contains("no function can be a DSM"))
    }

    @Test func malformedInputIsRefusedNamingTheLine() throws {
        let early = try Self.run(["builtin", "-"], input: "# comment\n10 86 0000 {function} 0000000000000000 {nonce}\n")
        #expect(early.status == 2)
        #expect(early.stderr.contains("<stdin>:2: {nonce} before any LOCK_INTERFACE_RESPONSE"))
        let hex = try Self.run(["builtin", "-"], input: "10 81 zz\n")
        #expect(hex.status == 2)
        #expect(hex.stderr.contains("<stdin>:1: not hexadecimal at character 6"))
        let profile = try Self.run(["builtin", "-", "--profile", "nope"])
        #expect(profile.status == 2 && profile.stderr.contains("unknown profile 'nope'"))
        let function = try Self.run(["builtin", "-", "--function", "e1:1f.0"])
        #expect(function.status == 2 && function.stderr.contains("no such function"))
        let bdf = try Self.run(["builtin", "-", "--function", "e1-00"])
        #expect(bdf.status == 2 && bdf.stderr.contains("is not a BDF"))
    }
}
