import SystemPackage
import Testing
import UAPI
import Wire
@testable import VMM

/// The bytes each typed call issues, checked field by field against spec kernel-uapi.md 2.1, 2.3
/// and 4.1 (offsets and request codes written out here, not taken from the implementation).
@Suite("Typed calls issue the uAPI bytes")
struct TypedCallBytesTests {
    /// Reads a little-endian u32 at `offset`.
    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32? {
        var reader = ByteReader(bytes, offset: offset)
        return try? reader.u32()
    }

    /// Reads a little-endian u64 at `offset`.
    static func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64? {
        var reader = ByteReader(bytes, offset: offset)
        return try? reader.u64()
    }

    /// Writes a little-endian u32 at `offset` (the double's "kernel" filling an out field).
    static func put32(_ value: UInt32, _ bytes: inout [UInt8], _ offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
    }

    static func put64(_ value: UInt64, _ bytes: inout [UInt8], _ offset: Int) {
        for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
    }

    @Test("IOMMU_IOAS_ALLOC: request 0x3B81, 12 bytes, out_ioas_id at 8")
    func ioasAlloc() throws {
        let backend = RecordingBackend { _, _, argument in
            Self.put32(7, &argument, 8)
            return 0
        }
        let iommufd = try IOMMUFD.open(backend: backend)
        let ioas = try iommufd.allocIOAS()
        #expect(ioas == IOASID(7))
        let call = try #require(backend.calls.first)
        #expect(call.fd == iommufd.fileDescriptor)
        #expect(call.request == 0x3B81)
        #expect(call.argument == [12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test("IOMMU_HWPT_ALLOC: 0x3B89, 48 bytes, NEST_PARENT flag 1, dev_id 8, pt_id 12, out 16")
    func hwptAlloc() throws {
        let backend = RecordingBackend { _, _, argument in
            Self.put32(9, &argument, 16)
            return 0
        }
        let iommufd = try IOMMUFD.open(backend: backend)
        let hwpt = try iommufd.allocHWPT(device: DevID(1), parent: IOASID(2))
        #expect(hwpt == HWPTID(9))
        let call = try #require(backend.calls.first)
        #expect(call.request == 0x3B89)
        #expect(call.argument.count == 48)
        #expect(Self.u32(call.argument, 0) == 48)
        #expect(Self.u32(call.argument, 4) == 1)
        #expect(Self.u32(call.argument, 8) == 1)
        #expect(Self.u32(call.argument, 12) == 2)
        #expect(call.argument[16...].allSatisfy { $0 == 0 })
    }

    @Test("IOMMU_VIOMMU_ALLOC: 0x3B90, 40 bytes, type 8, dev_id 12, hwpt_id 16, out 20")
    func viommuAlloc() throws {
        let backend = RecordingBackend { _, _, argument in
            Self.put32(5, &argument, 20)
            return 0
        }
        let iommufd = try IOMMUFD.open(backend: backend)
        let viommu = try iommufd.allocVIOMMU(device: DevID(1), hwpt: HWPTID(3), type: .armSMMUv3)
        #expect(viommu == VIOMMUID(5))
        let call = try #require(backend.calls.first)
        #expect(call.request == 0x3B90)
        #expect(call.argument.count == 40)
        #expect(Self.u32(call.argument, 0) == 40)
        #expect(Self.u32(call.argument, 4) == 0)
        #expect(Self.u32(call.argument, 8) == 1)
        #expect(Self.u32(call.argument, 12) == 1)
        #expect(Self.u32(call.argument, 16) == 3)
    }

    @Test("IOMMU_VDEVICE_ALLOC: 0x3B91, 24 bytes, viommu 4, dev 8, out 12, virt_id u64 at 16")
    func vdeviceAlloc() throws {
        let backend = RecordingBackend { _, _, argument in
            Self.put32(6, &argument, 12)
            return 0
        }
        let iommufd = try IOMMUFD.open(backend: backend)
        let vdevice = try iommufd.allocVDevice(viommu: VIOMMUID(5), device: DevID(1), virtID: 0x1_0000_0800)
        #expect(vdevice.id == 6)
        #expect(vdevice.virtID == 0x1_0000_0800)
        let call = try #require(backend.calls.first)
        #expect(call.request == 0x3B91)
        #expect(call.argument.count == 24)
        #expect(Self.u32(call.argument, 0) == 24)
        #expect(Self.u32(call.argument, 4) == 5)
        #expect(Self.u32(call.argument, 8) == 1)
        #expect(Self.u64(call.argument, 16) == 0x1_0000_0800)
    }

    @Test("IOMMU_DESTROY: 0x3B80, 8 bytes {size 8, id}")
    func destroy() throws {
        let backend = RecordingBackend()
        let iommufd = try IOMMUFD.open(backend: backend)
        try iommufd.destroy(VDeviceID(4))
        try iommufd.destroy(id: 2)
        #expect(backend.calls.map(\.request) == [0x3B80, 0x3B80])
        #expect(backend.calls.map(\.argument) == [[8, 0, 0, 0, 4, 0, 0, 0], [8, 0, 0, 0, 2, 0, 0, 0]])
    }

    @Test("TSM_OP bind/unbind: nr from the profile (0x95 revised and v5, 0x96 rev-k), 16 bytes",
          arguments: [("revised", UInt32(0x3B95)), ("v5", 0x3B95), ("rev-k", 0x3B96)])
    func tsmOp(profileName: String, request: UInt32) throws {
        let backend = RecordingBackend()
        let iommufd = try IOMMUFD.open(backend: backend, profile: try UAPIProfile.named(profileName))
        try iommufd.tsmBind(VDeviceID(4))
        try iommufd.tsmUnbind(VDeviceID(4))
        #expect(backend.calls.map(\.request) == [request, request])
        #expect(backend.calls.map(\.argument) == [[16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0],
                                                 [16, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]])
    }

    @Test("VFIO_DEVICE_BIND_IOMMUFD: 0x3B76 on the VFIO fd, argsz 24, iommufd at 8, out_devid at 12")
    func vfioBind() throws {
        let backend = RecordingBackend { _, _, argument in
            Self.put32(1, &argument, 12)
            return 0
        }
        let iommufd = try IOMMUFD.open(backend: backend)
        let vfio = try VFIODevice.open("/dev/vfio/devices/vfio0", backend: backend)
        let device = try vfio.bind(to: iommufd)
        #expect(device == DevID(1))
        let call = try #require(backend.calls.first)
        #expect(call.fd == vfio.fileDescriptor)
        #expect(call.request == 0x3B76)
        #expect(call.argument.count == 24)
        #expect(Self.u32(call.argument, 0) == 24)
        #expect(Self.u32(call.argument, 4) == 0)
        #expect(Self.u32(call.argument, 8) == UInt32(bitPattern: iommufd.fileDescriptor))
    }

    /// A TSM driver stand-in: echoes the request reversed into the response buffer, sets tsm_code,
    /// returns the residue.
    static func echoingTSM(tsmCode: UInt64, layoutHasTSMCode: Bool, reqOffsets: (len: Int, uptr: Int),
                           respOffsets: (len: Int, uptr: Int)) -> RecordingBackend.Answer {
        { backend, _, argument throws(Errno) in
            guard let reqLen = u32(argument, reqOffsets.len), let reqUptr = u64(argument, reqOffsets.uptr),
                  let respLen = u32(argument, respOffsets.len), let respUptr = u64(argument, respOffsets.uptr)
            else { throw .badAddress }
            let request = reqLen == 0 ? [] : try backend.readUserBuffer(at: reqUptr, count: Int(reqLen))
            let reply = Array(request.reversed().prefix(Int(respLen)))
            if !reply.isEmpty { try backend.writeUserBuffer(at: respUptr, reply) }
            if layoutHasTSMCode { put64(tsmCode, &argument, 40) }
            return Int32(Int(respLen) - reply.count)
        }
    }

    @Test("Revised TSM_REQ: 0x3B96, 48 bytes, op 8, tvm_arch 12, lengths 16/20, uptrs 24/32; response, residue, tsm_code")
    func revisedRequest() throws {
        let backend = RecordingBackend(answer: Self.echoingTSM(tsmCode: 0xC0DE, layoutHasTSMCode: true,
                                                              reqOffsets: (16, 24), respOffsets: (20, 32)))
        let iommufd = try IOMMUFD.open(backend: backend)
        let answer = try iommufd.tsmRequest(VDeviceID(4), op: .validateMMIO, tvmArch: .sev,
                                            request: [1, 2, 3], responseCapacity: 8)
        #expect(answer.bytes == [3, 2, 1])
        #expect(answer.residue == 5)
        #expect(answer.tsmCode == 0xC0DE)
        #expect(answer.responseCapacity == 8)
        let call = try #require(backend.calls.first)
        #expect(call.request == 0x3B96)
        #expect(call.argument.count == 48)
        #expect(Self.u32(call.argument, 0) == 48)
        #expect(Self.u32(call.argument, 4) == 4)
        #expect(Self.u32(call.argument, 8) == 4)   // reply numbering: VALIDATE_MMIO = 4
        #expect(Self.u32(call.argument, 12) == 2)  // SEV
        #expect(Self.u32(call.argument, 16) == 3)
        #expect(Self.u32(call.argument, 20) == 8)
        #expect(Self.u64(call.argument, 24) != 0)
        #expect(Self.u64(call.argument, 32) != 0)
        #expect(Self.u64(call.argument, 40) == 0)  // tsm_code issued as 0
        #expect(backend.mappedBufferCount == 0)
    }

    @Test("rev-k numbers VALIDATE_MMIO 1 and issues TSM_REQ as 0x3B97")
    func revKRequest() throws {
        let backend = RecordingBackend(answer: Self.echoingTSM(tsmCode: 1, layoutHasTSMCode: true,
                                                              reqOffsets: (16, 24), respOffsets: (20, 32)))
        let iommufd = try IOMMUFD.open(backend: backend, profile: .revK)
        let answer = try iommufd.tsmRequest(VDeviceID(1), op: .validateMMIO, tvmArch: .cca,
                                            request: [9], responseCapacity: 1)
        #expect(answer.bytes == [9])
        #expect(answer.residue == 0)
        let call = try #require(backend.calls.first)
        #expect(call.request == 0x3B97)
        #expect(Self.u32(call.argument, 8) == 1)
        #expect(Self.u32(call.argument, 12) == 1)
    }

    @Test("v5 TSM_REQ: 40 bytes, scope at 8, __reserved 0 at 20, uptrs 24/32; no tsm_code")
    func v5Request() throws {
        let backend = RecordingBackend(answer: Self.echoingTSM(tsmCode: 0, layoutHasTSMCode: false,
                                                              reqOffsets: (12, 24), respOffsets: (16, 32)))
        let iommufd = try IOMMUFD.open(backend: backend, profile: .v5)
        let answer = try iommufd.tsmRequest(VDeviceID(2), scope: .pciStateChange, request: [1, 2],
                                            responseCapacity: 4)
        #expect(answer.bytes == [2, 1])
        #expect(answer.residue == 2)
        #expect(answer.tsmCode == nil)
        let call = try #require(backend.calls.first)
        #expect(call.request == 0x3B96)
        #expect(call.argument.count == 40)
        #expect(Self.u32(call.argument, 0) == 40)
        #expect(Self.u32(call.argument, 4) == 2)
        #expect(Self.u32(call.argument, 8) == 1)
        #expect(Self.u32(call.argument, 12) == 2)
        #expect(Self.u32(call.argument, 16) == 4)
        #expect(Self.u32(call.argument, 20) == 0)
    }

    @Test("No response buffer: resp_uptr 0 and resp_len 0; residue bounded by the request (spec 4.4)")
    func noResponseBuffer() throws {
        let backend = RecordingBackend { _, _, _ in 1 }
        let iommufd = try IOMMUFD.open(backend: backend)
        let answer = try iommufd.tsmRequest(VDeviceID(1), op: .setTDIState, tvmArch: .tdx, request: [2, 0],
                                            responseCapacity: 0)
        #expect(answer.bytes == [])
        #expect(answer.residue == 1)
        let call = try #require(backend.calls.first)
        #expect(Self.u32(call.argument, 20) == 0)
        #expect(Self.u64(call.argument, 32) == 0)
        #expect(Self.u64(call.argument, 24) != 0)
    }

    @Test("Empty request: req_uptr 0 and req_len 0")
    func emptyRequest() throws {
        let backend = RecordingBackend()
        let iommufd = try IOMMUFD.open(backend: backend)
        _ = try iommufd.tsmRequest(VDeviceID(1), op: .objectInfo, tvmArch: .cca, request: [], responseCapacity: 0)
        let call = try #require(backend.calls.first)
        #expect(Self.u32(call.argument, 16) == 0)
        #expect(Self.u64(call.argument, 24) == 0)
    }
}
