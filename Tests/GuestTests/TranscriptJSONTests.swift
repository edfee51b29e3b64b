import Foundation
import Guest
import SystemPackage
import TDISP
import Testing
import UAPI

@Suite("Guest transcript JSON")
struct TranscriptJSONTests {
    @Test("an event encodes with uAPI, errno and TDISP names and hex bytes")
    func encodesNames() throws {
        let event = GuestTranscriptEvent(index: 3, arch: .sev, step: "SET_TDI_STATE", path: [.guest, .vmm, .kernel, .tsm, .device],
                                         op: .setTDIState, sent: "state RUN (1)", request: [0x01], response: [],
                                         result: "EIO tsm_code 0x33", status: .failed, errno: .ioError, tsmCode: 0x33,
                                         tdiState: .configLocked)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try #require(String(data: try encoder.encode(event), encoding: .utf8))
        #expect(json == #"{"arch":"sev","errno":"EIO","index":3,"op":"TSM_REQ_SET_TDI_STATE","path":["guest","vmm","kernel","tsm","device"],"request":"01","response":"","result":"EIO tsm_code 0x33","sent":"state RUN (1)","status":"failed","step":"SET_TDI_STATE","tdiState":"CONFIG_LOCKED","tsmCode":51}"#)
    }

    @Test("a local step omits op, errno, tsm_code and state")
    func omitsAbsent() throws {
        let event = GuestTranscriptEvent(index: 1, arch: .cca, step: "verify certificate chain", path: [.guest], sent: "1700 B",
                                         result: "3 certificates", status: .ok)
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(event)) as? [String: Any])
        #expect(Set(object.keys) == ["index", "arch", "step", "path", "sent", "request", "response", "result", "status"])
    }
}
