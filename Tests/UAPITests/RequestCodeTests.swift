import Testing
@testable import UAPI

/// Request codes: `_IO(';', nr)` (spec 2.1), against literal values from the spec and the system's
/// own `_IO` macro (through the C table).
@Suite struct RequestCodeTests {
    @Test func tsmReqRequestCodes() {
        // The acceptance value: revised TSM_REQ = 0x3B96 = 15254.
        #expect(UAPIProfile.revised.tsmReq.request == 0x3B96)
        #expect(UAPIProfile.revised.tsmReq.request == 15254)
        #expect(UAPIProfile.v5.tsmReq.request == 0x3B96)
        #expect(UAPIProfile.revK.tsmReq.request == 0x3B97)
        #expect(UAPIProfile.revised.tsmOp.request == 0x3B95)
        #expect(UAPIProfile.revK.tsmOp.request == 0x3B96)
        #expect(CommandSpec.vfioDeviceBindIOMMUFD.request == 0x3B76)
    }

    @Test func ioEncoding() {
        #expect(IoctlCode.io(type: 0x3B, nr: 0x80) == 0x3B80)
        #expect(IoctlCode.nr(of: 0x3B96) == 0x96)
        #expect(IoctlCode.type(of: 0x3B96) == 0x3B)
        // _IOWR('T', 1, 8 bytes) as an asm-generic example: dir 3, size 8, type 0x54, nr 1.
        #expect(IoctlCode.ioc(.readWrite, type: 0x54, nr: 1, size: 8) == 0xC008_5401)
        #expect(IoctlCode.direction(of: 0xC008_5401) == .readWrite)
        #expect(IoctlCode.size(of: 0xC008_5401) == 8)
    }

    /// Every modelled command of every profile: nr, request code and minimum size as the C compiler
    /// computes them (`_IO`, `offsetofend`).
    @Test(arguments: UAPIProfile.all)
    func commandsMatchCompiler(_ profile: UAPIProfile) throws {
        for command in profile.commands {
            guard let layout = command.layout else { continue }
            let row = try #require(CTable.commands.first { $0.nr == command.nr && $0.structName == layout.cName },
                                   "\(profile.name) \(command.name) has no C row")
            #if os(Linux)
            #expect(UInt(command.request) == row.request, "\(profile.name) \(command.name)")
            #endif
            #expect(command.minimumSize == row.minimumSize, "\(profile.name) \(command.name) minimum")
        }
    }

    @Test func vfioBindMatchesCompiler() throws {
        let row = try #require(CTable.commands.first { $0.name == "VFIO_DEVICE_BIND_IOMMUFD" })
        #if os(Linux)
        #expect(row.request == 0x3B76)
        #endif
        #expect(CommandSpec.vfioDeviceBindIOMMUFD.minimumSize == row.minimumSize)
        #expect(row.minimumSize == 16)
        #expect(row.nr == 118)
    }

    /// Spec 2.1 table: minimum sizes.
    @Test func specMinimumSizes() {
        let profile = UAPIProfile.revised
        #expect(profile.command(.destroy)?.minimumSize == 8)
        #expect(profile.command(.ioasAlloc)?.minimumSize == 12)
        #expect(profile.command(.hwptAlloc)?.minimumSize == 24)
        #expect(profile.command(.viommuAlloc)?.minimumSize == 24)
        #expect(profile.command(.vdeviceAlloc)?.minimumSize == 24)
        #expect(profile.command(.vdeviceTSMOp)?.minimumSize == 16)
        #expect(profile.command(.vdeviceTSMReq)?.minimumSize == 48)
        #expect(UAPIProfile.v5.command(.vdeviceTSMReq)?.minimumSize == 40)
        #expect(UAPIProfile.revK.command(.vdeviceTSMReq)?.minimumSize == 48)
        #expect(UAPIProfile.revK.command(.ioasNoIOMMUGetPA)?.nr == 0x95)
        #expect(UAPIProfile.revised.command(.ioasNoIOMMUGetPA) == nil)
    }

    @Test(arguments: UAPIProfile.all)
    func tableIsContiguousFrom0x80(_ profile: UAPIProfile) {
        let nrs = profile.commands.map(\.nr)
        #expect(nrs == Array(0x80...profile.lastCommandNr))
        for command in profile.commands {
            #expect(command.request == 0x3B00 | UInt32(command.nr))
        }
    }
}
