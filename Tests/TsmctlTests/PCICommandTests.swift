import Foundation
import Testing

/// `tsmctl pci`, run as a built executable: its stdout, stderr and exit status.
@Suite("tsmctl pci")
struct PCICommandTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let teeIO = root.appendingPathComponent("Examples/devices/tee-io-endpoint-sriov.lspci").path
    static let doe = root.appendingPathComponent("Examples/devices/doe-two-mailboxes.lspci").path

    /// Runs the built `tsmctl` through the shared ``CLIRunner``.
    static func tsmctl(_ arguments: String...) throws -> CLIResult {
        try CLIRunner.run(arguments)
    }

    @Test func teeIOText() throws {
        let result = try Self.tsmctl("pci", Self.teeIO)
        #expect(result.status == 0)
        #expect(result.stderr.isEmpty)
        let out = result.stdout
        #expect(out.hasPrefix("0000:e1:00.0 [aaaa:bbbb]  Class 0800: Device aaaa:bbbb\n"))
        #expect(out.contains("  DSM: can be a DSM (Endpoint, TEE-IO+, IDE+)\n"))
        #expect(out.contains("  BAR 0: 64-bit memory, prefetchable at 0x20014000000, size 0x4000000 (upper bound from alignment)\n"))
        #expect(out.contains("    [70] PCI Express v2 Endpoint: DevCap 0x512c8023 (TEE-IO+ FLReset+ MaxPayload 1024), link 32 GT/s x16\n"))
        #expect(out.contains("    [148 v1] Single Root I/O Virtualization (SR-IOV): InitialVFs 4, TotalVFs 4, NumVFs 0, VF offset 32, stride 1, VF device 50a5"))
        #expect(out.contains("    [830 v1] Integrity and Data Encryption (IDE): link streams 0, selective streams 1, IDE_KM+ TEE-limited+"))
        #expect(out.contains("    [e00 v2] Data Object Exchange: mailbox at 0xe00"))
        #expect(out.contains("  VFs (4):\n"))
        #expect(out.contains("    0000:e1:04.3 VF 4 [aaaa:50a5], RID e123, DSM: managed by 0000:e1:00.0"))
    }

    /// The whole text output for the DOE dump; every value is one its lspci text shows.
    @Test func doeTextExactly() throws {
        let result = try Self.tsmctl("pci", Self.doe)
        #expect(result.status == 0)
        #expect(result.stdout == """
            0000:df:00.0 [8086:0d93]  Class 0502: Device 8086:0d93 (rev 01) (prog-if 10)
              header: type 0 (endpoint), class 050210, revision 01, 4096-byte image (dump line 1)
              DSM: none (Endpoint, TEE-IO-, IDE-)
              BAR 0: 64-bit memory, non-prefetchable at 0x10800000, size 0x800000 (upper bound from alignment)
              BAR 2: 64-bit memory, non-prefetchable at 0x10810000, size 0x10000 (upper bound from alignment)
              BAR 4: 32-bit memory, non-prefetchable at 0x10811000, size 0x1000 (upper bound from alignment)
              Capabilities:
                [40] MSI-X: 2 vectors, table BAR 4 offset 0x0, PBA BAR 4 offset 0x800, Enable-
                [80] PCI Express v2 Endpoint: DevCap 0x8000 (TEE-IO- FLReset- MaxPayload 128), link 2.5 GT/s x1
              Extended capabilities:
                [100 v1] Data Object Exchange: mailbox at 0x100, IntSup+ (message 1) IntEn+ Busy- Error- ObjectReady+
                [130 v1] Data Object Exchange: mailbox at 0x130, IntSup- IntEn- Busy- Error- ObjectReady-

            """)
    }

    @Test func badVFCount() throws {
        let result = try Self.tsmctl("pci", Self.teeIO, "--vfs", "5")
        #expect(result.status == 2)
        #expect(result.stderr == "tsmctl pci: \(Self.teeIO): 0000:e1:00.0: 5 VFs requested, TotalVFs is 4\n")
    }

    @Test func doeJSON() throws {
        let result = try Self.tsmctl("pci", Self.doe, "--json")
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let devices = try #require(object?["devices"] as? [[String: Any]])
        #expect(devices.count == 1)
        let functions = try #require(devices.first?["functions"] as? [[String: Any]])
        let pf = try #require(functions.first)
        #expect(pf["bdf"] as? String == "0000:df:00.0")
        #expect(pf["vendorID"] as? String == "8086")
        #expect(pf["deviceID"] as? String == "0d93")
        #expect(pf["canBeDSM"] as? Bool == false)
        let capabilities = try #require(pf["capabilities"] as? [[String: Any]])
        let msix = try #require(capabilities.first { $0["name"] as? String == "MSI-X" })
        #expect(msix["tableBIR"] as? Int == 4)
        #expect(msix["tableOffset"] as? String == "0x0")
        #expect(msix["pbaBIR"] as? Int == 4)
        #expect(msix["pbaOffset"] as? String == "0x800")
        #expect(msix["tableSize"] as? Int == 2)
        let extended = try #require(pf["extendedCapabilities"] as? [[String: Any]])
        #expect(extended.compactMap { $0["mailbox"] as? String } == ["0x100", "0x130"])
        let bars = try #require(pf["bars"] as? [[String: Any]])
        #expect(bars.compactMap { $0["address"] as? String } == ["0x10800000", "0x10810000", "0x10811000"])
    }

    @Test func teeIOJSONHasVFs() throws {
        let result = try Self.tsmctl("pci", "--json", Self.teeIO)
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        let devices = try #require(object?["devices"] as? [[String: Any]])
        let functions = try #require(devices.first?["functions"] as? [[String: Any]])
        #expect(functions.compactMap { $0["bdf"] as? String }
            == ["0000:e1:00.0", "0000:e1:04.0", "0000:e1:04.1", "0000:e1:04.2", "0000:e1:04.3"])
        #expect(functions.compactMap { $0["role"] as? String } == ["PF", "VF", "VF", "VF", "VF"])
        #expect(functions.dropFirst().allSatisfy { $0["dsm"] as? String == "0000:e1:00.0" })
        #expect(functions.first?["teeIO"] as? Bool == true)
    }

    @Test func unreadableFile() throws {
        let result = try Self.tsmctl("pci", "/nonexistent/dump.lspci")
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("tsmctl pci: cannot read '/nonexistent/dump.lspci': "))
        #expect(result.stderr.filter { $0 == "\n" }.count == 1)
    }

    @Test func malformedDump() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tsmctl-pci-bad-\(getpid()).lspci")
        try "e1:00.0 Device\n00: aa bb zz\n".write(to: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: path) }
        let result = try Self.tsmctl("pci", path.path)
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "tsmctl pci: \(path.path): line 2, column 11: not a hex byte\n")
    }
}
