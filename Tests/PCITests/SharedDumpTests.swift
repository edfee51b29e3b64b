import Testing
@testable import PCI

/// The TEE-IO dump (pciutils tests/cap-ide) decodes to what its own `lspci -vvv` text shows.
@Suite("Shared dump: tee-io-endpoint-sriov")
struct TEEIODumpTests {
    let device: LspciDump.Device

    init() throws {
        let dump = try LspciDump.parse(Fixtures.teeIO)
        #expect(dump.devices.count == 1)
        device = try #require(dump.devices.first)
    }

    var config: ConfigSpace { device.config }

    @Test func header() throws {
        // "e1:00.0 Class 0800: Device aaaa:bbbb"
        #expect(device.bdf == BDF(bus: 0xe1, device: 0, function: 0))
        #expect(device.line == 1)
        #expect(device.title == "Class 0800: Device aaaa:bbbb")
        #expect(config.vendorID == 0xaaaa)
        #expect(config.deviceID == 0xbbbb)
        #expect(config.classCode == 0x08_00_00)
        #expect(config.headerType == .type0)
        #expect(config.isMultiFunction)
        #expect(config.hasExtendedSpace)
        #expect(config.status & 0x10 != 0)  // "Status: Cap+"
        #expect(config.warnings.isEmpty)
    }

    @Test func bars() throws {
        // "Region 0: Memory at 20014000000 (64-bit, prefetchable)" and
        // "Region 2: Memory at 20018013000 (64-bit, prefetchable)"; no [size=] (BARs disabled).
        #expect(config.bars.map(\.index) == [0, 2])
        let bar0 = try #require(config.bars.first)
        #expect(bar0.space == .memory64)
        #expect(bar0.isPrefetchable)
        #expect(bar0.address == 0x200_1400_0000)
        #expect(bar0.registerOffset == 0x10)
        #expect(bar0.size == 0x400_0000)  // lowest set bit of the address: 64 MiB upper bound
        #expect(bar0.sizeSource == .derivedFromAlignment)
        let bar2 = try #require(config.bars.last)
        #expect(bar2.space == .memory64)
        #expect(bar2.isPrefetchable)
        #expect(bar2.address == 0x200_1801_3000)
        #expect(bar2.size == 0x1000)
        // "Expansion ROM at dc2c0000 [disabled]"
        let rom = try #require(config.expansionROM)
        #expect(rom.address == 0xdc2c_0000)
        #expect(!rom.isEnabled)
    }

    @Test func capabilityList() throws {
        // "Capabilities: [40] Power Management version 3", "[70] Express (v2) Endpoint"
        #expect(config.capabilities.map(\.offset) == [0x40, 0x70])
        #expect(config.capabilities.map(\.id) == [0x01, 0x10])
        let express = try #require(config.express)
        #expect(express.offset == 0x70)
        #expect(express.version == 2)
        #expect(express.portType == .endpoint)
        // "DevCap: MaxPayload 1024 bytes ... FLReset+ ... TEE-IO+"
        #expect(express.deviceCapabilities == 0x512c_8023)
        #expect(express.teeIOSupported)
        #expect(express.flrSupported)
        #expect(express.maxPayloadSize == 1024)
        // "LnkCap: Port #0, Speed 32GT/s, Width x16"
        #expect(express.maxLinkSpeedText == "32")
        #expect(express.maxLinkWidth == 16)
        #expect(express.portNumber == 0)
        #expect(config.msix == nil)  // the MSI-X bytes at 0x60 are not on the list
    }

