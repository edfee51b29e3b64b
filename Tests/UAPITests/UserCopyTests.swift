import SystemPackage
import Testing
@testable import UAPI

/// The size-extensible copy-in and respond of spec 2.2, including the order of the checks.
@Suite struct UserCopyTests {
    static let base: UInt64 = 0x10000
    static let tsmReq: UInt32 = 0x3B96 // revised profile

    /// A user buffer at `base` holding a revised TSM_REQ with `size`, padded with `tail`.
    static func tsmReqMemory(size: UInt32, tail: [UInt8] = []) -> FlatUserMemory {
        var bytes = IOMMUVDeviceTSMReq(size: size, vdeviceID: 7, op: 4, tvmArch: 2, reqLen: 16, respLen: 64,
                                       reqUptr: 0x2000, respUptr: 0x3000, tsmCode: 0xDEAD).encode()
        bytes += tail
        return FlatUserMemory(base: base, bytes: bytes)
    }

    static func copyIn(_ memory: FlatUserMemory, request: UInt32 = tsmReq,
                       profile: UAPIProfile = .revised, argument: UInt64 = base) throws(Errno) -> CopiedArgument {
        try UserCopy.copyIn(request: request, argument: argument, profile: profile) { (address, count) throws(Errno) in
            try memory.read(address, count)
        }
    }

    @Test func sizeBelowMinimumIsEINVAL() {
        let memory = Self.tsmReqMemory(size: 40) // a v5-sized caller on the revised kernel (spec 8 item 1)
        #expect(throws: Errno.invalidArgument) { try Self.copyIn(memory) }
        #expect(throws: Errno.invalidArgument) { try Self.copyIn(Self.tsmReqMemory(size: 0)) }
        #expect(throws: Errno.invalidArgument) { try Self.copyIn(Self.tsmReqMemory(size: 47)) }
    }

    @Test func sizeEqualCopiesTheStruct() throws {
        let memory = Self.tsmReqMemory(size: 48)
        let copied = try Self.copyIn(memory)
        #expect(copied.command.id == .vdeviceTSMReq)
        #expect(copied.userSize == 48)
        #expect(copied.kernelCopy == memory.bytes)
        let request = try IOMMUVDeviceTSMReq(bytes: copied.kernelCopy ?? [])
        #expect(request.vdeviceID == 7)
        #expect(request.tvmArch == 2)
    }

    @Test func sizeAboveWithZeroTailCopiesKernelSize() throws {
        let memory = Self.tsmReqMemory(size: 8192, tail: [UInt8](repeating: 0, count: 8192 - 48))
        let copied = try Self.copyIn(memory)
        #expect(copied.kernelCopy?.count == 48)
        #expect(copied.kernelCopy.map { Array($0[4...]) } == Array(memory.bytes[4..<48]))
        #expect(copied.userSize == 8192)
    }

    @Test func sizeAboveWithNonZeroTailIsE2BIG() {
        var tail = [UInt8](repeating: 0, count: 100)
        tail[99] = 1
        #expect(throws: Errno.argListTooLong) { try Self.copyIn(Self.tsmReqMemory(size: 148, tail: tail)) }
        // The non-zero byte outside [ksize, size) does not count.
        #expect(throws: Never.self) { try Self.copyIn(Self.tsmReqMemory(size: 147, tail: tail)) }
    }

    @Test func sizeAboveWithUnreadableTailIsEFAULT() {
        // size claims 64 bytes, only 48 are mapped.
        #expect(throws: Errno.badAddress) { try Self.copyIn(Self.tsmReqMemory(size: 64)) }
        #expect(throws: Errno.badAddress) { try Self.copyIn(Self.tsmReqMemory(size: 0xFFFF_FFFF)) }
    }

    /// A smaller-than-kernel size (allowed where min < ksize) copies `size` bytes and zero-fills.
    @Test func sizeBelowKernelSizeZeroFills() throws {
        // IOMMU_HWPT_ALLOC: min 24, ksize 48. The user supplies 24 bytes; bytes 24..<48 of its
        // buffer are unmapped and must not be read.
        let full = IOMMUHWPTAlloc(size: 24, flags: 1, devID: 2, ptID: 3, dataType: 9, dataLen: 9,
                                  dataUptr: 9, faultID: 9).encode()
        let memory = FlatUserMemory(base: Self.base, bytes: Array(full[0..<24]))
        let copied = try Self.copyIn(memory, request: 0x3B89)
        let hwpt = try IOMMUHWPTAlloc(bytes: copied.kernelCopy ?? [])
        #expect(hwpt.size == 24)
        #expect(hwpt.ptID == 3)
        #expect(hwpt.dataType == 0)
        #expect(hwpt.dataUptr == 0)
        #expect(hwpt.faultID == 0)
    }

