import SystemPackage
import UAPI
import Wire

/// An open iommufd (`/dev/iommu`): the owning handle, and the typed calls of Appendix B on it.
///
/// `~Copyable`: exactly one value owns the file descriptor, and it is closed exactly once, by
/// ``close()`` (which reports a failing `close(2)`) or, if the owner never calls it, when the
/// value is destroyed. Closing an iommufd destroys every object on it (spec 1.1).
///
/// Every command is built from the ``profile``'s command table and the `UAPI` module's struct
/// types (never by hand): the request code is `profile.command(id).request` (for TSM_OP / TSM_REQ:
/// `profile.tsmOp` / `profile.tsmReq`, 0x3B95/0x3B96 for `revised` and `v5`, 0x3B96/0x3B97 for
/// `rev-k`), the argument the struct's `encode()`.
///
/// ```swift
/// let backend = LinuxBackend()                              // or the simulated kernel's adapter
/// let iommufd = try IOMMUFD.open(backend: backend)          // profile .revised by default
/// let vfio = try VFIODevice.open("/dev/vfio/devices/vfio0", backend: backend)
/// let device = try vfio.bind(to: iommufd)
/// let ioas = try iommufd.allocIOAS()
/// let hwpt = try iommufd.allocHWPT(device: device, parent: ioas)       // NEST_PARENT
/// let viommu = try iommufd.allocVIOMMU(device: device, hwpt: hwpt, type: .armSMMUv3)
/// let vdevice = try iommufd.allocVDevice(viommu: viommu, device: device, virtID: 0x0800)
/// try iommufd.tsmBind(vdevice)
/// let answer = try iommufd.tsmRequest(vdevice, op: .readObject, tvmArch: .cca,
///                                     request: payload, responseCapacity: 4096)
/// ```
///
/// Errors: every call throws ``VMMError`` with the step (the command's kernel name) and the errno;
/// see ``VMMError/classify(_:step:subject:environment:detail:tsmCode:)`` for the codes.
public struct IOMMUFD: ~Copyable, Sendable {
    /// The kernel this file lives in.
    public let backend: any IOMMUFDBackend
    /// The backend's file descriptor number. Not owned by whoever reads it: do not close it.
    public let fileDescriptor: Int32
    /// The uAPI profile every command is built with.
    public let profile: UAPIProfile
    /// The path that was opened.
    public let path: String

    /// The default iommufd path.
    public static let defaultPath = "/dev/iommu"

    /// The largest request or response buffer a TSM request places in user memory: 16 MiB
    /// (2^24 bytes, SPDM's largest message size). The uAPI allows any u32 length; this library
    /// refuses more (``VMMError/Code/invalidArgument``), so a wrong capacity cannot make a backend
    /// allocate gigabytes. TSM objects (certificate chains, measurements, reports) are far smaller.
    public static let maximumBufferSize = 1 << 24

    /// Opens the iommufd at `path` on `backend`, after the backend admitted `profile`.
    ///
    /// Errors, in order: ``VMMError/Code/profileMismatch`` / ``VMMError/Code/unknownKernelVersion``
    /// (step ``VMMStep/checkKernel``; nothing opened); at step ``VMMStep/openIOMMUFD``:
    /// ``VMMError/Code/iommufdUnavailable`` (ENOENT, ENODEV, ENXIO),
    /// ``VMMError/Code/permissionDenied`` (EACCES, EPERM), ``VMMError/Code/kernelError`` otherwise.
    public static func open(backend: any IOMMUFDBackend, profile: UAPIProfile = .revised,
                            path: String = IOMMUFD.defaultPath) throws(VMMError) -> IOMMUFD {
        try backend.admit(profile)
        let fd: Int32
        do throws(Errno) {
            fd = try backend.open(path)
        } catch {
            throw VMMError.classify(error, step: .openIOMMUFD, subject: path, environment: backend.environment)
        }
        return IOMMUFD(backend: backend, fileDescriptor: fd, profile: profile, path: path)
    }

    private init(backend: any IOMMUFDBackend, fileDescriptor: Int32, profile: UAPIProfile, path: String) {
        self.backend = backend
        self.fileDescriptor = fileDescriptor
        self.profile = profile
        self.path = path
    }

    /// Set by ``close()`` so that `deinit` does not close the descriptor a second time.
    private var closed = false

    deinit {
        if !closed { try? backend.close(fileDescriptor) }
    }

