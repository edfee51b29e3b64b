/// The Linux ioctl request-code encoding (asm-generic, as on x86-64, arm64 and riscv).
///
/// A request code packs four fields into 32 bits (Linux include/uapi/asm-generic/ioctl.h):
///
/// | bits  | width | field |
/// |-------|-------|-------|
/// | 0-7   | 8     | `nr` (command number) |
/// | 8-15  | 8     | `type` (the driver's letter; iommufd and VFIO both use `';'` = 0x3B) |
/// | 16-29 | 14    | `size` (argument size; 0 for `_IO`) |
/// | 30-31 | 2     | `dir` (0 none, 1 write, 2 read, 3 both) |
///
/// Every iommufd command is `_IO(IOMMUFD_TYPE, nr)`, so its request code is `0x3B00 | nr`
/// (spec kernel-uapi.md 2.1). On powerpc, mips and sparc `_IO` sets another direction bit; TSMKit
/// models the asm-generic encoding only.
public enum IoctlCode {
    /// `IOMMUFD_TYPE`, the character `';'` (0x3B), from Linux include/uapi/linux/iommufd.h.
    public static let iommufdType: UInt8 = 0x3B
    /// `VFIO_TYPE`, also `';'` (0x3B), from Linux include/uapi/linux/vfio.h.
    public static let vfioType: UInt8 = 0x3B
    /// `VFIO_BASE` (100): VFIO command numbers are `VFIO_BASE + n`.
    public static let vfioBase: UInt8 = 100

    /// Direction bits of `_IOC`.
    public enum Direction: UInt32, Sendable {
        case none = 0
        case write = 1
        case read = 2
        case readWrite = 3
    }

    /// `_IOC(dir, type, nr, size)`. `size` keeps its low 14 bits, as the kernel's macro does.
    public static func ioc(_ direction: Direction, type: UInt8, nr: UInt8, size: UInt32) -> UInt32 {
        (direction.rawValue << 30) | ((size & 0x3FFF) << 16) | (UInt32(type) << 8) | UInt32(nr)
    }

    /// `_IO(type, nr)`: no direction, no size.
    public static func io(type: UInt8, nr: UInt8) -> UInt32 {
        ioc(.none, type: type, nr: nr, size: 0)
    }

    /// `_IOC_NR(request)`: the low 8 bits.
    public static func nr(of request: UInt32) -> UInt8 { UInt8(truncatingIfNeeded: request) }

    /// `_IOC_TYPE(request)`: bits 8-15.
    public static func type(of request: UInt32) -> UInt8 { UInt8(truncatingIfNeeded: request >> 8) }

    /// `_IOC_SIZE(request)`: bits 16-29.
    public static func size(of request: UInt32) -> UInt32 { (request >> 16) & 0x3FFF }

    /// `_IOC_DIR(request)`: bits 30-31.
    public static func direction(of request: UInt32) -> Direction {
        Direction(rawValue: request >> 30) ?? .none
    }
}
