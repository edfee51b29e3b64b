import Foundation
import Testing

/// `tsmctl bench assign` through the built executable (issue 6 deliverable 7; docs/assign.md
/// "Scale benchmark"): small runs through the same code as the 4096-TDI run. No timing is
/// asserted; the counts, the per-DSM split and the exit statuses are.
@Suite("tsmctl bench assign")
struct BenchAssignTests {
    static let sriov = AssignCommandTests.sriov

    static func bench(_ arguments: [String]) throws -> CLIResult {
        try CLIRunner.run(["bench", "assign", "--device", sriov] + arguments)
    }

    static func reports(_ result: CLIResult) throws -> [[String: Any]] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
    }

    /// 16 TDIs, 8 VFs per DSM: two synthetic DSMs. The template's First VF Offset is 32 and its
    /// stride 1, so 8 VFs stay on the PF's bus: DSM 0 at bus 1, DSM 1 at bus 2.
    @Test("16 TDIs on 2 DSMs: every TDI in RUN with verified evidence, 8 per DSM")
    func sixteen() throws {
        let result = try Self.bench(["--tdis", "16", "--vfs-per-dsm", "8", "--json"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let reports = try Self.reports(result)
        #expect(reports.count == 1)
        let report = try #require(reports.first)
        #expect(report["arch"] as? String == "cca")
        #expect(report["tdis"] as? Int == 16)
        #expect(report["dsms"] as? Int == 2)
        #expect(report["reachedRun"] as? Int == 16)
        #expect(report["verified"] as? Int == 16)
        #expect(report["deviceAndFirmwareRun"] as? Int == 16)
        #expect(report["succeeded"] as? Bool == true)
        #expect((report["peakRSSBytes"] as? Int ?? 0) > 0)
        let perDSM = try #require(report["perDSM"] as? [[String: Any]])
        #expect(perDSM.map { $0["dsm"] as? String } == ["0000:01:00.0", "0000:02:00.0"])
        #expect(perDSM.map { $0["tdis"] as? Int } == [8, 8])
        #expect(perDSM.map { $0["reachedRun"] as? Int } == [8, 8])
        #expect(perDSM.map { $0["verified"] as? Int } == [8, 8])
        let phases = try #require(report["phases"] as? [String: Any])
        #expect(Set(phases.keys) == ["platformBuild", "identity", "bind", "guestVerify", "run"])
    }

    /// The last DSM gets the remainder.
    @Test("uneven split: 10 TDIs with 4 per DSM are 4, 4, 2")
    func remainder() throws {
        let result = try Self.bench(["--tdis", "10", "--vfs-per-dsm", "4", "--json", "--jobs", "1"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let report = try #require(try Self.reports(result).first)
        let perDSM = try #require(report["perDSM"] as? [[String: Any]])
        #expect(perDSM.map { $0["tdis"] as? Int } == [4, 4, 2])
        #expect(report["jobs"] as? Int == 1)
        #expect(report["succeeded"] as? Bool == true)
    }

    /// With 255 VFs the routing IDs run past the PF's bus (0x0100 + 32 + 254 = 0x021E, PCIe
    /// §9.3.3.10-11), so the next DSM starts two buses on, at bus 3.
    @Test("256 TDIs, 255 per DSM: the first DSM spans two buses, the second starts at bus 3")
    func twoBuses() throws {
        let result = try Self.bench(["--tdis", "256", "--json"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let report = try #require(try Self.reports(result).first)
        let perDSM = try #require(report["perDSM"] as? [[String: Any]])
        #expect(perDSM.map { $0["dsm"] as? String } == ["0000:01:00.0", "0000:03:00.0"])
        #expect(perDSM.map { $0["tdis"] as? Int } == [255, 1])
        #expect(report["reachedRun"] as? Int == 256 && report["verified"] as? Int == 256)
    }

    @Test("--arch all: each architecture in turn, each to RUN")
    func all() throws {
        let result = try Self.bench(["--arch", "all", "--tdis", "4", "--vfs-per-dsm", "2", "--json"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let reports = try Self.reports(result)
        #expect(reports.map { $0["arch"] as? String } == ["cca", "sev", "tdx"])
        #expect(reports.allSatisfy { $0["reachedRun"] as? Int == 4 && $0["verified"] as? Int == 4 && $0["succeeded"] as? Bool == true })
    }

    @Test("the text form names the figures")
    func text() throws {
        let result = try Self.bench(["--arch", "tdx", "--tdis", "3"])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("3 TDIs on 1 DSMs (255 VFs per DSM)"))
        #expect(result.stdout.contains("TDIs/s:"))
        #expect(result.stdout.contains("peak RSS:"))
        #expect(result.stdout.contains("platform build"))
        #expect(result.stdout.contains("reached RUN:     3/3 (guest), 3/3 (DSM and firmware); evidence verified 3/3"))
        #expect(result.stdout.contains("OK: every TDI reached RUN with verified evidence"))
    }

    @Test("bad options: one line on stderr, exit status 2", arguments: [
        (["--tdis", "0"], "tsmctl bench assign: --tdis 0: the number of TDIs must be 1...65536\n"),
        (["--arch", "arm"], "tsmctl bench assign: --arch arm: unknown architecture (valid: cca, sev, tdx, all)\n"),
        (["--vfs-per-dsm", "256"], "tsmctl bench assign: --vfs-per-dsm 256: an SR-IOV PF here has 1...255 VFs\n"),
        (["--jobs", "0"], "tsmctl bench assign: --jobs 0: must be 1...256\n"),
        (["--profile", "v5"], "tsmctl bench assign: --profile v5 has no op-based TSM_REQ (scope API only): use revised or rev-k\n"),
    ])
    func badOptions(arguments: [String], message: String) throws {
        let result = try Self.bench(arguments)
        #expect(result.status == 2)
        #expect(result.stderr == message)
        #expect(result.stdout.isEmpty)
    }

    @Test("a template without a DSM-capable SR-IOV PF is bad input")
    func badTemplate() throws {
        let result = try CLIRunner.run(["bench", "assign", "--device", AssignCommandTests.doeTwoMailboxes, "--tdis", "2"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("tsmctl bench assign: --device \(AssignCommandTests.doeTwoMailboxes): holds no DSM-capable physical function"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}