    /// Closes the iommufd (destroying every object on it). The descriptor is released even when
    /// `close(2)` reports an error. Errors: ``VMMError/Code/kernelError`` at
    /// ``VMMStep/closeIOMMUFD`` with the errno of `close(2)`.
    public consuming func close() throws(VMMError) {
        closed = true
        do throws(Errno) {
            try backend.close(fileDescriptor)
        } catch {
            throw VMMError.classify(error, step: .closeIOMMUFD, subject: path, environment: backend.environment)
        }
    }

    // MARK: The raw entry point

    /// `ioctl(fileDescriptor, request, argument)` on this iommufd, unchecked: the request code is
    /// issued as given. Prefer the typed calls; they take their numbers from ``profile``.
    public func ioctl(request: UInt32, argument: inout [UInt8]) throws(Errno) -> Int32 {
        try backend.ioctl(fileDescriptor, request: request, argument: &argument)
    }

    // MARK: Object allocation (Appendix B steps 4-6) and destruction (step 11)

    /// `IOMMU_IOAS_ALLOC` (`iommu_ioas_alloc`, 12 bytes, flags 0) → the new IOAS.
    public func allocIOAS() throws(VMMError) -> IOASID {
        let reply = try issue(.ioasAlloc, IOMMUIOASAlloc(), subject: path)
        return IOASID(reply.outIOASID)
    }

    /// `IOMMU_HWPT_ALLOC` (`iommu_hwpt_alloc`, 48 bytes) of a paging HWPT on `parent` for `device`,
    /// `data_type` NONE → the new HWPT. A vIOMMU needs `flags` to hold
    /// ``HWPTAllocFlags/nestParent`` (the default); otherwise VIOMMU_ALLOC is EINVAL (spec 0.1).
    public func allocHWPT(device: DevID, parent: IOASID, flags: HWPTAllocFlags = .nestParent) throws(VMMError) -> HWPTID {
        let reply = try issue(.hwptAlloc, IOMMUHWPTAlloc(flags: flags.rawValue, devID: device.id, ptID: parent.id),
                              subject: "\(device) on \(parent)")
        return HWPTID(reply.outHWPTID)
    }

    /// `IOMMU_VIOMMU_ALLOC` (`iommu_viommu_alloc`, 40 bytes) of a vIOMMU of `type` (raw
    /// `enum iommu_viommu_type`; 0 is EOPNOTSUPP) over `hwpt` for `device` → the new vIOMMU. The
    /// vIOMMU captures the DEVICE's VM, which TSM bind requires (spec 1.6, 3 step 3).
    public func allocVIOMMU(device: DevID, hwpt: HWPTID, type: UInt32) throws(VMMError) -> VIOMMUID {
        let reply = try issue(.viommuAlloc, IOMMUVIOMMUAlloc(type: type, devID: device.id, hwptID: hwpt.id),
                              subject: "\(device) on \(hwpt)")
        return VIOMMUID(reply.outVIOMMUID)
    }

    /// ``allocVIOMMU(device:hwpt:type:)`` with a named type.
    public func allocVIOMMU(device: DevID, hwpt: HWPTID, type: VIOMMUType) throws(VMMError) -> VIOMMUID {
        try allocVIOMMU(device: device, hwpt: hwpt, type: type.rawValue)
    }

    /// `IOMMU_VDEVICE_ALLOC` (`iommu_vdevice_alloc`, 24 bytes) of the vDEVICE of `device` on
    /// `viommu`, with `virtID` (the guest BDF / vRID; a TSM bind uses its low 32 bits as tdi_id)
    /// → the new vDEVICE. A second vDEVICE for the same device is EEXIST (spec 0.1).
    public func allocVDevice(viommu: VIOMMUID, device: DevID, virtID: UInt64) throws(VMMError) -> VDeviceID {
        let reply = try issue(.vdeviceAlloc, IOMMUVDeviceAlloc(viommuID: viommu.id, devID: device.id, virtID: virtID),
                              subject: "\(device) on \(viommu)")
        return VDeviceID(reply.outVDeviceID, virtID: virtID)
    }

    /// `IOMMU_DESTROY` (`iommu_destroy`, 8 bytes) of `object`. Destroying a vDEVICE unbinds its
    /// TDI first (spec 3). Errors: ENOENT (unknown ID), EBUSY (a dependant exists, spec 1.3).
    public func destroy(_ object: some IOMMUFDObjectID) throws(VMMError) {
        _ = try issue(.destroy, IOMMUDestroy(id: object.id), subject: object.description)
    }

    /// `IOMMU_DESTROY` of the raw object ID `id`.
    public func destroy(id: UInt32) throws(VMMError) {
        _ = try issue(.destroy, IOMMUDestroy(id: id), subject: "object \(id)")
    }