    @Test func extendedCapabilityList() {
        // The [offset vN] lines of the text, in order.
        #expect(config.extendedCapabilities.map(\.offset)
            == [0x100, 0x148, 0x188, 0x1c0, 0x3b0, 0x400, 0x450, 0x460, 0x5f0, 0x830, 0xe00])
        #expect(config.extendedCapabilities.map(\.id)
            == [0x0001, 0x0010, 0x000e, 0x0019, 0x0026, 0x0027, 0x000d, 0x002a, 0x001b, 0x0030, 0x002e])
        #expect(config.extendedCapabilities.map(\.version) == [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2])
        #expect(config.extendedCapabilities.first?.name == "Advanced Error Reporting")
    }

    @Test func sriov() throws {
        let sriov = try #require(config.sriov)
        #expect(sriov.offset == 0x148)
        // "Initial VFs: 4, Total VFs: 4, Number of VFs: 0, Function Dependency Link: 00"
        #expect(sriov.initialVFs == 4)
        #expect(sriov.totalVFs == 4)
        #expect(sriov.numVFs == 0)
        #expect(sriov.functionDependencyLink == 0)
        // "VF offset: 32, stride: 1, Device ID: 50a5"
        #expect(sriov.firstVFOffset == 32)
        #expect(sriov.vfStride == 1)
        #expect(sriov.vfDeviceID == 0x50a5)
        // "Supported Page Size: 00000553, System Page Size: 00000001"
        #expect(sriov.supportedPageSizes == 0x553)
        #expect(sriov.systemPageSize == 0x1)
        // "IOVCtl: Enable- ... ARIHierarchy+"
        #expect(!sriov.vfEnabled)
        #expect(sriov.ariCapableHierarchy)
        #expect(!sriov.vfMemorySpaceEnabled)
        // "Region 0: Memory at 000001fff8000000 (64-bit, prefetchable)",
        // "Region 2: Memory at 000002001800c000 (64-bit, prefetchable)"
        #expect(sriov.vfBARs.map(\.index) == [0, 2])
        #expect(sriov.vfBARs.map(\.address) == [0x1ff_f800_0000, 0x200_1800_c000])
        #expect(sriov.vfBARs.allSatisfy { $0.space == .memory64 && $0.isPrefetchable })
        #expect(sriov.vfBARs.map(\.registerOffset) == [0x16c, 0x174])
        #expect(sriov.vfBARs.map(\.size) == [0x800_0000, 0x4000])
        // "VF Migration: offset: 00000000, BIR: 0"
        #expect(sriov.vfMigrationStateArray == 0)
    }

    @Test func ariAndPASID() throws {
        // "ARICap: MFVC- ACS-, Next Function: 1"
        let ari = try #require(config.ari)
        #expect(ari.offset == 0x188)
        #expect(ari.nextFunctionNumber == 1)
        #expect(!ari.mfvcFunctionGroupsSupported)
        #expect(!ari.acsFunctionGroupsSupported)
        #expect(ari.functionGroup == 0)
        // "PASIDCap: Exec+ Priv+, Max PASID Width: 10" (hex) / "PASIDCtl: Enable+ Exec- Priv-"
        let pasid = try #require(config.pasid)
        #expect(pasid.offset == 0x5f0)
        #expect(pasid.executePermissionSupported)
        #expect(pasid.privilegedModeSupported)
        #expect(pasid.maxPASIDWidth == 0x10)
        #expect(pasid.isEnabled)
        #expect(!pasid.executePermissionEnabled)
        #expect(!pasid.privilegedModeEnabled)
        #expect(config.ats == nil)
    }

    @Test func ide() throws {
        // "IDECap: Lnk=0 Sel=1 FlowThru- PartHdr- Aggr- PCPC- IDE_KM+ SelCfg- Alg='AES-GCM-256-96b' TCs=8 TeeLim+ XT-"
        let ide = try #require(config.ide)
        #expect(ide.offset == 0x830)
        #expect(ide.capabilities == 0x0100_e042)
        #expect(!ide.linkIDESupported)
        #expect(ide.linkStreamCount == 0)
        #expect(ide.selectiveIDESupported)
        #expect(ide.selectiveStreamCount == 1)
        #expect(!ide.flowThroughSupported)
        #expect(!ide.partialHeaderEncryptionSupported)
        #expect(!ide.aggregationSupported)
        #expect(!ide.pcrcSupported)
        #expect(ide.ideKMSupported)
        #expect(!ide.selectiveIDEForConfigurationSupported)
        #expect(ide.supportedAlgorithms == 0)
        #expect(ide.linkTrafficClassCount == 8)
        #expect(ide.teeLimitedStreamSupported)
        #expect(!ide.xtSupported)
        // "SelectiveIDE#0 Cap: RID#=1", "Sta: secure", "RID: Valid+ Base=0 Limit=ffff SegBase=0"
        #expect(ide.linkStreams.isEmpty)
        let stream = try #require(ide.selectiveStreams.first)
        #expect(ide.selectiveStreams.count == 1)
        #expect(stream.offset == 0x83c)
        #expect(stream.addressAssociationCount == 1)
        #expect(stream.state == 2)
        #expect(stream.ridAssociationValid)
        #expect(stream.ridBase == 0)
        #expect(stream.ridLimit == 0xffff)
        // The bytes hold control 0x00400001 (Enable, Default Stream) although the text prints
        // "En-": the model follows the bytes.
        #expect(stream.control == 0x0040_0001)
        #expect(stream.isDefaultStream)
    }

    @Test func doe() throws {
        // "Capabilities: [e00 v2] Data Object Exchange": "DOECap: IntSup-", "DOECtl: IntEn-",
        // "DOESta: Busy- IntSta- Error- ObjectReady-"
        #expect(config.doeMailboxes.map(\.offset) == [0xe00])
        let doe = try #require(config.doeMailboxes.first)
        #expect(!doe.interruptSupported)
        #expect(!doe.interruptEnabled)
        #expect(!doe.isBusy)
        #expect(!doe.interruptStatus)
        #expect(!doe.hasError)
        #expect(!doe.dataObjectReady)
        #expect(doe.writeMailboxOffset == 0xe10)
        #expect(doe.readMailboxOffset == 0xe14)
    }

    @Test func canBeDSM() throws {
        let function = PCIFunction(bdf: device.bdf, config: config)
        #expect(function.hasIDECapability)
        #expect(function.teeIOSupported)
        #expect(function.canBeDSM)
    }
}