    // MARK: Order of the checks (spec 2.2, 0.1)

    @Test func outsideTableIsENOTTYWithoutReadingTheArgument() {
        let unmapped = FlatUserMemory(base: Self.base, bytes: [])
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try Self.copyIn(unmapped, request: 0x3B97) }
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try Self.copyIn(unmapped, request: 0x3B64) }
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try Self.copyIn(unmapped, request: 0x3B98, profile: .revK) }
    }

    @Test func badPointerBeatsWrongCodeInsideTable() {
        let unmapped = FlatUserMemory(base: Self.base, bytes: [])
        #expect(throws: Errno.badAddress) { try Self.copyIn(unmapped, request: 0x3B96) }
        // Same nr, different type byte: EFAULT first (size word), ENOTTY only with a good pointer.
        #expect(throws: Errno.badAddress) { try Self.copyIn(unmapped, request: 0x1296) }
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try Self.copyIn(Self.tsmReqMemory(size: 48), request: 0x1296) }
        // Direction/size bits set: also a mismatch.
        #expect(throws: Errno.inappropriateIOCTLForDevice) {
            try Self.copyIn(Self.tsmReqMemory(size: 48), request: IoctlCode.ioc(.readWrite, type: 0x3B, nr: 0x96, size: 48))
        }
    }

    @Test func wrongCodeBeatsSmallSize() {
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try Self.copyIn(Self.tsmReqMemory(size: 4), request: 0x1296) }
    }

    @Test func smallSizeBeatsUnreadableStruct() {
        // Only the size word is mapped: size 8 < 48 gives EINVAL before any further read.
        let memory = FlatUserMemory(base: Self.base, bytes: [8, 0, 0, 0])
        #expect(throws: Errno.invalidArgument) { try Self.copyIn(memory) }
    }

    @Test func nonZeroTailBeforeUnreadablePageIsE2BIG() {
        // The struct and 16 tail bytes end a page (all mapped); the next page is not mapped.
        let start = Self.base + UserCopy.pageSize - 64
        var bytes = IOMMUVDeviceTSMReq(size: 48 + 16 + 4096, vdeviceID: 1, op: 4, tvmArch: 1, reqLen: 0, respLen: 0,
                                       reqUptr: 0, respUptr: 0).encode()
        bytes += [UInt8](repeating: 0, count: 16)
        bytes[48 + 3] = 0xFF // dirty byte still in the struct's page
        let memory = FlatUserMemory(base: start, bytes: bytes)
        #expect(throws: Errno.argListTooLong) { try Self.copyIn(memory, argument: start) }
        // Clean first page, unmapped next page: EFAULT.
        bytes[48 + 3] = 0
        #expect(throws: Errno.badAddress) { try Self.copyIn(FlatUserMemory(base: start, bytes: bytes), argument: start) }
    }

    @Test func unmodelledCommandStopsAfterStep3() throws {
        // IOMMU_IOAS_MAP (0x85) is a real slot without a modelled layout.
        let copied = try Self.copyIn(FlatUserMemory(base: Self.base, bytes: [1, 0, 0, 0]), request: 0x3B85)
        #expect(copied.command.id == .ioasMap)
        #expect(copied.kernelCopy == nil)
        #expect(copied.userSize == 1)
    }

    @Test func stepFunctionsIndividually() throws {
        let memory = Self.tsmReqMemory(size: 48)
        let size = try UserCopy.readSizeWord(at: Self.base) { (address, count) throws(Errno) in try memory.read(address, count) }
        #expect(size == 48)
        #expect(throws: Errno.badAddress) {
            try UserCopy.readSizeWord(at: UInt64.max - 1) { (address, count) throws(Errno) in try memory.read(address, count) }
        }
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try UserCopy.checkRequest(0x3B96, slot: .emptySlot) }
        #expect(throws: Errno.inappropriateIOCTLForDevice) { try UserCopy.checkRequest(0x3B96, slot: .outsideTable) }
        #expect(try UserCopy.checkRequest(0x3B96, slot: .command(UAPIProfile.revised.tsmReq)).id == .vdeviceTSMReq)
        #expect(throws: Errno.invalidArgument) { try UserCopy.checkMinimumSize(39, minimum: 40) }
        #expect(throws: Never.self) { try UserCopy.checkMinimumSize(40, minimum: 40) }
        #expect(throws: Errno.invalidArgument) {
            try UserCopy.copyStructFromUser(at: Self.base, userSize: 4, kernelSize: -1) { (address, count) throws(Errno) in
                try memory.read(address, count)
            }
        }
    }

    /// A read closure that returns the wrong number of bytes is treated as a fault, not trusted.
    @Test func misbehavingReaderIsEFAULT() {
        #expect(throws: Errno.badAddress) {
            try UserCopy.copyIn(request: 0x3B96, argument: 0, profile: .revised) { (_, _) throws(Errno) in [48] }
        }
        #expect(throws: Errno.badAddress) {
            try UserCopy.copyIn(request: 0x3B96, argument: 0, profile: .revised) { (_, count) throws(Errno) in
                count == 4 ? [48, 0, 0, 0] : [0]
            }
        }
    }

    // MARK: Respond

    @Test func respondWritesMinOfSizes() throws {
        var user = FlatUserMemory(base: Self.base, bytes: [UInt8](repeating: 0xAA, count: 64))
        let kernel = IOMMUVDeviceTSMReq(size: 64, vdeviceID: 7, op: 4, tvmArch: 2, reqLen: 0, respLen: 0,
                                        reqUptr: 0, respUptr: 0, tsmCode: 0x1234).encode()
        try UserCopy.respond(kernel, userSize: 64, to: Self.base) { (address, bytes) throws(Errno) in
            try user.write(address, bytes)
        }
        #expect(Array(user.bytes[0..<48]) == kernel)
        #expect(Array(user.bytes[48...]) == [UInt8](repeating: 0xAA, count: 16), "trailing user bytes untouched")
        #expect(UserCopy.respondBytes(kernel, userSize: 40).count == 40)
        #expect(UserCopy.respondBytes(kernel, userSize: 0).isEmpty)
    }

    @Test func respondFaultIsEFAULTAndChangesNothing() {
        var user = FlatUserMemory(base: Self.base, bytes: [UInt8](repeating: 0xAA, count: 47))
        let kernel = [UInt8](repeating: 0, count: 48)
        #expect(throws: Errno.badAddress) {
            try UserCopy.respond(kernel, userSize: 48, to: Self.base) { (address, bytes) throws(Errno) in
                try user.write(address, bytes)
            }
        }
        #expect(user.bytes == [UInt8](repeating: 0xAA, count: 47))
    }
}

