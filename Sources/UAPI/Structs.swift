import Wire

/// A uAPI struct as a value: decoded from and encoded to its exact kernel bytes.
///
/// `init(bytes:)` takes exactly ``layout``.size bytes (what the copy-in produces) and throws
/// ``WireError/truncated(offset:needed:available:)`` or ``WireError/trailingBytes(offset:count:)``
/// otherwise; `encode()` returns exactly ``layout``.size bytes. Reserved fields are carried, not
/// checked: checking them is the handler's job (it owns the errno and its order).
public protocol UAPIStruct: Sendable, Hashable {
    /// The struct's layout descriptor.
    static var layout: StructLayout { get }
    /// Decodes exactly `layout.size` little-endian bytes.
    init(bytes: [UInt8]) throws(WireError)
    /// Encodes to exactly `layout.size` little-endian bytes.
    func encode() -> [UInt8]
}

/// `struct iommu_destroy` (8 bytes): see ``StructLayout/iommuDestroy``.
public struct IOMMUDestroy: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuDestroy }
    /// `size`.
    public var size: UInt32
    /// `id`.
    public var id: UInt32

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 8, id: UInt32) {
        self.size = size
        self.id = id
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        id = try reader.u32()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 8)
        writer.u32(size)
        writer.u32(id)
        return writer.bytes
    }
}

/// `struct iommu_ioas_alloc` (12 bytes): see ``StructLayout/iommuIOASAlloc``.
public struct IOMMUIOASAlloc: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuIOASAlloc }
    /// `size`.
    public var size: UInt32
    /// `flags`.
    public var flags: UInt32
    /// `out_ioas_id`.
    public var outIOASID: UInt32

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 12, flags: UInt32 = 0, outIOASID: UInt32 = 0) {
        self.size = size
        self.flags = flags
        self.outIOASID = outIOASID
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        flags = try reader.u32()
        outIOASID = try reader.u32()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 12)
        writer.u32(size)
        writer.u32(flags)
        writer.u32(outIOASID)
        return writer.bytes
    }
}

/// `struct iommu_hwpt_alloc` (48 bytes): see ``StructLayout/iommuHWPTAlloc``.
public struct IOMMUHWPTAlloc: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuHWPTAlloc }
    /// `size`.
    public var size: UInt32
    /// `flags`.
    public var flags: UInt32
    /// `dev_id`.
    public var devID: UInt32
    /// `pt_id`.
    public var ptID: UInt32
    /// `out_hwpt_id`.
    public var outHWPTID: UInt32
    /// `__reserved`.
    public var reserved: UInt32
    /// `data_type`.
    public var dataType: UInt32
    /// `data_len`.
    public var dataLen: UInt32
    /// `data_uptr`.
    public var dataUptr: UInt64
    /// `fault_id`.
    public var faultID: UInt32
    /// `__reserved2`.
    public var reserved2: UInt32

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 48, flags: UInt32 = 0, devID: UInt32, ptID: UInt32, outHWPTID: UInt32 = 0,
                reserved: UInt32 = 0, dataType: UInt32 = 0, dataLen: UInt32 = 0, dataUptr: UInt64 = 0,
                faultID: UInt32 = 0, reserved2: UInt32 = 0) {
        self.size = size
        self.flags = flags
        self.devID = devID
        self.ptID = ptID
        self.outHWPTID = outHWPTID
        self.reserved = reserved
        self.dataType = dataType
        self.dataLen = dataLen
        self.dataUptr = dataUptr
        self.faultID = faultID
        self.reserved2 = reserved2
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        flags = try reader.u32()
        devID = try reader.u32()
        ptID = try reader.u32()
        outHWPTID = try reader.u32()
        reserved = try reader.u32()
        dataType = try reader.u32()
        dataLen = try reader.u32()
        dataUptr = try reader.u64()
        faultID = try reader.u32()
        reserved2 = try reader.u32()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 48)
        writer.u32(size)
        writer.u32(flags)
        writer.u32(devID)
        writer.u32(ptID)
        writer.u32(outHWPTID)
        writer.u32(reserved)
        writer.u32(dataType)
        writer.u32(dataLen)
        writer.u64(dataUptr)
        writer.u32(faultID)
        writer.u32(reserved2)
        return writer.bytes
    }
}