/// The DOE dump (pciutils tests/cap-doe) decodes to what its own `lspci -vvv` text shows.
@Suite("Shared dump: doe-two-mailboxes")
struct DOEDumpTests {
    let device: LspciDump.Device

    init() throws {
        device = try #require(try LspciDump.parse(Fixtures.doe).devices.first)
    }

    var config: ConfigSpace { device.config }

    @Test func header() {
        // "df:00.0 Class 0502: Device 8086:0d93 (rev 01) (prog-if 10)", "Subsystem: Device 1af4:1100"
        #expect(device.bdf.description == "0000:df:00.0")
        #expect(config.vendorID == 0x8086)
        #expect(config.deviceID == 0x0d93)
        #expect(config.revisionID == 0x01)
        #expect(config.classCode == 0x05_02_10)
        #expect(config.subsystemVendorID == 0x1af4)
        #expect(config.subsystemID == 0x1100)
        #expect(!config.isMultiFunction)
        #expect(config.warnings.isEmpty)
    }

    @Test func bars() {
        // "Region 0: Memory at 10800000 (64-bit, non-prefetchable)", "Region 2: Memory at 10810000
        // (64-bit, non-prefetchable)", "Region 4: Memory at 10811000 (32-bit, non-prefetchable)"
        #expect(config.bars.map(\.index) == [0, 2, 4])
        #expect(config.bars.map(\.address) == [0x1080_0000, 0x1081_0000, 0x1081_1000])
        #expect(config.bars.map(\.space) == [.memory64, .memory64, .memory32])
        #expect(config.bars.allSatisfy { !$0.isPrefetchable })
        #expect(config.bars.map(\.size) == [0x80_0000, 0x1_0000, 0x1000])
        #expect(config.bars.allSatisfy { $0.sizeSource == .derivedFromAlignment })
        #expect(config.expansionROM == nil)
    }

    @Test func msix() throws {
        // "MSI-X: Enable- Count=2 Masked-", "Vector table: BAR=4 offset=00000000",
        // "PBA: BAR=4 offset=00000800"
        let msix = try #require(config.msix)
        #expect(msix.offset == 0x40)
        #expect(msix.tableSize == 2)
        #expect(!msix.isEnabled)
        #expect(!msix.isFunctionMasked)
        #expect(msix.tableBIR == 4)
        #expect(msix.tableOffset == 0)
        #expect(msix.pbaBIR == 4)
        #expect(msix.pbaOffset == 0x800)
        #expect(msix.tableByteCount == 32)
        #expect(msix.pbaByteCount == 8)
        // Table and PBA fall inside BAR 4 (4 KiB at 0x10811000 at most).
        let bar4 = try #require(config.bars.first { $0.index == Int(msix.tableBIR) })
        #expect(bar4.contains(bar4.address + UInt64(msix.tableOffset)))
        #expect(bar4.contains(bar4.address + UInt64(msix.pbaOffset) + UInt64(msix.pbaByteCount) - 1))
    }

    @Test func express() throws {
        // "[80] Express (v2) Endpoint, MSI 00", "MaxPayload 128 bytes ... RBE+ FLReset-", no TEE-IO
        let express = try #require(config.express)
        #expect(express.offset == 0x80)
        #expect(express.version == 2)
        #expect(express.portType == .endpoint)
        #expect(express.maxPayloadSize == 128)
        #expect(!express.flrSupported)
        #expect(!express.teeIOSupported)
        #expect(express.deviceCapabilities & 0x8000 != 0)  // RBE+
        // "LnkCap: Port #0, Speed 2.5GT/s, Width x1"
        #expect(express.maxLinkSpeedText == "2.5")
        #expect(express.maxLinkWidth == 1)
        #expect(config.capabilities.map(\.offset) == [0x40, 0x80])
    }

    @Test func mailboxes() throws {
        // "[100 v1] Data Object Exchange": IntSup+, message 001, IntEn+, ObjectReady+
        // "[130 v1] Data Object Exchange": everything -
        #expect(config.doeMailboxes.map(\.offset) == [0x100, 0x130])
        #expect(config.extendedCapabilities.map(\.version) == [1, 1])
        let first = try #require(config.doeMailboxes.first)
        #expect(first.interruptSupported)
        #expect(first.interruptMessageNumber == 1)
        #expect(first.interruptEnabled)
        #expect(first.dataObjectReady)
        #expect(!first.isBusy)
        #expect(!first.hasError)
        let second = try #require(config.doeMailboxes.last)
        #expect(!second.interruptSupported)
        #expect(!second.interruptEnabled)
        #expect(!second.dataObjectReady)
    }

    @Test func notADSM() {
        let function = PCIFunction(bdf: device.bdf, config: config)
        #expect(!function.hasIDECapability)
        #expect(!function.teeIOSupported)
        #expect(!function.canBeDSM)
    }
}