    // MARK: TSM bind / unbind (Appendix B steps 8 and 10)

    /// `IOMMU_VDEVICE_TSM_OP` with `type` BIND: binds the device's TDI to the vIOMMU's VM with
    /// tdi_id = `virt_id` (spec 3). Errors (errno at step ``VMMStep/tsmOp``): ENOENT (no such
    /// vDEVICE), ENODEV (the vIOMMU has no VM), EBUSY (bound to another VM), ENXIO (no TSM context),
    /// ENOTTY → ``VMMError/Code/tsmUAPIUnavailable``.
    public func tsmBind(_ vdevice: VDeviceID) throws(VMMError) {
        try tsmOp(type: VDeviceTSMOpType.bind.rawValue, vdeviceID: vdevice.id)
    }

    /// `IOMMU_VDEVICE_TSM_OP` with `type` UNBIND (device-global; 0 when nothing is bound, spec 3).
    /// Errors as ``tsmBind(_:)``.
    public func tsmUnbind(_ vdevice: VDeviceID) throws(VMMError) {
        try tsmOp(type: VDeviceTSMOpType.unbind.rawValue, vdeviceID: vdevice.id)
    }

    /// `IOMMU_VDEVICE_TSM_OP` (`iommu_vdevice_tsm_op`, 16 bytes) with raw `type` and `flags`, for
    /// tools that probe the kernel's checks (flags ≠ 0 → EOPNOTSUPP, unknown type → EINVAL after
    /// the lookup, spec 3).
    public func tsmOp(type: UInt32, vdeviceID: UInt32, flags: UInt32 = 0) throws(VMMError) {
        let value = IOMMUVDeviceTSMOp(type: type, flags: flags, vdeviceID: vdeviceID)
        _ = try issue(profile.tsmOp, value, subject: "vDEVICE \(vdeviceID)")
    }

    // MARK: Guest requests (Appendix B step 9)

    /// `IOMMU_VDEVICE_TSM_REQ`, revised form (`op` + `tvm_arch`): tunnels `request` to the TSM for
    /// `vdevice` and returns the response bytes, the residue and `tsm_code` (spec 4.3, 4.4).
    ///
    /// The op's wire number comes from ``profile`` (`rawValue(of:)`: the reply numbers 1..7, rev-K
    /// 1..4). Both buffers are placed in the backend's user memory for the call and unmapped after.
    ///
    /// Errors: ``VMMError/Code/requestFormMismatch`` (a v5 profile) and
    /// ``VMMError/Code/invalidArgument`` (op not in the profile, a request or capacity above
    /// ``maximumBufferSize``, a negative capacity) at ``VMMStep/validateArguments``, nothing
    /// issued; then the kernel's errno at ``VMMStep/tsmReq`` (EINVAL bad arch/op, ENOENT no vDEVICE, ENXIO not bound, the
    /// driver's errno; ``VMMError/tsmCode`` holds the `tsm_code` written back with it, spec 4.3
    /// step 14); ``VMMError/Code/invalidResidue`` if the residue exceeds the buffer.
    public func tsmRequest(_ vdevice: VDeviceID, op: GuestRequestOp, tvmArch: TVMArch, request: [UInt8],
                           responseCapacity: Int) throws(VMMError) -> TSMResponse {
        try requireRevisedForm()
        guard let rawOp = profile.rawValue(of: op) else {
            let valid = profile.validOps.map(\.op.kernelName).joined(separator: ", ")
            throw VMMError(.invalidArgument, step: .validateArguments,
                           reason: "profile '\(profile.name)' has no \(op.kernelName) (its ops: \(valid))")
        }
        return try tsmRequest(vdevice, rawOp: rawOp, rawTVMArch: tvmArch.rawValue, request: request,
                              responseCapacity: responseCapacity)
    }

    /// ``tsmRequest(_:op:tvmArch:request:responseCapacity:)`` with raw `op` and `tvm_arch` values,
    /// issued as given (so the kernel's EINVAL checks of spec 4.3 steps 1-2 can be reached).
    public func tsmRequest(_ vdevice: VDeviceID, rawOp: UInt32, rawTVMArch: UInt32, request: [UInt8],
                           responseCapacity: Int) throws(VMMError) -> TSMResponse {
        try requireRevisedForm()
        let lengths = try checkLengths(request: request, responseCapacity: responseCapacity)
        let buffers = try placeBuffers(request: request, responseCapacity: responseCapacity)
        defer { release(buffers) }
        let value = IOMMUVDeviceTSMReq(vdeviceID: vdevice.id, op: rawOp, tvmArch: rawTVMArch,
                                       reqLen: lengths.request, respLen: lengths.response,
                                       reqUptr: buffers.request, respUptr: buffers.response)
        return try issueGuestRequest(value, buffers: buffers, request: request,
                                     responseCapacity: responseCapacity, vdevice: vdevice)
    }

