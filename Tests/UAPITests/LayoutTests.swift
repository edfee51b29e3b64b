import Testing
import Wire
@testable import UAPI

/// Every Swift layout descriptor against the C compiler (spec kernel-uapi.md 2.3, 4.1).
@Suite struct LayoutTests {
    @Test(arguments: StructLayout.all)
    func structMatchesCompiler(_ layout: StructLayout) throws {
        let c = try #require(CTable.structs.first { $0.name == layout.cName }, "no C struct \(layout.cName)")
        #expect(layout.size == c.size)
        #expect(layout.alignment == c.alignment)
        let cFields = CTable.fields(of: layout.cName)
        #expect(layout.fields.map(\.name) == cFields.map(\.name))
        for (swift, compiler) in zip(layout.fields, cFields) {
            #expect(swift.offset == compiler.offset, "\(layout.cName).\(swift.name) offset")
            #expect(swift.size == compiler.size, "\(layout.cName).\(swift.name) size")
            #expect(swift.isSigned == compiler.isSigned, "\(layout.cName).\(swift.name) signedness")
        }
    }

    @Test func everyCStructHasASwiftLayout() {
        let swiftNames = Set(StructLayout.all.map(\.cName))
        #expect(swiftNames.count == StructLayout.all.count, "cName must be unique")
        for c in CTable.structs {
            #expect(swiftNames.contains(c.name), "C struct \(c.name) has no Swift layout")
        }
        #expect(CTable.structs.count == 11)
    }

    /// The acceptance layout, with numbers from spec 4.1 (c).
    @Test func revisedTSMReqIsTheSpecLayout() {
        let layout = StructLayout.iommuVDeviceTSMReqRevised
        #expect(layout.name == "iommu_vdevice_tsm_req")
        #expect(layout.size == 48)
        #expect(layout.alignment == 8)
        let expected: [(String, Int, Int)] = [
            ("size", 0, 4), ("vdevice_id", 4, 4), ("op", 8, 4), ("tvm_arch", 12, 4), ("req_len", 16, 4),
            ("resp_len", 20, 4), ("req_uptr", 24, 8), ("resp_uptr", 32, 8), ("tsm_code", 40, 8),
        ]
        #expect(layout.fields.map(\.name) == expected.map(\.0))
        #expect(layout.fields.map(\.offset) == expected.map(\.1))
        #expect(layout.fields.map(\.size) == expected.map(\.2))
        #expect(layout.field(named: "tsm_code")?.direction == .out)
    }

    /// Sizes stated by spec 2.1/2.3/4.1 and Linux vfio.h, independent of both implementations.
    @Test func specSizes() {
        let sizes: [String: Int] = [
            "iommu_destroy": 8, "iommu_ioas_alloc": 12, "iommu_hwpt_alloc": 48, "iommu_viommu_alloc": 40,
            "iommu_vdevice_alloc": 24, "iommu_vdevice_tsm_op": 16, "iommu_vdevice_tsm_req_v5": 40,
            "iommu_vdevice_tsm_req_v5_tsm_code": 48, "iommu_vdevice_tsm_req_revised": 48,
            "iommu_ioas_noiommu_get_pa": 40, "vfio_device_bind_iommufd": 24,
        ]
        for layout in StructLayout.all {
            #expect(sizes[layout.cName] == layout.size, "\(layout.cName)")
        }
        #expect(StructLayout.iommuVDeviceTSMOp.alignment == 4)
    }

    @Test func v5FieldOffsetsDifferFromRevised() {
        // spec 8 item 1: a v5 caller's req_len lands in tvm_arch, its resp_len in req_len.
        let v5 = StructLayout.iommuVDeviceTSMReqV5
        let revised = StructLayout.iommuVDeviceTSMReqRevised
        #expect(v5.field(named: "req_len")?.offset == revised.field(named: "tvm_arch")?.offset)
        #expect(v5.field(named: "resp_len")?.offset == revised.field(named: "req_len")?.offset)
        #expect(v5.field(named: "__reserved")?.role == .reserved)
    }

