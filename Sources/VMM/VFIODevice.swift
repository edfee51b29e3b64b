import SystemPackage
import UAPI
import Wire

/// An open VFIO device cdev (`/dev/vfio/devices/vfioN`): the owning handle.
///
/// `~Copyable` like ``IOMMUFD``: closed exactly once, by ``close()`` or when the value is
/// destroyed. Closing it destroys the iommufd DEVICE object made by ``bind(to:)`` and, with it,
/// a vDEVICE still on it (spec 0.1, 1.5); Appendix B therefore closes the VFIO device before it
/// destroys the IOAS.
///
/// The KVM association of Appendix B step 2 (`KVM_DEV_VFIO_FILE_ADD`) is not part of this type:
/// it must happen before ``bind(to:)`` for the DEVICE to capture the VM (spec 1.5).
public struct VFIODevice: ~Copyable, Sendable {
    /// The kernel this file lives in.
    public let backend: any IOMMUFDBackend
    /// The backend's file descriptor number. Not owned by whoever reads it: do not close it.
    public let fileDescriptor: Int32
    /// The path that was opened.
    public let path: String

    /// Opens the VFIO device cdev at `path` on `backend`.
    ///
    /// Errors at ``VMMStep/openVFIODevice``: ``VMMError/Code/vfioDeviceUnavailable`` (ENOENT,
    /// ENODEV, ENXIO), ``VMMError/Code/permissionDenied`` (EACCES, EPERM),
    /// ``VMMError/Code/kernelError`` otherwise (e.g. EBUSY: opened by another user).
    public static func open(_ path: String, backend: any IOMMUFDBackend) throws(VMMError) -> VFIODevice {
        let fd: Int32
        do throws(Errno) {
            fd = try backend.open(path)
        } catch {
            throw VMMError.classify(error, step: .openVFIODevice, subject: path, environment: backend.environment)
        }
        return VFIODevice(backend: backend, fileDescriptor: fd, path: path)
    }

    private init(backend: any IOMMUFDBackend, fileDescriptor: Int32, path: String) {
        self.backend = backend
        self.fileDescriptor = fileDescriptor
        self.path = path
    }

    /// Set by ``close()`` so that `deinit` does not close the descriptor a second time.
    private var closed = false

    deinit {
        if !closed { try? backend.close(fileDescriptor) }
    }

    /// Closes the device file (destroying its DEVICE object). Errors: ``VMMError/Code/kernelError``
    /// at ``VMMStep/closeVFIODevice`` with the errno of `close(2)`.
    public consuming func close() throws(VMMError) {
        closed = true
        do throws(Errno) {
            try backend.close(fileDescriptor)
        } catch {
            throw VMMError.classify(error, step: .closeVFIODevice, subject: path, environment: backend.environment)
        }
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD` (request 0x3B76, struct `vfio_device_bind_iommufd`, 24 bytes,
    /// `argsz` 24, `flags` 0, `iommufd` = the iommufd's descriptor) → the DEVICE object ID
    /// (`out_devid`, spec 1.5).
    ///
    /// Errors: ``VMMError/Code/backendMismatch`` (the iommufd is from another backend; nothing
    /// issued); at ``VMMStep/vfioBind``: ``VMMError/Code/notVFIODevice`` (ENOTTY),
    /// ``VMMError/Code/kernelError`` with EINVAL (bad iommufd, already bound), EBADF, ...
    public func bind(to iommufd: borrowing IOMMUFD) throws(VMMError) -> DevID {
        guard iommufd.backend === backend else {
            throw VMMError(.backendMismatch, step: .vfioBind,
                           reason: "\(path) is open on \(backend.environment) but the iommufd on \(iommufd.backend.environment)")
        }
        let command = CommandSpec.vfioDeviceBindIOMMUFD
        var bytes = VFIODeviceBindIOMMUFD(iommufd: iommufd.fileDescriptor).encode()
        do throws(Errno) {
            _ = try backend.ioctl(fileDescriptor, request: command.request, argument: &bytes)
        } catch {
            throw VMMError.classify(error, step: .vfioBind, subject: path, environment: backend.environment,
                                    detail: " (request 0x\(String(command.request, radix: 16, uppercase: true)))")
        }
        do throws(WireError) {
            return DevID(try VFIODeviceBindIOMMUFD(bytes: bytes).outDevID)
        } catch {
            throw VMMError(.malformedReply, step: .vfioBind,
                           reason: "the backend returned \(bytes.count) bytes for struct vfio_device_bind_iommufd (24 bytes): \(error)")
        }
    }

    /// `ioctl(fileDescriptor, request, argument)` on this device file, unchecked.
    public func ioctl(request: UInt32, argument: inout [UInt8]) throws(Errno) -> Int32 {
        try backend.ioctl(fileDescriptor, request: request, argument: &argument)
    }
}