    /// `IOMMU_VDEVICE_TSM_REQ`, v5 form (`scope` + `__reserved`, spec 4.2): as the revised form but
    /// with a scope instead of op + tvm_arch; ``TSMResponse/tsmCode`` is nil for the 40-byte v5
    /// layout. Errors: ``VMMError/Code/requestFormMismatch`` on a revised profile; the kernel's
    /// errno at ``VMMStep/tsmReq`` (EINVAL for scope > 3 and for the DEBUG scopes, ENOENT, ENXIO).
    public func tsmRequest(_ vdevice: VDeviceID, scope: TSMReqScope, request: [UInt8],
                           responseCapacity: Int) throws(VMMError) -> TSMResponse {
        try tsmRequest(vdevice, rawScope: scope.rawValue, request: request, responseCapacity: responseCapacity)
    }

    /// The v5 form with a raw `scope` value, issued as given.
    public func tsmRequest(_ vdevice: VDeviceID, rawScope: UInt32, request: [UInt8],
                           responseCapacity: Int) throws(VMMError) -> TSMResponse {
        guard profile.tsmReqLayout.hasScope else {
            throw VMMError(.requestFormMismatch, step: .validateArguments,
                           reason: "profile '\(profile.name)' takes op + tvm_arch, not a scope: call tsmRequest(_:op:tvmArch:request:responseCapacity:)")
        }
        let lengths = try checkLengths(request: request, responseCapacity: responseCapacity)
        let buffers = try placeBuffers(request: request, responseCapacity: responseCapacity)
        defer { release(buffers) }
        if profile.tsmReqLayout == .v5TSMCode {
            let value = IOMMUVDeviceTSMReqV5TSMCode(vdeviceID: vdevice.id, scope: rawScope, reqLen: lengths.request,
                                                    respLen: lengths.response, reqUptr: buffers.request,
                                                    respUptr: buffers.response)
            return try issueGuestRequest(value, buffers: buffers, request: request,
                                         responseCapacity: responseCapacity, vdevice: vdevice)
        }
        let value = IOMMUVDeviceTSMReqV5(vdeviceID: vdevice.id, scope: rawScope, reqLen: lengths.request,
                                         respLen: lengths.response, reqUptr: buffers.request,
                                         respUptr: buffers.response)
        return try issueGuestRequest(value, buffers: buffers, request: request,
                                     responseCapacity: responseCapacity, vdevice: vdevice)
    }
}

// MARK: - Helpers, in the order the calls above use them

extension IOMMUFD {
    /// Issues `id` from the profile's table with `value` and decodes the struct the kernel wrote back.
    private func issue<S: UAPIStruct>(_ id: CommandID, _ value: S, subject: String) throws(VMMError) -> S {
        guard let command = profile.command(id) else {
            throw VMMError(.invalidArgument, step: .command(id),
                           reason: "profile '\(profile.name)' has no \(id.kernelName)")
        }
        return try issue(command, value, subject: subject)
    }

    private func issue<S: UAPIStruct>(_ command: CommandSpec, _ value: S, subject: String) throws(VMMError) -> S {
        let step = VMMStep.command(command.id)
        var bytes = value.encode()
        do throws(Errno) {
            _ = try backend.ioctl(fileDescriptor, request: command.request, argument: &bytes)
        } catch {
            throw VMMError.classify(error, step: step, subject: subject, environment: backend.environment,
                                    detail: requestDetail(command))
        }
        return try decodeReply(S.self, bytes, step: step)
    }

    /// `" (request 0x3B95, profile revised)"` for messages.
    private func requestDetail(_ command: CommandSpec) -> String {
        " (request 0x\(String(command.request, radix: 16, uppercase: true)), profile \(profile.name))"
    }

    private func decodeReply<S: UAPIStruct>(_ type: S.Type, _ bytes: [UInt8], step: VMMStep) throws(VMMError) -> S {
        do throws(WireError) {
            return try S(bytes: bytes)
        } catch {
            throw VMMError(.malformedReply, step: step,
                           reason: "the backend returned \(bytes.count) bytes for struct \(S.layout.name) (\(S.layout.size) bytes): \(error)")
        }
    }

