import SystemPackage
import Testing
@testable import UAPI

@Suite struct ProfileTests {
    @Test func namedProfiles() throws {
        #expect(try UAPIProfile.named("revised") == .revised)
        #expect(try UAPIProfile.named("v5") == .v5)
        #expect(try UAPIProfile.named("rev-k") == .revK)
        #expect(UAPIProfile.default == .revised)
        #expect(UAPIProfile.all.map(\.name) == ["revised", "v5", "rev-k"])
    }

    @Test func unknownProfileNamesTheChoices() {
        #expect(throws: UAPIProfileError.unknown("rev-x", valid: ["revised", "v5", "rev-k"])) {
            try UAPIProfile.named("rev-x")
        }
        let message = UAPIProfileError.unknown("", valid: ["revised", "v5", "rev-k"]).description
        #expect(message == "unknown uAPI profile ''; valid profiles: revised, v5, rev-k")
    }

    @Test func profileData() {
        #expect(UAPIProfile.revised.tsmReqLayout == .revised)
        #expect(UAPIProfile.v5.tsmReqLayout == .v5)
        #expect(UAPIProfile.revK.tsmReqLayout == .revised)
        #expect(UAPIProfile.revised.lastCommandNr == 0x96)
        #expect(UAPIProfile.v5.lastCommandNr == 0x96)
        #expect(UAPIProfile.revK.lastCommandNr == 0x97)
        #expect(UAPIProfile.revised.validOps.map(\.rawValue) == [1, 2, 3, 4, 5, 6, 7])
        #expect(UAPIProfile.revK.validOps.map(\.op) == [.validateMMIO, .setTDIState, .sevEnableDMA, .sevDisableDMA])
        #expect(UAPIProfile.v5.validOps.isEmpty)
        #expect(UAPIProfile.revK.rawValue(of: .validateMMIO) == 1)
        #expect(UAPIProfile.revised.rawValue(of: .validateMMIO) == 4)
        #expect(UAPIProfile.revK.rawValue(of: .readObject) == nil)
        #expect(UAPIProfile.revised.op(rawValue: 5) == .setTDIState)
    }

    @Test func mainlineCompatibility() throws {
        let v73 = try #require(KernelVersion(release: "7.3.4-amd64"))
        let v72 = try #require(KernelVersion(release: "7.2.12"))
        #expect(v73 == KernelVersion(7, 3, 4))
        #expect(UAPIProfile.revK.compatibility(with: v73) == .compatible)
        #expect(UAPIProfile.revised.compatibility(with: v72) == .compatible)
        guard case let .conflict(reason) = UAPIProfile.revised.compatibility(with: v73) else {
            Issue.record("revised must conflict with 7.3")
            return
        }
        #expect(reason.contains("IOMMU_IOAS_NOIOMMU_GET_PA"))
        #expect(UAPIProfile.v5.compatibility(with: KernelVersion(8, 0)) != .compatible)
        #expect(KernelVersion(release: "") == nil)
        #expect(KernelVersion(release: "linux") == nil)
        #expect(KernelVersion(release: "6") == nil)
        #expect(KernelVersion(release: "6.18.44-fc-v595") == KernelVersion(6, 18, 44))
        #expect(KernelVersion(release: "99999999999999999999.1") == nil)
    }

    /// Spec 2.2 step 1 and 0.1: which nr reach the table.
    @Test func dispatchSlots() {
        let revised = UAPIProfile.revised
        #expect(revised.dispatchSlot(forRequest: 0x3B7F) == .outsideTable)
        #expect(revised.dispatchSlot(forRequest: 0x3B97) == .outsideTable)
        #expect(revised.dispatchSlot(forRequest: 0x3B64) == .outsideTable)
        #expect(revised.dispatchSlot(forRequest: 0x3B96) == .command(revised.tsmReq))
        // Only the nr selects the slot; a different type byte still lands there (ENOTTY at step 3).
        #expect(revised.dispatchSlot(forRequest: 0x1296) == .command(revised.tsmReq))
        #expect(UAPIProfile.revK.dispatchSlot(forRequest: 0x3B97) == .command(UAPIProfile.revK.tsmReq))
        #expect(UAPIProfile.revK.dispatchSlot(forRequest: 0x3B98) == .outsideTable)
    }

    @Test func errnoNames() {
        #expect(Errno.invalidArgument.linuxName == "EINVAL")
        #expect(Errno.inappropriateIOCTLForDevice.linuxName == "ENOTTY")
        #expect(Errno.argListTooLong.linuxName == "E2BIG")
        #expect(Errno.badAddress.linuxName == "EFAULT")
        #expect(Errno(rawValue: 95).linuxName == "EOPNOTSUPP")
        #expect(Errno(rawValue: 77).linuxName == "EBADFD")
        #expect(Errno(rawValue: 4095).linuxName == "E4095")
        #expect(Errno(linuxName: "ENXIO") == Errno(rawValue: 6))
        #expect(Errno(linuxName: "E2BIG") == Errno(rawValue: 7))
        #expect(Errno(linuxName: "E42") == Errno(rawValue: 42))
        #expect(Errno(linuxName: "EWHAT") == nil)
        #expect(Errno(linuxName: "") == nil)
        #expect(Errno(linuxName: "E-1") == nil)
    }

    /// The section 0 table of the spec, name by name.
    @Test func errnoValuesOfSpecSection0() {
        let spec: [String: CInt] = [
            "EPERM": 1, "ENOENT": 2, "EINTR": 4, "ENXIO": 6, "E2BIG": 7, "EBADF": 9, "ENOMEM": 12, "EFAULT": 14,
            "EBUSY": 16, "EEXIST": 17, "ENODEV": 19, "EINVAL": 22, "ENOTTY": 25, "EOVERFLOW": 75,
            "EBADFD": 77, "EOPNOTSUPP": 95,
        ]
        for (name, value) in spec {
            #expect(Errno(linuxName: name)?.rawValue == value, "\(name)")
            #expect(Errno(rawValue: value).linuxName == name)
        }
    }

    #if os(Linux)
    /// On Linux the table equals the C library's constants, so swift-system names agree with it.
    @Test func errnoTableMatchesLibc() {
        #expect(Errno.notPermitted.linuxName == "EPERM")
        #expect(Errno.noSuchFileOrDirectory.linuxName == "ENOENT")
        #expect(Errno.interrupted.linuxName == "EINTR")
        #expect(Errno.noSuchAddressOrDevice.linuxName == "ENXIO")
        #expect(Errno.resourceBusy.linuxName == "EBUSY")
        #expect(Errno.fileExists.linuxName == "EEXIST")
        #expect(Errno.operationNotSupportedByDevice.linuxName == "ENODEV")
        #expect(Errno.overflow.linuxName == "EOVERFLOW")
        #expect(Errno.notSupportedOnSocket.linuxName == "EOPNOTSUPP")
        #expect(Errno.notSupported.linuxName == "EOPNOTSUPP")
        #expect(Errno.noMemory.linuxName == "ENOMEM")
        #expect(Errno.badFileDescriptor.linuxName == "EBADF")
        #expect(Errno.permissionDenied.linuxName == "EACCES")
        #expect(Errno.timedOut.linuxName == "ETIMEDOUT")
    }
    #endif
}