/// `struct iommu_viommu_alloc` (40 bytes): see ``StructLayout/iommuVIOMMUAlloc``.
public struct IOMMUVIOMMUAlloc: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuVIOMMUAlloc }
    /// `size`.
    public var size: UInt32
    /// `flags`.
    public var flags: UInt32
    /// `type`.
    public var type: UInt32
    /// `dev_id`.
    public var devID: UInt32
    /// `hwpt_id`.
    public var hwptID: UInt32
    /// `out_viommu_id`.
    public var outVIOMMUID: UInt32
    /// `data_len`.
    public var dataLen: UInt32
    /// `__reserved`.
    public var reserved: UInt32
    /// `data_uptr`.
    public var dataUptr: UInt64

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 40, flags: UInt32 = 0, type: UInt32, devID: UInt32, hwptID: UInt32,
                outVIOMMUID: UInt32 = 0, dataLen: UInt32 = 0, reserved: UInt32 = 0, dataUptr: UInt64 = 0) {
        self.size = size
        self.flags = flags
        self.type = type
        self.devID = devID
        self.hwptID = hwptID
        self.outVIOMMUID = outVIOMMUID
        self.dataLen = dataLen
        self.reserved = reserved
        self.dataUptr = dataUptr
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        flags = try reader.u32()
        type = try reader.u32()
        devID = try reader.u32()
        hwptID = try reader.u32()
        outVIOMMUID = try reader.u32()
        dataLen = try reader.u32()
        reserved = try reader.u32()
        dataUptr = try reader.u64()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 40)
        writer.u32(size)
        writer.u32(flags)
        writer.u32(type)
        writer.u32(devID)
        writer.u32(hwptID)
        writer.u32(outVIOMMUID)
        writer.u32(dataLen)
        writer.u32(reserved)
        writer.u64(dataUptr)
        return writer.bytes
    }
}

/// `struct iommu_vdevice_alloc` (24 bytes): see ``StructLayout/iommuVDeviceAlloc``.
public struct IOMMUVDeviceAlloc: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuVDeviceAlloc }
    /// `size`.
    public var size: UInt32
    /// `viommu_id`.
    public var viommuID: UInt32
    /// `dev_id`.
    public var devID: UInt32
    /// `out_vdevice_id`.
    public var outVDeviceID: UInt32
    /// `virt_id`.
    public var virtID: UInt64

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 24, viommuID: UInt32, devID: UInt32, outVDeviceID: UInt32 = 0, virtID: UInt64) {
        self.size = size
        self.viommuID = viommuID
        self.devID = devID
        self.outVDeviceID = outVDeviceID
        self.virtID = virtID
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        viommuID = try reader.u32()
        devID = try reader.u32()
        outVDeviceID = try reader.u32()
        virtID = try reader.u64()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 24)
        writer.u32(size)
        writer.u32(viommuID)
        writer.u32(devID)
        writer.u32(outVDeviceID)
        writer.u64(virtID)
        return writer.bytes
    }
}

/// `struct iommu_vdevice_tsm_op` (16 bytes): see ``StructLayout/iommuVDeviceTSMOp``.
///
/// `type` is kept raw: values other than ``VDeviceTSMOpType`` must reach the handler (EINVAL after
/// the lookup, spec 3 step 4'').
public struct IOMMUVDeviceTSMOp: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuVDeviceTSMOp }
    /// `size`.
    public var size: UInt32
    /// `type`.
    public var type: UInt32
    /// `flags`.
    public var flags: UInt32
    /// `vdevice_id`.
    public var vdeviceID: UInt32

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 16, type: UInt32, flags: UInt32 = 0, vdeviceID: UInt32) {
        self.size = size
        self.type = type
        self.flags = flags
        self.vdeviceID = vdeviceID
    }

    /// Convenience: a typed op.
    public init(type: VDeviceTSMOpType, vdeviceID: UInt32) {
        self.init(type: type.rawValue, vdeviceID: vdeviceID)
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        type = try reader.u32()
        flags = try reader.u32()
        vdeviceID = try reader.u32()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 16)
        writer.u32(size)
        writer.u32(type)
        writer.u32(flags)
        writer.u32(vdeviceID)
        return writer.bytes
    }
}

