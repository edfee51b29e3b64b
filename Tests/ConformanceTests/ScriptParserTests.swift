import KernelScript
import Testing

/// The step language's reader: malformed lines are named by line, values resolve as documented
/// in docs/script-format.md.
@Suite struct ScriptParserTests {
    static func parse(_ text: String) throws(ScriptSyntaxError) -> [ScriptStep] {
        try ScriptParser.parse(text, isErrnoName: { ScriptErrnoNames.errno(named: $0) != nil })
    }

    static func error(_ text: String) -> ScriptSyntaxError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func skipsBlankAndCommentLinesAndKeepsLineNumbers() throws {
        let steps = try Self.parse("\n# a comment\n// another\n{\"op\":\"open_iommufd\",\"save\":\"fd\"}\n\n  {\"op\":\"create_vm\"}  \n")
        #expect(steps.map(\.line) == [4, 6])
        #expect(steps.map(\.opName) == ["open_iommufd", "create_vm"])
    }

    @Test(arguments: [
        ("{\"op\":\"open_iommufd\"}\n{\"op\":", 2, "not valid JSON"),
        ("[1,2]", 1, "must be a JSON object"),
        ("{\"save\":\"x\"}", 1, "missing \"op\""),
        ("{\"op\":\"frobnicate\"}", 1, "unknown op \"frobnicate\""),
        ("\n\n{\"op\":\"ioctl\",\"cmd\":\"IOMMU_DESTROY\",\"fileds\":{}}", 3, "has no key \"fileds\""),
        ("{\"op\":\"ioctl\",\"cmd\":\"IOMMU_DESTROY\",\"expect\":\"ENOSUCH\"}", 1, "unknown errno name"),
        ("{\"op\":\"ioctl\",\"cmd\":\"IOMMU_DESTROY\",\"expect\":1.5}", 1, "only integers"),
        ("{\"op\":\"ioctl\",\"cmd\":\"IOMMU_DESTROY\",\"fields\":{\"id\":\"$\"}}", 1, "a name must follow"),
        ("{\"op\":\"ioctl\",\"cmd\":\"IOMMU_DESTROY\",\"fields\":{\"id\":\"12q\"}}", 1, "is not a number"),
        ("{\"op\":\"ioctl\",\"cmd\":\"IOMMU_DESTROY\",\"raw\":\"0g\"}", 1, "not hexadecimal"),
        ("{\"op\":\"ioctl\",\"cmd\":\"IOMMU_DESTROY\",\"raw\":\"08\",\"size\":8}", 1, "\"raw\" is the whole argument"),
        ("{\"op\":\"ioctl\",\"fields\":{\"id\":1}}", 1, "needs \"cmd\" or \"request\""),
        ("{\"op\":\"buffer\",\"name\":\"b\"}", 1, "needs \"size\" or \"hex\""),
        ("{\"op\":\"buffer\",\"name\":\"b\",\"size\":1,\"hex\":\"0102\"}", 1, "smaller than"),
        ("{\"op\":\"buffer\",\"name\":\"b\",\"size\":99999999}", 1, "a buffer's size"),
        ("{\"op\":\"platform\",\"tsm\":\"weird\"}", 1, "\"tsm\" must be"),
        ("{\"op\":\"open_iommufd\",\"op\":\"close\"}", 1, "repeated key"),
        ("{\"op\":\"sample_tsm\",\"mode\":\"scripted\"}", 1, "\"mode\" must be"),
        ("{\"op\":\"vfio_open\"}", 1, "missing \"device\""),
    ])
    func malformedLineIsNamed(_ text: String, line: Int, reason: String) {
        let error = Self.error(text)
        #expect(error?.line == line)
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func ioctlStepIsTyped() throws {
        let steps = try Self.parse(#"{"op":"ioctl","cmd":"IOMMU_VDEVICE_TSM_REQ","fields":{"vdevice_id":"$vdev","op":3,"resp_uptr":"$resp+16","tsm_code":"0xffffffffffffffff"},"size":56,"tail":"01","save":{"code":"tsm_code"},"expect":48,"expect_fields":{"tsm_code":-1},"expect_buffer":{"resp+4":"aa"}}"#)
        let step = try #require(steps.first)
        guard case let .ioctl(spec) = step.action else {
            Issue.record("not an ioctl step")
            return
        }
        #expect(spec.command == "IOMMU_VDEVICE_TSM_REQ")
        #expect(spec.fields.map(\.name) == ["vdevice_id", "op", "resp_uptr", "tsm_code"])
        #expect(spec.fields[0].value == .reference(name: "vdev", offset: 0))
        #expect(spec.fields[2].value == .reference(name: "resp", offset: 16))
        #expect(spec.fields[3].value == .number(UInt64.max))
        #expect(spec.size == .number(56))
        #expect(spec.tail == [0x01])
        #expect(spec.save.map(\.name) == ["code"])
        #expect(spec.expectFields.first?.value == .literal(magnitude: 1, negative: true))
        #expect(spec.expectBuffer == [BufferExpectation(buffer: "resp", offset: 4, bytes: [0xAA])])
        #expect(step.expect == .value(48))
    }

    @Test func expectationForms() throws {
        let steps = try Self.parse("""
            {"op":"close","fd":3,"expect":"EBADF"}
            {"op":"close","fd":3,"expect":0}
            {"op":"close","fd":3,"expect":"0x30"}
            {"op":"close","fd":3}
            """)
        #expect(steps.map(\.expect) == [.errno("EBADF"), .value(0), .value(48), nil])
    }

    @Test func valueResolution() throws {
        var environment = ScriptEnvironment()
        environment.saveBuffer("resp", .init(address: 0x7F00_0000_1000, size: 64))
        environment.save("vdev", 5)
        #expect(try environment.resolve(.reference(name: "resp", offset: 16)) == 0x7F00_0000_1010)
        #expect(try environment.resolve(.reference(name: "resp", offset: -16)) == 0x7F00_0000_0FF0)
        #expect(try environment.resolve(.reference(name: "vdev", offset: 0)) == 5)
        #expect(try environment.resolve(.literal(magnitude: 1, negative: true)) == UInt64.max)
        #expect(try environment.resolve(.literal(magnitude: 1, negative: true), width: 4, field: "x") == 0xFFFF_FFFF)
        #expect(try environment.resolve(.number(0xFFFF_FFFF), width: 4, field: "x") == 0xFFFF_FFFF)
        #expect(throws: ScriptValueError.self) { try environment.resolve(.number(0x1_0000_0000), width: 4, field: "x") }
        #expect(throws: ScriptValueError.self) { try environment.resolve(.reference(name: "nothing", offset: 0)) }
        environment.save("resp", 9)  // one namespace: a saved value replaces the buffer
        #expect(environment.buffers["resp"] == nil)
        #expect(try environment.resolve(.reference(name: "resp", offset: 0)) == 9)
    }

    @Test func jsonReaderKeepsOrderAndExactNumbers() throws {
        let value = try JSONValue.parse(#"{"b":18446744073709551615,"a":"\u00e9\n","c":[true,null,-0]}"#)
        #expect(value.serialized == #"{"b":18446744073709551615,"a":"é\n","c":[true,null,-0]}"#)
        #expect(throws: JSONSyntaxError(column: 5, reason: "unexpected text after the JSON value")) {
            try JSONValue.parse("{}  x")
        }
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(String(repeating: "[", count: 40)) }
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse("\"\\ud800\"") }
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse("01") }
    }
}
