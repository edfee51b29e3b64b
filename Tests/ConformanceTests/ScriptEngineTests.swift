import KernelScript
import Testing

/// The engine's verdicts on a real simulated kernel: what is a mismatch, what is an error, and
/// that a step that cannot run stops the script.
@Suite struct ScriptEngineTests {
    static func run(_ text: String) throws -> [ScriptStepResult] {
        try ScriptEngine.run(text, host: SimulatedKernelHost())
    }

    @Test func errnoAgainstValueIsAMismatchWithBothNamed() throws {
        let results = try Self.run("""
            {"op":"open_iommufd"}
            {"op":"ioctl","cmd":"IOMMU_DESTROY","fields":{"id":7},"expect":0}
            {"op":"ioctl","cmd":"IOMMU_IOAS_ALLOC","expect":"EINVAL"}
            {"op":"ioctl","cmd":"IOMMU_DESTROY","fields":{"id":7}}
            """)
        #expect(results.map(\.verdict) == [.ok, .mismatch, .mismatch, .mismatch])
        #expect(results[1].details == ["expected 0, got ENOENT"])
        #expect(results[2].details == ["expected EINVAL, got 0"])
        #expect(results[3].details == ["expected success, got ENOENT"])
        #expect(results[1].errno == "ENOENT" && results[1].rc == -1)
    }

    @Test func outputChecksReportEachDifference() throws {
        let results = try Self.run("""
            {"op":"open_iommufd"}
            {"op":"buffer","name":"b","hex":"0102"}
            {"op":"ioctl","cmd":"IOMMU_IOAS_ALLOC","expect_fields":{"out_ioas_id":2},"expect_buffer":{"b":"0103"}}
            """)
        #expect(results[2].verdict == .mismatch)
        #expect(results[2].details == ["out_ioas_id: expected 2, got 1", "b: expected 0103, got 0102"])
        #expect(results[2].fields.map(\.name) == ["out_ioas_id"])
    }

    @Test(arguments: [
        (#"{"op":"ioctl","cmd":"IOMMU_DESTROY","fields":{"id":"$nothing"}}"#, "$nothing is not defined"),
        (#"{"op":"ioctl","cmd":"IOMMU_IOAS_NOIOMMU_GET_PA"}"#, "profile revised has no command IOMMU_IOAS_NOIOMMU_GET_PA"),
        (#"{"op":"ioctl","cmd":"IOMMU_DESTROY","fields":{"idd":1}}"#, "iommu_destroy has no field idd"),
        (#"{"op":"ioctl","cmd":"IOMMU_DESTROY","fields":{"id":"0x100000000"}}"#, "does not fit the 4-byte field id"),
        (#"{"op":"ioctl","cmd":"IOMMU_IOAS_MAP","fields":{"flags":1}}"#, "has no modelled struct"),
        (#"{"op":"platform","profile":"v6"}"#, "v6"),
        (#"{"op":"platform","devices":["dumps/none.lspci"]}"#, "dumps/none.lspci"),
        (#"{"op":"check_buffer","buffers":{"nothing":"00"}}"#, "no buffer named nothing"),
    ])
    func stepThatCannotRunStopsTheScript(_ line: String, reason: String) throws {
        let prefix = line.contains("\"platform\"") ? "{\"op\":\"comment\"}\n" : "{\"op\":\"open_iommufd\"}\n"
        let results = try Self.run(prefix + line + "\n{\"op\":\"open_iommufd\"}")
        #expect(results.count == 2, "the run must stop at the failing step")
        let last = try #require(results.last)
        #expect(last.verdict == .error)
        #expect(last.details.first?.contains(reason) == true, "\(last.details)")
    }

    @Test func saveHappensOnlyOnSuccess() throws {
        let results = try Self.run("""
            {"op":"open_iommufd"}
            {"op":"ioctl","cmd":"IOMMU_IOAS_ALLOC","fields":{"flags":1},"save":"ioas","expect":"EOPNOTSUPP"}
            {"op":"ioctl","cmd":"IOMMU_DESTROY","fields":{"id":"$ioas"}}
            """)
        #expect(results.map(\.verdict) == [.ok, .ok, .error])
        #expect(results[1].saved.isEmpty)
    }

    @Test func platformMustComeFirst() throws {
        let results = try Self.run("""
            {"op":"open_iommufd"}
            {"op":"platform","profile":"v5"}
            """)
        #expect(results.last?.verdict == .error)
        #expect(results.last?.details.first?.contains("must come before") == true)
    }
}