/// `struct iommu_vdevice_tsm_req`, v5 layout (40 bytes): see ``StructLayout/iommuVDeviceTSMReqV5``.
public struct IOMMUVDeviceTSMReqV5: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuVDeviceTSMReqV5 }
    /// `size`.
    public var size: UInt32
    /// `vdevice_id`.
    public var vdeviceID: UInt32
    /// Raw scope (``TSMReqScope`` when valid).
    public var scope: UInt32
    /// `req_len`.
    public var reqLen: UInt32
    /// `resp_len`.
    public var respLen: UInt32
    /// `__reserved`.
    public var reserved: UInt32
    /// `req_uptr`.
    public var reqUptr: UInt64
    /// `resp_uptr`.
    public var respUptr: UInt64

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 40, vdeviceID: UInt32, scope: UInt32, reqLen: UInt32, respLen: UInt32,
                reserved: UInt32 = 0, reqUptr: UInt64, respUptr: UInt64) {
        self.size = size
        self.vdeviceID = vdeviceID
        self.scope = scope
        self.reqLen = reqLen
        self.respLen = respLen
        self.reserved = reserved
        self.reqUptr = reqUptr
        self.respUptr = respUptr
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        vdeviceID = try reader.u32()
        scope = try reader.u32()
        reqLen = try reader.u32()
        respLen = try reader.u32()
        reserved = try reader.u32()
        reqUptr = try reader.u64()
        respUptr = try reader.u64()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 40)
        writer.u32(size)
        writer.u32(vdeviceID)
        writer.u32(scope)
        writer.u32(reqLen)
        writer.u32(respLen)
        writer.u32(reserved)
        writer.u64(reqUptr)
        writer.u64(respUptr)
        return writer.bytes
    }
}

/// `struct iommu_vdevice_tsm_req`, the reply's base layout (48 bytes): see
/// ``StructLayout/iommuVDeviceTSMReqV5TSMCode``.
public struct IOMMUVDeviceTSMReqV5TSMCode: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuVDeviceTSMReqV5TSMCode }
    /// `size`.
    public var size: UInt32
    /// `vdevice_id`.
    public var vdeviceID: UInt32
    /// `scope`.
    public var scope: UInt32
    /// `req_len`.
    public var reqLen: UInt32
    /// `resp_len`.
    public var respLen: UInt32
    /// `__reserved`.
    public var reserved: UInt32
    /// `req_uptr`.
    public var reqUptr: UInt64
    /// `resp_uptr`.
    public var respUptr: UInt64
    /// `tsm_code`.
    public var tsmCode: UInt64

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 48, vdeviceID: UInt32, scope: UInt32, reqLen: UInt32, respLen: UInt32,
                reserved: UInt32 = 0, reqUptr: UInt64, respUptr: UInt64, tsmCode: UInt64 = 0) {
        self.size = size
        self.vdeviceID = vdeviceID
        self.scope = scope
        self.reqLen = reqLen
        self.respLen = respLen
        self.reserved = reserved
        self.reqUptr = reqUptr
        self.respUptr = respUptr
        self.tsmCode = tsmCode
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        vdeviceID = try reader.u32()
        scope = try reader.u32()
        reqLen = try reader.u32()
        respLen = try reader.u32()
        reserved = try reader.u32()
        reqUptr = try reader.u64()
        respUptr = try reader.u64()
        tsmCode = try reader.u64()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 48)
        writer.u32(size)
        writer.u32(vdeviceID)
        writer.u32(scope)
        writer.u32(reqLen)
        writer.u32(respLen)
        writer.u32(reserved)
        writer.u64(reqUptr)
        writer.u64(respUptr)
        writer.u64(tsmCode)
        return writer.bytes
    }
}

