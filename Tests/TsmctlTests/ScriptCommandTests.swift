import Foundation
import Testing

/// `tsmctl script` as a user runs it: the built executable, its standard output and exit status.
@Suite struct ScriptCommandTests {
    /// The package root, found from this source file's path.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs `tsmctl script <arguments>` with `input` on standard input, through the shared ``CLIRunner``.
    static func run(_ arguments: [String], input: String = "") throws -> (status: Int32, stdout: String, stderr: String) {
        let result = try CLIRunner.run(["script"] + arguments, stdin: input)
        return (result.status, result.stdout, result.stderr)
    }

    @Test func appendixBExampleIsOkEveryStep() throws {
        let path = Self.root.appendingPathComponent("Examples/scripts/appendix-b.jsonl").path
        let source = try String(contentsOfFile: path, encoding: .utf8)
        let stepCount = source.split(separator: "\n").filter { !$0.isEmpty }.count
        let result = try Self.run([path])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == stepCount)
        for line in lines {
            #expect(line.hasSuffix("\"result\":\"ok\"}"), "\(line)")
        }
        // The guest request's line carries the residue of spec 4.4 and the tsm_code written back.
        #expect(lines.contains { $0.contains("\"cmd\":\"IOMMU_VDEVICE_TSM_REQ\",\"rc\":56,\"errno\":null,\"fields\":{\"tsm_code\":42}") })
    }

    @Test func mismatchExitsNonZeroAndSaysWhy() throws {
        let script = """
            {"op":"open_iommufd"}
            {"op":"ioctl","cmd":"IOMMU_DESTROY","fields":{"id":1},"expect":0}
            {"op":"ioctl","cmd":"IOMMU_DESTROY","fields":{"id":1},"expect":"ENOENT"}
            """
        let result = try Self.run(["-"], input: script)
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.count == 3 && lines[1] == #"{"line":2,"op":"ioctl","cmd":"IOMMU_DESTROY","rc":-1,"errno":"ENOENT","result":"mismatch","expected":"0","detail":["expected 0, got ENOENT"]}"#)
        #expect(lines.count == 3 && lines[2].hasSuffix("\"result\":\"ok\"}"))
    }

    @Test func malformedLineIsNamedAndNothingRuns() throws {
        let script = """
            {"op":"open_iommufd"}

            {"op":"ioctl","cmd":"IOMMU_DESTROY","fileds":{"id":1}}
            """
        let result = try Self.run(["-"], input: script)
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("line 3:"))
        #expect(result.stderr.contains("\"fileds\""))
    }

    @Test func missingFileFails() throws {
        let result = try Self.run(["/nonexistent/script.jsonl"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("cannot read /nonexistent/script.jsonl"))
    }
}
