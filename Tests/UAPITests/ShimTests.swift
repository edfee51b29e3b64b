import CIOMMUFD
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The non-variadic ioctl shim reaches the real `ioctl` and reports errno.
@Suite struct ShimTests {
    @Test func badFileDescriptorIsEBADF() {
        var argument = [UInt8](repeating: 0, count: 48)
        let result = argument.withUnsafeMutableBytes { ciommufd_ioctl(-1, 0x3B96, $0.baseAddress) }
        #expect(result == -1)
        #expect(ciommufd_errno() == EBADF)
    }

    #if os(Linux)
    /// /dev/null is no iommufd: the TSM_REQ request code is an unknown ioctl there (ENOTTY = 25).
    @Test func notAnIOMMUFDIsENOTTY() throws {
        let fd = open("/dev/null", O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }
        var argument = [UInt8](repeating: 0, count: 48)
        argument[0] = 48
        let result = argument.withUnsafeMutableBytes { ciommufd_ioctl(fd, 0x3B96, $0.baseAddress) }
        #expect(result == -1)
        #expect(ciommufd_errno() == 25)
    }
    #endif
}
