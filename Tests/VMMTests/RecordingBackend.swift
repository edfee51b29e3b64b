import Synchronization
import SystemPackage
import UAPI
@testable import VMM

/// A test double (not a kernel model): records every ioctl's request code and argument bytes and
/// answers with a scripted closure, so the tests can assert the exact bytes the typed layer issues.
/// Its user memory is a dictionary of buffers; an access outside them is EFAULT.
final class RecordingBackend: IOMMUFDBackend {
    struct Call: Sendable {
        var fd: Int32
        var request: UInt32
        var argument: [UInt8]
    }

    /// Answers an ioctl: may change the argument and user memory; returns the ioctl value or throws.
    typealias Answer = @Sendable (_ backend: RecordingBackend, _ request: UInt32, _ argument: inout [UInt8]) throws(Errno) -> Int32

    private struct State {
        var calls: [Call] = []
        var buffers: [UInt64: [UInt8]] = [:]
        var nextAddress: UInt64 = 0x7F00_0000_0000
        var nextFD: Int32 = 3
        var open: Set<Int32> = []
        var answer: Answer
        var failMapping: Errno? = nil
    }

    private let state: Mutex<State>
    let environment: String

    init(environment: String = "the recording backend", answer: @escaping Answer = { _, _, _ in 0 }) {
        self.environment = environment
        state = Mutex(State(answer: answer))
    }

    var calls: [Call] { state.withLock { $0.calls } }
    var mappedBufferCount: Int { state.withLock { $0.buffers.count } }
    var openFiles: Set<Int32> { state.withLock { $0.open } }

    func setAnswer(_ answer: @escaping Answer) { state.withLock { $0.answer = answer } }

    /// Makes every later ``mapUserBuffer(count:)`` fail with `errno`.
    func failMapping(with errno: Errno) { state.withLock { $0.failMapping = errno } }

    func admit(_ profile: UAPIProfile) throws(VMMError) {}

    func open(_ path: String) throws(Errno) -> Int32 {
        state.withLock { state in
            let fd = state.nextFD
            state.nextFD += 1
            state.open.insert(fd)
            return fd
        }
    }

    func close(_ fd: Int32) throws(Errno) {
        try state.withLock { state throws(Errno) in
            guard state.open.remove(fd) != nil else { throw .badFileDescriptor }
        }
    }

    func ioctl(_ fd: Int32, request: UInt32, argument: inout [UInt8]) throws(Errno) -> Int32 {
        let answer = state.withLock { state in
            state.calls.append(Call(fd: fd, request: request, argument: argument))
            return state.answer
        }
        return try answer(self, request, &argument)
    }

    func mapUserBuffer(count: Int) throws(Errno) -> UInt64 {
        guard count >= 1 else { throw .invalidArgument }
        return try state.withLock { state throws(Errno) -> UInt64 in
            if let errno = state.failMapping { throw errno }
            let address = state.nextAddress
            state.nextAddress += (UInt64(count) / 4096 + 2) * 4096
            state.buffers[address] = [UInt8](repeating: 0, count: count)
            return address
        }
    }

    func writeUserBuffer(at address: UInt64, _ bytes: [UInt8]) throws(Errno) {
        try state.withLock { state throws(Errno) in
            let (base, offset) = try Self.locate(address, bytes.count, state.buffers)
            state.buffers[base]?.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        }
    }

    func readUserBuffer(at address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        guard count >= 0 else { throw .invalidArgument }
        return try state.withLock { state throws(Errno) -> [UInt8] in
            let (base, offset) = try Self.locate(address, count, state.buffers)
            return Array(state.buffers[base, default: []][offset..<offset + count])
        }
    }

    func unmapUserBuffer(at address: UInt64) throws(Errno) {
        try state.withLock { state throws(Errno) in
            guard state.buffers.removeValue(forKey: address) != nil else { throw .invalidArgument }
        }
    }

    private static func locate(_ address: UInt64, _ count: Int, _ buffers: [UInt64: [UInt8]]) throws(Errno) -> (UInt64, Int) {
        for (base, bytes) in buffers where address >= base {
            let offset = address - base
            if offset <= UInt64(bytes.count), UInt64(count) <= UInt64(bytes.count) - offset { return (base, Int(offset)) }
        }
        throw .badAddress
    }
}