    @Test func genericFieldAccess() throws {
        let layout = StructLayout.iommuVDeviceTSMReqRevised
        var bytes = layout.zeroed()
        try layout.set("size", to: 48, in: &bytes)
        try layout.set("tvm_arch", to: 2, in: &bytes)
        try layout.set("resp_uptr", to: 0x1122_3344_5566_7788, in: &bytes)
        #expect(bytes[0] == 48)
        #expect(bytes[12] == 2)
        #expect(Array(bytes[32..<40]) == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        #expect(try layout.get("resp_uptr", from: bytes) == 0x1122_3344_5566_7788)
        let values = try layout.fieldValues(from: bytes)
        #expect(values.map(\.field.name) == layout.fields.map(\.name))
        #expect(values.first { $0.field.name == "tvm_arch" }?.value == 2)
        #expect(throws: LayoutError.bufferTooShort(field: "tsm_code", needed: 48, available: 47)) {
            try layout.fieldValues(from: Array(bytes.prefix(47)))
        }
        let decoded = try IOMMUVDeviceTSMReq(bytes: bytes)
        #expect(decoded.tvmArch == 2)
        #expect(decoded.respUptr == 0x1122_3344_5566_7788)
    }

    @Test func genericFieldAccessRejections() throws {
        let layout = StructLayout.iommuVDeviceTSMOp
        var bytes = layout.zeroed()
        #expect(throws: LayoutError.unknownField(structName: "iommu_vdevice_tsm_op", field: "op",
                                                 valid: ["size", "type", "flags", "vdevice_id"])) {
            try layout.set("op", to: 1, in: &bytes)
        }
        #expect(throws: LayoutError.valueOutOfRange(field: "type", value: "4294967296")) {
            try layout.set("type", to: 0x1_0000_0000, in: &bytes)
        }
        #expect(throws: LayoutError.valueOutOfRange(field: "type", value: "-1")) {
            try layout.set("type", signed: -1, in: &bytes)
        }
        #expect(bytes == layout.zeroed(), "a rejected write changes nothing")
        var short: [UInt8] = [1, 2, 3]
        #expect(throws: LayoutError.bufferTooShort(field: "vdevice_id", needed: 16, available: 3)) {
            try layout.set("vdevice_id", to: 1, in: &short)
        }
        #expect(throws: LayoutError.bufferTooShort(field: "size", needed: 4, available: 0)) {
            try layout.get("size", from: [])
        }
        #expect(short == [1, 2, 3])
    }

    @Test func signedFieldRoundTrip() throws {
        let layout = StructLayout.vfioDeviceBindIOMMUFD
        var bytes = layout.zeroed()
        try layout.set("iommufd", signed: -1, in: &bytes)
        #expect(Array(bytes[8..<12]) == [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(try layout.requireField("iommufd").decodeSigned(from: bytes) == -1)
        #expect(try VFIODeviceBindIOMMUFD(bytes: bytes).iommufd == -1)
        #expect(throws: LayoutError.valueOutOfRange(field: "iommufd", value: "2147483648")) {
            try layout.set("iommufd", signed: 2_147_483_648, in: &bytes)
        }
        #expect(try layout.offsetOfEnd("out_devid") == 16)
    }
}

/// Each value type encodes every property at the C compiler's offset for its field.
@Suite struct ValueTypeTests {
    /// A value type's encoding with distinct field values, and the expected value of each field.
    struct Case: Sendable, CustomTestStringConvertible {
        let layout: StructLayout
        let encoded: [UInt8]
        let expected: [String: UInt64]
        let roundTrips: Bool
        var testDescription: String { layout.cName }
    }

    static func make<T: UAPIStruct>(_ value: T, _ expected: [String: UInt64]) -> Case {
        let encoded = value.encode()
        let roundTrips = (try? T(bytes: encoded)) == value
        return Case(layout: T.layout, encoded: encoded, expected: expected, roundTrips: roundTrips)
    }

