import Kernel
import Sync
import TDISP
import Testing
import UAPI

/// The TDISP message hook of the arch drivers' ``DSMPort`` (`tsmctl assign --trace`): every
/// request and response that crosses the port, in order, with the DSM's address and the TDI the
/// INTERFACE_ID names; nothing once the observer is removed, while the count goes on.
@Suite("DSMPort observer")
struct DSMPortTests {
    final class Events: Sendable {
        private let lock = Locked<[TDISPMessageEvent]>([])
        func append(_ event: TDISPMessageEvent) { lock.withLock { $0.append(event) } }
        var all: [TDISPMessageEvent] { lock.withLock { $0 } }
    }

    /// FUNCTION_ID of a domain-0 function: its routing ID (tdisp-spdm.md §2.1), e1:00.0 = 0xE100,
    /// e1:04.0 = 0xE120.
    @Test("connect, bind and unbind: each request then its response, with DSM address and INTERFACE_ID",
          arguments: TVMArch.allCases)
    func observesInOrder(arch: TVMArch) throws {
        let fixture = try ArchFixture(arch, connect: false, bind: false)
        let port = try #require(fixture.platform.driver.port(at: ArchFixture.dsm))
        #expect(port.address == ArchFixture.dsm)
        let events = Events()
        port.observe { events.append($0) }
        let before = port.messages
        try fixture.kernel.pciTSM.connect(ArchFixture.dsm, "tsm0")
        #expect(fixture.tsmOp(1) == .value(0))  // BIND

        let seen = events.all
        #expect(seen.count == 2 * (port.messages - before))
        #expect(seen.allSatisfy { $0.dsm == ArchFixture.dsm })
        for (request, response) in stride(from: 0, to: seen.count - 1, by: 2).map({ (seen[$0], seen[$0 + 1]) }) {
            #expect(request.direction == .request)
            #expect(response.direction == .response)
            #expect(request.bytes[1] & 0x80 == 0x80)
            // A successful response's code is the request's with bit 7 clear (TDISP 1.0 §4.3).
            #expect(response.bytes[1] == request.bytes[1] & 0x7F)
            #expect(response.interfaceID == request.interfaceID)
        }
        // TDISP 1.0: GET_TDISP_VERSION 0x81 first, at the DSM's own INTERFACE_ID.
        #expect(seen.first?.messageType == .getTDISPVersion)
        #expect(seen.first?.interfaceID?.functionID.rawValue == 0xE100)
        let lock = try #require(seen.firstIndex { $0.messageType?.rawValue == 0x83 })
        #expect(seen[lock].interfaceID?.functionID.rawValue == 0xE120)
        #expect(seen[lock + 1].messageType?.rawValue == 0x03)

        port.observe(nil)
        let count = events.all.count
        let messages = port.messages
        #expect(fixture.tsmOp(2) == .value(0))  // UNBIND: STOP_INTERFACE reaches the DSM, unobserved
        #expect(port.messages > messages)
        #expect(events.all.count == count)
    }

    /// The observer is swapped while four threads exchange: every exchange is counted, and an
    /// exchange reports both its messages to the one observer it found (so requests and responses
    /// come in equal numbers). Run under the thread sanitizer, this shows no race.
    @Test("observe(_:) and exchange(_:) from several threads at once")
    func concurrent() async throws {
        let fixture = try ArchFixture(.sev, connect: false, bind: false)
        let port = try #require(fixture.platform.driver.port(at: ArchFixture.dsm))
        let request = GetTDISPVersion(interfaceID: InterfaceID(functionID: FunctionID(rawValue: 0xE100))).encoded()
        let before = port.messages
        let events = Events()
        let observer: DSMPort.Observer = { event in events.append(event) }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<100 { _ = try? port.exchange(request) }
                }
            }
            group.addTask {
                for round in 0..<100 { port.observe(round % 2 == 0 ? observer : nil) }
            }
        }
        #expect(port.messages - before == 400)
        let seen = events.all
        #expect(seen.filter { $0.direction == .request }.count == seen.filter { $0.direction == .response }.count)
        // TDISP_VERSION (0x01) answers GET_TDISP_VERSION (0x81).
        #expect(seen.allSatisfy { $0.messageType?.rawValue == ($0.direction == .request ? 0x81 : 0x01) })
    }

    @Test("a message shorter than the header has no INTERFACE_ID; never traps")
    func shortMessage() {
        let event = TDISPMessageEvent(direction: .request, bytes: [0x10], dsm: ArchFixture.dsm)
        #expect(event.interfaceID == nil)
        #expect(event.messageType == nil)
        #expect(TDISPMessageEvent.Direction.request.rawValue == "TSM→DSM")
        #expect(TDISPMessageEvent.Direction.response.rawValue == "DSM→TSM")
    }
}