/// Copy-in never traps: empty, short, oversized and random inputs for every command of every profile.
@Suite struct UserCopyRobustnessTests {
    static let base: UInt64 = 0x10000

    struct Input: Sendable, CustomTestStringConvertible {
        let label: String
        let bytes: [UInt8]
        var testDescription: String { label }
    }

    static let inputs: [Input] = {
        var inputs: [Input] = [
            Input(label: "empty", bytes: []),
            Input(label: "1 byte", bytes: [0x30]),
            Input(label: "3 bytes", bytes: [0x30, 0, 0]),
            Input(label: "size word only", bytes: [0x30, 0, 0, 0]),
            Input(label: "size 0xFFFFFFFF, short", bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0]),
            Input(label: "size 0x80000000, 64 KiB zeros", bytes: [0, 0, 0, 0x80] + [UInt8](repeating: 0, count: 65536)),
            Input(label: "size 65536, 64 KiB zeros", bytes: [0, 0, 1, 0] + [UInt8](repeating: 0, count: 65532)),
        ]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for index in 0..<40 {
            var bytes: [UInt8] = []
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let count = Int(state >> 58) + index % 7 // 0...69
            for _ in 0..<count {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                bytes.append(UInt8(truncatingIfNeeded: state >> 33))
            }
            if count >= 4, index % 2 == 0 { bytes[0] = UInt8(count); bytes[1] = 0; bytes[2] = 0; bytes[3] = 0 }
            inputs.append(Input(label: "random \(index) (\(count) bytes)", bytes: bytes))
        }
        return inputs
    }()

    @Test(arguments: inputs)
    func neverTraps(_ input: Input) {
        let memory = FlatUserMemory(base: Self.base, bytes: input.bytes)
        let requests: [UInt32] = Array(0x3B7E...0x3B99) + [0, 0xFFFF_FFFF, 0x1296]
        for profile in UAPIProfile.all {
            for request in requests {
                do {
                    let copied = try UserCopy.copyIn(request: request, argument: Self.base, profile: profile) {
                        (address, count) throws(Errno) in try memory.read(address, count)
                    }
                    if let copy = copied.kernelCopy {
                        #expect(copy.count == copied.command.layout?.size)
                    }
                } catch {
                    let allowed: Set<Errno> = [.badAddress, .inappropriateIOCTLForDevice, .invalidArgument, .argListTooLong]
                    #expect(allowed.contains(error), "\(profile.name) 0x\(String(request, radix: 16)): \(error)")
                }
            }
            // Argument pointers at the edges of the address space.
            for argument: UInt64 in [0, UInt64.max, UInt64.max - 3, Self.base - 1] {
                #expect(throws: Errno.self) {
                    try UserCopy.copyIn(request: 0x3B96, argument: argument, profile: profile) {
                        (address, count) throws(Errno) in try memory.read(address, count)
                    }
                }
            }
        }
    }
}