/// `struct iommu_vdevice_tsm_req`, revised layout (48 bytes): see
/// ``StructLayout/iommuVDeviceTSMReqRevised``. `op` and `tvmArch` are raw wire values; interpret
/// them with ``UAPIProfile/guestRequestVerdict(op:tvmArch:)``.
public struct IOMMUVDeviceTSMReq: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuVDeviceTSMReqRevised }
    /// `size`.
    public var size: UInt32
    /// `vdevice_id`.
    public var vdeviceID: UInt32
    /// `op`.
    public var op: UInt32
    /// `tvm_arch`.
    public var tvmArch: UInt32
    /// `req_len`.
    public var reqLen: UInt32
    /// `resp_len`.
    public var respLen: UInt32
    /// `req_uptr`.
    public var reqUptr: UInt64
    /// `resp_uptr`.
    public var respUptr: UInt64
    /// Output: the TSM's opaque 64-bit status; the kernel overwrites it.
    public var tsmCode: UInt64

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 48, vdeviceID: UInt32, op: UInt32, tvmArch: UInt32, reqLen: UInt32,
                respLen: UInt32, reqUptr: UInt64, respUptr: UInt64, tsmCode: UInt64 = 0) {
        self.size = size
        self.vdeviceID = vdeviceID
        self.op = op
        self.tvmArch = tvmArch
        self.reqLen = reqLen
        self.respLen = respLen
        self.reqUptr = reqUptr
        self.respUptr = respUptr
        self.tsmCode = tsmCode
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        vdeviceID = try reader.u32()
        op = try reader.u32()
        tvmArch = try reader.u32()
        reqLen = try reader.u32()
        respLen = try reader.u32()
        reqUptr = try reader.u64()
        respUptr = try reader.u64()
        tsmCode = try reader.u64()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 48)
        writer.u32(size)
        writer.u32(vdeviceID)
        writer.u32(op)
        writer.u32(tvmArch)
        writer.u32(reqLen)
        writer.u32(respLen)
        writer.u64(reqUptr)
        writer.u64(respUptr)
        writer.u64(tsmCode)
        return writer.bytes
    }
}

/// `struct iommu_ioas_noiommu_get_pa` (40 bytes): see ``StructLayout/iommuIOASNoIOMMUGetPA``.
public struct IOMMUIOASNoIOMMUGetPA: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .iommuIOASNoIOMMUGetPA }
    /// `size`.
    public var size: UInt32
    /// `flags`.
    public var flags: UInt32
    /// `ioas_id`.
    public var ioasID: UInt32
    /// `__reserved`.
    public var reserved: UInt32
    /// `iova`.
    public var iova: UInt64
    /// `length`.
    public var length: UInt64
    /// `out_phys`.
    public var outPhys: UInt64

    /// Memberwise; `size` defaults to the struct size, outputs and reserved fields to 0.
    public init(size: UInt32 = 40, flags: UInt32 = 0, ioasID: UInt32, reserved: UInt32 = 0,
                iova: UInt64, length: UInt64, outPhys: UInt64 = 0) {
        self.size = size
        self.flags = flags
        self.ioasID = ioasID
        self.reserved = reserved
        self.iova = iova
        self.length = length
        self.outPhys = outPhys
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        flags = try reader.u32()
        ioasID = try reader.u32()
        reserved = try reader.u32()
        iova = try reader.u64()
        length = try reader.u64()
        outPhys = try reader.u64()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 40)
        writer.u32(size)
        writer.u32(flags)
        writer.u32(ioasID)
        writer.u32(reserved)
        writer.u64(iova)
        writer.u64(length)
        writer.u64(outPhys)
        return writer.bytes
    }
}

/// `struct vfio_device_bind_iommufd` (24 bytes): see ``StructLayout/vfioDeviceBindIOMMUFD``.
public struct VFIODeviceBindIOMMUFD: UAPIStruct {
    /// The layout descriptor (checked against `CIOMMUFD`).
    public static var layout: StructLayout { .vfioDeviceBindIOMMUFD }
    /// `argsz`.
    public var argsz: UInt32
    /// `flags`.
    public var flags: UInt32
    /// The iommufd file descriptor (signed; negative → EINVAL).
    public var iommufd: Int32
    /// `out_devid`.
    public var outDevID: UInt32
    /// `token_uuid_ptr`.
    public var tokenUUIDPtr: UInt64

    /// Memberwise; `argsz` defaults to the struct size, outputs and reserved fields to 0.
    public init(argsz: UInt32 = 24, flags: UInt32 = 0, iommufd: Int32, outDevID: UInt32 = 0, tokenUUIDPtr: UInt64 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.iommufd = iommufd
        self.outDevID = outDevID
        self.tokenUUIDPtr = tokenUUIDPtr
    }

    /// Decodes exactly `layout.size` bytes (``UAPIStruct``).
    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        argsz = try reader.u32()
        flags = try reader.u32()
        iommufd = Int32(bitPattern: try reader.u32())
        outDevID = try reader.u32()
        tokenUUIDPtr = try reader.u64()
        try reader.expectEnd()
    }

    /// Encodes to exactly `layout.size` bytes (``UAPIStruct``).
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 24)
        writer.u32(argsz)
        writer.u32(flags)
        writer.u32(UInt32(bitPattern: iommufd))
        writer.u32(outDevID)
        writer.u64(tokenUUIDPtr)
        return writer.bytes
    }
}