    static let cases: [Case] = [
        make(IOMMUDestroy(size: 8, id: 0x1111), ["size": 8, "id": 0x1111]),
        make(IOMMUIOASAlloc(size: 12, flags: 0x22, outIOASID: 0x33), ["size": 12, "flags": 0x22, "out_ioas_id": 0x33]),
        make(IOMMUHWPTAlloc(size: 48, flags: 1, devID: 2, ptID: 3, outHWPTID: 4, reserved: 5, dataType: 6,
                            dataLen: 7, dataUptr: 0x0800_0000_0000_0008, faultID: 9, reserved2: 10),
             ["size": 48, "flags": 1, "dev_id": 2, "pt_id": 3, "out_hwpt_id": 4, "__reserved": 5, "data_type": 6,
              "data_len": 7, "data_uptr": 0x0800_0000_0000_0008, "fault_id": 9, "__reserved2": 10]),
        make(IOMMUVIOMMUAlloc(size: 40, flags: 1, type: 2, devID: 3, hwptID: 4, outVIOMMUID: 5, dataLen: 6,
                              reserved: 7, dataUptr: 0x0800_0000_0000_0008),
             ["size": 40, "flags": 1, "type": 2, "dev_id": 3, "hwpt_id": 4, "out_viommu_id": 5, "data_len": 6,
              "__reserved": 7, "data_uptr": 0x0800_0000_0000_0008]),
        make(IOMMUVDeviceAlloc(size: 24, viommuID: 1, devID: 2, outVDeviceID: 3, virtID: 0x0400_0000_0000_0004),
             ["size": 24, "viommu_id": 1, "dev_id": 2, "out_vdevice_id": 3, "virt_id": 0x0400_0000_0000_0004]),
        make(IOMMUVDeviceTSMOp(size: 16, type: 1, flags: 2, vdeviceID: 3),
             ["size": 16, "type": 1, "flags": 2, "vdevice_id": 3]),
        make(IOMMUVDeviceTSMReqV5(size: 40, vdeviceID: 1, scope: 2, reqLen: 3, respLen: 4, reserved: 5,
                                  reqUptr: 0x0600_0000_0000_0006, respUptr: 0x0700_0000_0000_0007),
             ["size": 40, "vdevice_id": 1, "scope": 2, "req_len": 3, "resp_len": 4, "__reserved": 5,
              "req_uptr": 0x0600_0000_0000_0006, "resp_uptr": 0x0700_0000_0000_0007]),
        make(IOMMUVDeviceTSMReqV5TSMCode(size: 48, vdeviceID: 1, scope: 2, reqLen: 3, respLen: 4, reserved: 5,
                                         reqUptr: 0x0600_0000_0000_0006, respUptr: 0x0700_0000_0000_0007,
                                         tsmCode: 0x0800_0000_0000_0008),
             ["size": 48, "vdevice_id": 1, "scope": 2, "req_len": 3, "resp_len": 4, "__reserved": 5,
              "req_uptr": 0x0600_0000_0000_0006, "resp_uptr": 0x0700_0000_0000_0007, "tsm_code": 0x0800_0000_0000_0008]),
        make(IOMMUVDeviceTSMReq(size: 48, vdeviceID: 1, op: 2, tvmArch: 3, reqLen: 4, respLen: 5,
                                reqUptr: 0x0600_0000_0000_0006, respUptr: 0x0700_0000_0000_0007,
                                tsmCode: 0x0800_0000_0000_0008),
             ["size": 48, "vdevice_id": 1, "op": 2, "tvm_arch": 3, "req_len": 4, "resp_len": 5,
              "req_uptr": 0x0600_0000_0000_0006, "resp_uptr": 0x0700_0000_0000_0007, "tsm_code": 0x0800_0000_0000_0008]),
        make(IOMMUIOASNoIOMMUGetPA(size: 40, flags: 1, ioasID: 2, reserved: 3, iova: 0x0400_0000_0000_0004,
                                   length: 0x0500_0000_0000_0005, outPhys: 0x0600_0000_0000_0006),
             ["size": 40, "flags": 1, "ioas_id": 2, "__reserved": 3, "iova": 0x0400_0000_0000_0004,
              "length": 0x0500_0000_0000_0005, "out_phys": 0x0600_0000_0000_0006]),
        make(VFIODeviceBindIOMMUFD(argsz: 24, flags: 1, iommufd: 2, outDevID: 3, tokenUUIDPtr: 0x0400_0000_0000_0004),
             ["argsz": 24, "flags": 1, "iommufd": 2, "out_devid": 3, "token_uuid_ptr": 0x0400_0000_0000_0004]),
    ]

    @Test(arguments: cases)
    func encodesAtCompilerOffsets(_ testCase: Case) throws {
        let c = try #require(CTable.structs.first { $0.name == testCase.layout.cName })
        #expect(testCase.encoded.count == c.size)
        let cFields = CTable.fields(of: testCase.layout.cName)
        #expect(Set(cFields.map(\.name)) == Set(testCase.expected.keys))
        for field in cFields {
            var value: UInt64 = 0
            for index in 0..<field.size {
                value |= UInt64(testCase.encoded[field.offset + index]) << (8 * UInt64(index))
            }
            #expect(value == testCase.expected[field.name], "\(testCase.layout.cName).\(field.name)")
        }
        #expect(testCase.roundTrips)
    }

    @Test func everyValueTypeIsCovered() {
        #expect(Set(Self.cases.map(\.layout.cName)) == Set(StructLayout.all.map(\.cName)))
    }

    @Test func decodeRejectsWrongLengths() {
        #expect(throws: WireError.truncated(offset: 0, needed: 4, available: 0)) { try IOMMUDestroy(bytes: []) }
        #expect(throws: WireError.truncated(offset: 40, needed: 8, available: 7)) {
            try IOMMUVDeviceTSMReq(bytes: [UInt8](repeating: 0, count: 47))
        }
        #expect(throws: WireError.trailingBytes(offset: 40, count: 8)) {
            try IOMMUVDeviceTSMReqV5(bytes: [UInt8](repeating: 0, count: 48))
        }
        #expect(throws: WireError.trailingBytes(offset: 16, count: 1)) {
            try IOMMUVDeviceTSMOp(bytes: [UInt8](repeating: 0, count: 17))
        }
    }
}