    private func requireRevisedForm() throws(VMMError) {
        guard profile.tsmReqLayout.hasOpAndArch else {
            throw VMMError(.requestFormMismatch, step: .validateArguments,
                           reason: "profile '\(profile.name)' takes a scope, not op + tvm_arch: call tsmRequest(_:scope:request:responseCapacity:)")
        }
    }

    /// `req_len` and `resp_len` as u32, each at most ``maximumBufferSize``. Errors:
    /// ``VMMError/Code/invalidArgument``.
    private func checkLengths(request: [UInt8], responseCapacity: Int) throws(VMMError) -> (request: UInt32, response: UInt32) {
        let limit = IOMMUFD.maximumBufferSize
        guard request.count <= limit, let requestLength = UInt32(exactly: request.count) else {
            throw VMMError(.invalidArgument, step: .validateArguments,
                           reason: "request of \(request.count) bytes exceeds \(limit) bytes")
        }
        guard responseCapacity >= 0, responseCapacity <= limit, let responseLength = UInt32(exactly: responseCapacity) else {
            throw VMMError(.invalidArgument, step: .validateArguments,
                           reason: "response capacity \(responseCapacity) is outside 0...\(limit) bytes")
        }
        return (requestLength, responseLength)
    }

    /// User addresses of the request and response buffers; 0 for an empty one (spec 4.4: no
    /// buffer).
    fileprivate struct Buffers {
        var request: UInt64 = 0
        var response: UInt64 = 0
    }

    /// Maps and fills the request buffer, maps the response buffer. On failure unmaps what it
    /// mapped. Errors: ``VMMError/Code/kernelError`` at ``VMMStep/userMemory``.
    private func placeBuffers(request: [UInt8], responseCapacity: Int) throws(VMMError) -> Buffers {
        var buffers = Buffers()
        do throws(Errno) {
            if !request.isEmpty {
                buffers.request = try backend.mapUserBuffer(count: request.count)
                try backend.writeUserBuffer(at: buffers.request, request)
            }
            if responseCapacity > 0 {
                buffers.response = try backend.mapUserBuffer(count: responseCapacity)
            }
        } catch {
            release(buffers)
            throw VMMError.classify(error, step: .userMemory, subject: "a request/response buffer",
                                    environment: backend.environment)
        }
        return buffers
    }

    private func release(_ buffers: Buffers) {
        if buffers.request != 0 { try? backend.unmapUserBuffer(at: buffers.request) }
        if buffers.response != 0 { try? backend.unmapUserBuffer(at: buffers.response) }
    }

    /// Issues TSM_REQ with `value`, then reads the residue, the response bytes and `tsm_code`.
    private func issueGuestRequest<S: UAPIStruct>(_ value: S, buffers: Buffers, request: [UInt8],
                                                  responseCapacity: Int, vdevice: VDeviceID) throws(VMMError) -> TSMResponse {
        let command = profile.tsmReq
        let step = VMMStep.tsmReq
        var bytes = value.encode()
        let result: Int32
        do throws(Errno) {
            result = try backend.ioctl(fileDescriptor, request: command.request, argument: &bytes)
        } catch {
            throw VMMError.classify(error, step: step, subject: vdevice.description, environment: backend.environment,
                                    detail: requestDetail(command), tsmCode: tsmCode(in: bytes))
        }
        let tsmCode = tsmCode(in: bytes)
        // Spec 4.4: with a response buffer the residue counts its unfilled bytes, without one the
        // request's unconsumed bytes.
        let bound = buffers.response != 0 ? responseCapacity : request.count
        guard result >= 0, Int(result) <= bound else {
            throw VMMError(.invalidResidue, step: step,
                           reason: "\(backend.environment) returned residue \(result) for a buffer of \(bound) bytes", tsmCode: tsmCode)
        }
        var response: [UInt8] = []
        if buffers.response != 0 {
            do throws(Errno) {
                response = try backend.readUserBuffer(at: buffers.response, count: responseCapacity - Int(result))
            } catch {
                throw VMMError.classify(error, step: .userMemory, subject: "the response buffer",
                                        environment: backend.environment)
            }
        }
        return TSMResponse(bytes: response, residue: Int(result), tsmCode: tsmCode, responseCapacity: responseCapacity)
    }

    /// `tsm_code` (offset 40) read through the profile's layout, or nil when the layout has none.
    private func tsmCode(in bytes: [UInt8]) -> UInt64? {
        guard profile.tsmReqLayout.hasTSMCode else { return nil }
        return try? profile.tsmReqLayout.layout.get("tsm_code", from: bytes)
    }
}
