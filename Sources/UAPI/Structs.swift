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
    public static var layout: StructLayout { .iommuDestroy }
    public var size: UInt32
    public var id: UInt32

    public init(size: UInt32 = 8, id: UInt32) {
        self.size = size
        self.id = id
    }

    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        id = try reader.u32()
        try reader.expectEnd()
    }

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 8)
        writer.u32(size)
        writer.u32(id)
        return writer.bytes
    }
}

/// `struct iommu_ioas_alloc` (12 bytes): see ``StructLayout/iommuIOASAlloc``.
public struct IOMMUIOASAlloc: UAPIStruct {
    public static var layout: StructLayout { .iommuIOASAlloc }
    public var size: UInt32
    public var flags: UInt32
    public var outIOASID: UInt32

    public init(size: UInt32 = 12, flags: UInt32 = 0, outIOASID: UInt32 = 0) {
        self.size = size
        self.flags = flags
        self.outIOASID = outIOASID
    }

    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        flags = try reader.u32()
        outIOASID = try reader.u32()
        try reader.expectEnd()
    }

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
    public static var layout: StructLayout { .iommuHWPTAlloc }
    public var size: UInt32
    public var flags: UInt32
    public var devID: UInt32
    public var ptID: UInt32
    public var outHWPTID: UInt32
    public var reserved: UInt32
    public var dataType: UInt32
    public var dataLen: UInt32
    public var dataUptr: UInt64
    public var faultID: UInt32
    public var reserved2: UInt32

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
    public static var layout: StructLayout { .iommuVIOMMUAlloc }
    public var size: UInt32
    public var flags: UInt32
    public var type: UInt32
    public var devID: UInt32
    public var hwptID: UInt32
    public var outVIOMMUID: UInt32
    public var dataLen: UInt32
    public var reserved: UInt32
    public var dataUptr: UInt64

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
    public static var layout: StructLayout { .iommuVDeviceAlloc }
    public var size: UInt32
    public var viommuID: UInt32
    public var devID: UInt32
    public var outVDeviceID: UInt32
    public var virtID: UInt64

    public init(size: UInt32 = 24, viommuID: UInt32, devID: UInt32, outVDeviceID: UInt32 = 0, virtID: UInt64) {
        self.size = size
        self.viommuID = viommuID
        self.devID = devID
        self.outVDeviceID = outVDeviceID
        self.virtID = virtID
    }

    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        viommuID = try reader.u32()
        devID = try reader.u32()
        outVDeviceID = try reader.u32()
        virtID = try reader.u64()
        try reader.expectEnd()
    }

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
    public static var layout: StructLayout { .iommuVDeviceTSMOp }
    public var size: UInt32
    public var type: UInt32
    public var flags: UInt32
    public var vdeviceID: UInt32

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

    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        size = try reader.u32()
        type = try reader.u32()
        flags = try reader.u32()
        vdeviceID = try reader.u32()
        try reader.expectEnd()
    }

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
    public static var layout: StructLayout { .iommuVDeviceTSMReqV5 }
    public var size: UInt32
    public var vdeviceID: UInt32
    /// Raw scope (``TSMReqScope`` when valid).
    public var scope: UInt32
    public var reqLen: UInt32
    public var respLen: UInt32
    public var reserved: UInt32
    public var reqUptr: UInt64
    public var respUptr: UInt64

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
    public static var layout: StructLayout { .iommuVDeviceTSMReqV5TSMCode }
    public var size: UInt32
    public var vdeviceID: UInt32
    public var scope: UInt32
    public var reqLen: UInt32
    public var respLen: UInt32
    public var reserved: UInt32
    public var reqUptr: UInt64
    public var respUptr: UInt64
    public var tsmCode: UInt64

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
    public static var layout: StructLayout { .iommuVDeviceTSMReqRevised }
    public var size: UInt32
    public var vdeviceID: UInt32
    public var op: UInt32
    public var tvmArch: UInt32
    public var reqLen: UInt32
    public var respLen: UInt32
    public var reqUptr: UInt64
    public var respUptr: UInt64
    /// Output: the TSM's opaque 64-bit status; the kernel overwrites it.
    public var tsmCode: UInt64

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
    public static var layout: StructLayout { .iommuIOASNoIOMMUGetPA }
    public var size: UInt32
    public var flags: UInt32
    public var ioasID: UInt32
    public var reserved: UInt32
    public var iova: UInt64
    public var length: UInt64
    public var outPhys: UInt64

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
    public static var layout: StructLayout { .vfioDeviceBindIOMMUFD }
    public var argsz: UInt32
    public var flags: UInt32
    /// The iommufd file descriptor (signed; negative → EINVAL).
    public var iommufd: Int32
    public var outDevID: UInt32
    public var tokenUUIDPtr: UInt64

    public init(argsz: UInt32 = 24, flags: UInt32 = 0, iommufd: Int32, outDevID: UInt32 = 0, tokenUUIDPtr: UInt64 = 0) {
        self.argsz = argsz
        self.flags = flags
        self.iommufd = iommufd
        self.outDevID = outDevID
        self.tokenUUIDPtr = tokenUUIDPtr
    }

    public init(bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        argsz = try reader.u32()
        flags = try reader.u32()
        iommufd = Int32(bitPattern: try reader.u32())
        outDevID = try reader.u32()
        tokenUUIDPtr = try reader.u64()
        try reader.expectEnd()
    }

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
