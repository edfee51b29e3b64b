import Foundation
import Testing

/// `tsmctl assign` through the built executable (docs/assign.md; issue 6 deliverables 3 and 4):
/// the PF and a VF of the SR-IOV TEE-IO endpoint reach RUN with verified evidence on every
/// architecture; tampering is refused with its reason; bad input is one line and exit status 2.
@Suite("tsmctl assign")
struct AssignCommandTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let sriov = root.appendingPathComponent("Examples/devices/tee-io-endpoint-sriov.lspci").path
    static let doeTwoMailboxes = root.appendingPathComponent("Examples/devices/doe-two-mailboxes.lspci").path

    static func assign(_ arguments: [String]) throws -> CLIResult {
        try CLIRunner.run(["assign"] + arguments)
    }

    static func scratch(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("assign-test-\(UUID().uuidString)-\(name)").path
    }

    /// The dump's PF e1:00.0 (the DSM itself) and its VF 1 (routing ID 0xE120: the dump's First
    /// VF Offset) on each architecture.
    @Test("PF and VF reach RUN with verified evidence", arguments: ["cca", "sev", "tdx"], [[String](), ["--vf", "1"]])
    func succeeds(arch: String, pick: [String]) throws {
        let result = try Self.assign(["--arch", arch, "--device", Self.sriov] + pick)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("OK: TDI reached RUN; evidence verified"))
        #expect(result.stdout.contains("IOMMU_VDEVICE_TSM_OP BIND"))
        #expect(result.stdout.contains("TDI: RUN"))
        // Torn down in order: the DSM reports CONFIG_UNLOCKED after UNBIND.
        #expect(result.stdout.contains("IOMMU_VDEVICE_TSM_OP UNBIND"))
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let unbind = try #require(lines.firstIndex { $0.contains("IOMMU_VDEVICE_TSM_OP UNBIND") })
        #expect(lines[unbind + 1].contains("TDI: CONFIG_UNLOCKED"))
        if pick.isEmpty {
            #expect(result.stdout.contains("tsmctl assign: 0000:e1:00.0 (DSM 0000:e1:00.0)"))
        } else {
            #expect(result.stdout.contains("tsmctl assign: 0000:e1:04.0 (DSM 0000:e1:00.0)"))
        }
    }

    /// rev-k numbers no object ops (kernel-uapi.md, EMU-ARCH-2): the guest reads every object from
    /// the host's copy, still checked against the TSM's digests, so tampering is still refused.
    @Test("profile rev-k: RUN with the objects from the host's copy; tampering still refused", arguments: ["cca", "sev", "tdx"])
    func revK(arch: String) throws {
        let result = try Self.assign(["--arch", arch, "--device", Self.sriov, "--vf", "4", "--profile", "rev-k"])
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("profile rev-k"))
        #expect(!result.stdout.contains("READ_OBJECT"))
        let tampered = try Self.assign(["--arch", arch, "--device", Self.sriov, "--profile", "rev-k", "--tamper", "report"])
        #expect(tampered.status == 1)
        #expect(tampered.stdout.contains("(reportDigestMismatch)"))
    }

    @Test("--keep leaves the TDI in RUN and skips the teardown")
    func keep() throws {
        let result = try Self.assign(["--arch", "cca", "--device", Self.sriov, "--vf", "2", "--keep"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stdout.contains("UNBIND"))
        #expect(result.stdout.contains("kept assigned, TDI RUN"))
    }

    @Test("--json carries the same outcome")
    func json() throws {
        let result = try Self.assign(["--arch", "sev", "--device", Self.sriov, "--json"])
        #expect(result.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["reachedRun"] as? Bool == true)
        #expect(object["evidenceVerified"] as? Bool == true)
        #expect(object["arch"] as? String == "sev")
        #expect(object["succeeded"] as? Bool == true)
        #expect(object["tornDown"] as? Bool == true)
        #expect(object["finalState"] as? String == "CONFIG_UNLOCKED")
        let steps = try #require(object["steps"] as? [[String: Any]])
        #expect(steps.contains { ($0["tdiState"] as? String) == "RUN" })
    }

    /// docs/guest.md §3: each tampered object fails its own check.
    @Test("tampering is refused with its reason", arguments: [
        ("certificate", "certificateUntrusted"),
        ("measurements", "measurementsInvalid"),
        ("report", "reportDigestMismatch"),
    ], ["cca", "sev", "tdx"])
    func tamper(target: (String, String), arch: String) throws {
        let result = try Self.assign(["--arch", arch, "--device", Self.sriov, "--vf", "1", "--tamper", target.0])
        #expect(result.status == 1, "\(result.stdout)")
        #expect(result.stdout.contains("evidence not verified; guest did not accept the device (\(target.1))"), "\(result.stdout)")
        #expect(!result.stdout.contains("TDI: RUN"))
    }

    /// START_INTERFACE_REQUEST (0x86) answered with TDISP_ERROR INVALID_NONCE (0x0102, TDISP 1.0
    /// error codes): RUN is never reached, but the evidence was verified before it.
    @Test("a TDISP fault at START_INTERFACE stops the flow after the evidence checks", arguments: ["cca", "sev", "tdx"])
    func tdispFault(arch: String) throws {
        let result = try Self.assign(["--arch", arch, "--device", Self.sriov, "--vf", "1", "--fault", "tdisp:0x86=error:0x102"])
        #expect(result.status == 1, "\(result.stdout)")
        #expect(result.stdout.contains("SET_TDI_STATE [FAILED]"))
        #expect(result.stdout.contains("FAILED: TDI did not reach RUN; evidence verified; guest did not accept the device (hostRequestFailed)"))
    }

    @Test("an injected firmware fault stops the flow; the summary names the fault and that the guest never ran")
    func fault() throws {
        let result = try Self.assign(["--arch", "sev", "--device", Self.sriov, "--fault", "fw:TDI_BIND=0x3c"])
        #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("IOMMU_VDEVICE_TSM_OP BIND [FAILED]"))
        #expect(result.stdout.contains("result: IOMMU_VDEVICE_TSM_OP on vDEVICE 5 failed with EIO"))
        #expect(!result.stdout.contains("IOMMU_VDEVICE_TSM_OP: IOMMU_VDEVICE_TSM_OP"))
        #expect(result.stdout.contains("FAILED: TDI did not reach RUN; evidence not checked (the guest did not start)"))
        #expect(result.stdout.contains("; injected: fw:TDI_BIND=0x3c;"))
        let json = try Self.assign(["--arch", "sev", "--device", Self.sriov, "--fault", "fw:TDI_BIND=0x3c", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["faults"] as? [String] == ["fw:TDI_BIND=0x3c"])
        #expect(object["guestRan"] as? Bool == false)
    }

    /// arch-backends.md: TDI_BIND is a SEV PSP command; the CCA RMM has no such call, so the rule
    /// cannot fire and the run succeeds — the summary says so instead of implying a fault happened.
    @Test("a fault rule whose call the architecture never makes is reported as never matched")
    func unmatchedFault() throws {
        let result = try Self.assign(["--arch", "cca", "--device", Self.sriov, "--fault", "fw:TDI_BIND=0x3c", "--json"])
        #expect(result.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["unmatchedFaults"] as? [String] == ["fw:TDI_BIND=0x3c"])
        let text = try Self.assign(["--arch", "cca", "--device", Self.sriov, "--fault", "fw:TDI_BIND=0x3c"])
        #expect(text.stdout.contains("injected: fw:TDI_BIND=0x3c (never matched in this run: no effect)"))
        let fired = try Self.assign(["--arch", "sev", "--device", Self.sriov, "--fault", "fw:TDI_BIND=0x3c", "--json"])
        let sev = try #require(try JSONSerialization.jsonObject(with: Data(fired.stdout.utf8)) as? [String: Any])
        #expect(sev["unmatchedFaults"] as? [String] == [])
    }

    @Test("--tamper takes its choice in any case")
    func tamperCase() throws {
        let result = try Self.assign(["--arch", "cca", "--device", Self.sriov, "--tamper", "Report"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("(reportDigestMismatch)"))
    }

    @Test("bad input: one line, exit status 2", arguments: [
        (["--arch", "cca", "--device", "DOE"], "has no function that can be a TDI: no DSM"),
        (["--arch", "cca", "--device", "DOE", "--function", "df:00.0"], "0000:df:00.0 in "),
        (["--arch", "cca", "--device", "SRIOV", "--function", "e1:00"], "--function e1:00 is not a PCI address"),
        (["--arch", "cca", "--device", "SRIOV", "--function", "e1:07.0"],
         "--function e1:07.0: no such function in SRIOV (physical functions: 0000:e1:00.0 with 4 VFs, --vf 1…4)"),
        (["--arch", "cca", "--device", "SRIOV", "--device", "SRIOV"], "do not form one topology (is a dump given twice?)"),
        (["--arch", "cca", "--device", "SRIOV", "--trace", "/nonexistent/dir/t.jsonl"], "cannot write --trace /nonexistent/dir/t.jsonl"),
        (["--arch", "cca", "--device", "SRIOV", "--diagram", "/"], "cannot write --diagram /"),
        (["--arch", "sev", "--device", "SRIOV", "--backend", "linux", "--fault", "fw:TDI_BIND=0x3c"],
         "--fault works with --backend simulated only"),
        (["--arch", "sev", "--device", "SRIOV", "--backend", "linux", "--tamper", "report"],
         "--tamper works with --backend simulated only"),
        (["--arch", "cca", "--device", "SRIOV", "--vf", "5"], "--vf 5: 0000:e1:00.0 has 4 VFs (TotalVFs) in "),
        (["--arch", "cca", "--device", "SRIOV", "--vf", "0"], "--vf 0"),
        (["--arch", "arm", "--device", "SRIOV"], "--arch arm: not an architecture"),
        (["--arch", "cca", "--device", "SRIOV", "--tamper", "bar"], "--tamper bar"),
        (["--arch", "cca", "--device", "SRIOV", "--fault", "nonsense"], "--fault"),
        (["--arch", "cca", "--device", "SRIOV", "--profile", "v5"], "profile 'v5'"),
        (["--arch", "cca", "--device", "NOTCONFIG"], "is not a PCI configuration space dump"),
        (["--arch", "cca", "--device", "/nonexistent/x.lspci"], "--device /nonexistent/x.lspci: cannot read"),
    ])
    func badInput(arguments: [String], message: String) throws {
        let junk = Self.scratch("junk.lspci")
        try "hello, this is not lspci output\n00: zz\n".write(toFile: junk, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: junk) }
        let resolved = arguments.map { argument in
            switch argument {
            case "DOE": return Self.doeTwoMailboxes
            case "SRIOV": return Self.sriov
            case "NOTCONFIG": return junk
            default: return argument
            }
        }
        let result = try Self.assign(resolved)
        #expect(result.status == 2, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stderr.contains(message.replacingOccurrences(of: "SRIOV", with: Self.sriov)), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stdout.isEmpty)
    }

    /// Issue 6 "Bad input": a trust anchor that does not match is one line and exit status 2.
    @Test("--trust-anchor: another vendor's root, and a file that is no certificate, exit 2")
    func trustAnchor() throws {
        let other = Self.root.appendingPathComponent("Examples/anchors/other-vendor-root.pem").path
        let result = try Self.assign(["--arch", "cca", "--device", Self.sriov, "--trust-anchor", other])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--trust-anchor \(other): the device's certificate chain does not verify to it"))
        #expect(result.stderr.split(separator: "\n").count == 1)
        let notCertificate = Self.root.appendingPathComponent("Examples/devices/SOURCES.md").path
        let bad = try Self.assign(["--arch", "sev", "--device", Self.sriov, "--trust-anchor", notCertificate])
        #expect(bad.status == 2)
        #expect(bad.stderr == "tsmctl assign: --trust-anchor \(notCertificate): not an X.509 certificate (PEM or DER)\n")
    }

    @Test("the doe-two-mailboxes dump is refused, naming the function and the file")
    func doeRefused() throws {
        let result = try Self.assign(["--arch", "tdx", "--device", Self.doeTwoMailboxes])
        #expect(result.status == 2)
        #expect(result.stderr.contains("doe-two-mailboxes.lspci"))
        #expect(result.stderr.contains("no DSM"))
        let named = try Self.assign(["--arch", "tdx", "--device", Self.doeTwoMailboxes, "--function", "df:00.0"])
        #expect(named.status == 2)
        #expect(named.stderr.contains("0000:df:00.0 in \(Self.doeTwoMailboxes) cannot be a TDI: no DSM above it"))
    }

    @Test("--backend linux fails cleanly with the Linux backend's diagnosis")
    func linux() throws {
        let result = try Self.assign(["--arch", "cca", "--device", Self.sriov, "--backend", "linux"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("tsmctl assign: --backend linux: "))
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stdout.isEmpty)
    }

    /// On a host without iommufd (this machine) the first step fails; the line names it once and
    /// adds the host's other problems (KVM, the TSM sysfs attributes) from `LinuxDiagnosis`.
    @Test("--backend linux on a host without /dev/iommu: the failing step, then the other problems",
          .enabled(if: access("/dev/iommu", F_OK) != 0))
    func linuxWithoutIOMMUFD() throws {
        let result = try Self.assign(["--arch", "sev", "--device", Self.sriov, "--backend", "linux", "--profile", "rev-k"])
        #expect(result.status == 2)
        #expect(result.stderr.hasPrefix("tsmctl assign: --backend linux: open iommufd: /dev/iommu is not available"))
        #expect(result.stderr.components(separatedBy: "/dev/iommu does not exist").count == 1, "\(result.stderr)")
        if access("/sys/class/tsm", F_OK) != 0 {
            #expect(result.stderr.contains("— also: "))
            #expect(result.stderr.contains("/class/tsm"))
        }
    }

    @Test("--trace decodes with tsmctl decode; --diagram is a Mermaid sequence diagram", arguments: ["cca", "sev", "tdx"])
    func traceAndDiagram(arch: String) throws {
        let trace = Self.scratch("trace.jsonl"), diagram = Self.scratch("flow.mmd")
        defer {
            try? FileManager.default.removeItem(atPath: trace)
            try? FileManager.default.removeItem(atPath: diagram)
        }
        let result = try Self.assign(["--arch", arch, "--device", Self.sriov, "--vf", "1", "--trace", trace, "--diagram", diagram])
        #expect(result.status == 0)
        let text = try String(contentsOfFile: trace, encoding: .utf8)
        #expect(text.contains("\"kind\":\"iommu_vdevice_tsm_req\""))
        #expect(text.contains("\"kind\":\"iommu_vdevice_tsm_op\""))
        #expect(text.contains("\"kind\":\"vfio_device_bind_iommufd\""))
        #expect(text.contains("\"layer\":\"guest\""))
        #expect(text.contains("\"kind\":\"\(arch):validate_mmio:request\""))
        if arch == "sev" { #expect(text.contains("\"kind\":\"sev:tdi_info:response\",\"layer\":\"tsm\"")) }
        if arch == "cca" { #expect(text.contains("\"kind\":\"cca:read_object:request\"")) }
        let decoded = try CLIRunner.run(["decode", trace])
        #expect(decoded.status == 0, "\(decoded.stderr)")
        #expect(decoded.stdout.contains("IOMMU_VDEVICE_TSM_GUEST_TVM_ARCH_\(arch.uppercased())"))
        let mermaid = try String(contentsOfFile: diagram, encoding: .utf8)
        #expect(mermaid.hasPrefix("sequenceDiagram\n"))
        #expect(mermaid.contains("participant device as Device (DSM)"))
        #expect(mermaid.contains("vmm->>kernel: "))
    }

    /// Issue 6: `--trace` carries every TDISP message between the TSM and the DSM, bytes and
    /// decoded, in order with the uAPI calls. Codes from tdisp-spdm.md §2.2: LOCK_INTERFACE_REQUEST
    /// 0x83 / LOCK_INTERFACE_RESPONSE 0x03, GET_DEVICE_INTERFACE_REPORT 0x84 /
    /// DEVICE_INTERFACE_REPORT 0x04, START_INTERFACE_REQUEST 0x86 / START_INTERFACE_RESPONSE 0x06.
    /// VF 1 is e1:04.0: FUNCTION_ID = routing ID 0xE120 (§2.1; segment 0, not marked valid).
    @Test("--trace: every TDISP message, bytes and decoded, between its uAPI call's in and out lines",
          arguments: ["cca", "sev", "tdx"])
    func traceTDISP(arch: String) throws {
        let trace = Self.scratch("tdisp.jsonl")
        defer { try? FileManager.default.removeItem(atPath: trace) }
        let result = try Self.assign(["--arch", arch, "--device", Self.sriov, "--vf", "1", "--trace", trace])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let text = try String(contentsOfFile: trace, encoding: .utf8)
        let lines = try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        func string(_ line: [String: Any], _ key: String) -> String? { line[key] as? String }
        let tdisp = lines.indices.filter { string(lines[$0], "layer") == "tdisp" }
        for (code, name, direction, step) in [
            ("0x83", "LOCK_INTERFACE_REQUEST", "TSM→DSM", "IOMMU_VDEVICE_TSM_OP"),
            ("0x03", "LOCK_INTERFACE_RESPONSE", "DSM→TSM", "IOMMU_VDEVICE_TSM_OP"),
            ("0x84", "GET_DEVICE_INTERFACE_REPORT", "TSM→DSM", "IOMMU_VDEVICE_TSM_OP"),
            ("0x04", "DEVICE_INTERFACE_REPORT", "DSM→TSM", "IOMMU_VDEVICE_TSM_OP"),
            ("0x86", "START_INTERFACE_REQUEST", "TSM→DSM", "IOMMU_VDEVICE_TSM_REQ"),
            ("0x06", "START_INTERFACE_RESPONSE", "DSM→TSM", "IOMMU_VDEVICE_TSM_REQ"),
        ] {
            let index = try #require(tdisp.first { string(lines[$0], "code") == code }, "no \(name) in \(arch)'s trace")
            let line = lines[index]
            #expect(string(line, "message") == name)
            #expect(string(line, "direction") == direction)
            #expect(string(line, "kind") == "tdisp")
            #expect(string(line, "dsm") == "0000:e1:00.0")
            #expect(string(line, "tdi") == "e1:04.0")
            #expect(string(line, "interfaceID") == "0x0000e120")
            // The bytes themselves: TDISPVersion 0x10, the MessageType, 2 reserved, FUNCTION_ID LE.
            let hex = try #require(string(line, "hex"))
            #expect(hex.hasPrefix("10" + code.dropFirst(2) + "0000" + "20e10000"), "\(hex)")
            let decoded = try #require(line["decoded"] as? [String: Any])
            #expect((decoded["title"] as? String)?.contains("\(name) (\(code))") == true)
            // A request is followed by its response; both sit between their ioctl's in and out lines.
            if let response = ["0x83": "0x03", "0x84": "0x04", "0x86": "0x06"][code] {
                #expect(string(lines[index + 1], "code") == response)
            }
            #expect(string(line, "step") == step)
            let opening = try #require(lines[..<index].lastIndex { string($0, "layer") == "uapi" })
            let closing = try #require(lines[(index + 1)...].firstIndex { string($0, "layer") == "uapi" })
            #expect(string(lines[opening], "kind") == step.lowercased())
            #expect(string(lines[opening], "direction") == "in")
            #expect(string(lines[closing], "kind") == step.lowercased())
            #expect(string(lines[closing], "direction")?.hasPrefix("out (rc 0)") == true)
        }
        // The host administrator's connect: GET_TDISP_VERSION (0x81) to the DSM's own INTERFACE_ID.
        let version = try #require(tdisp.first)
        #expect(string(lines[version], "message") == "GET_TDISP_VERSION")
        #expect(string(lines[version], "step") == "pci-tsm connect")
        #expect(string(lines[version], "interfaceID") == "0x0000e100")

        // tsmctl decode reads every line back.
        let decoded = try CLIRunner.run(["decode", "--json", trace])
        #expect(decoded.status == 0, "\(decoded.stderr)")
        let records = decoded.stdout.split(separator: "\n")
        #expect(records.count == lines.count)
        for index in tdisp {
            let record = try #require(try JSONSerialization.jsonObject(with: Data(records[index].utf8)) as? [String: Any])
            #expect(record["line"] as? Int == index + 1)
            let title = (record["decoded"] as? [String: Any])?["title"] as? String
            #expect(title?.contains(string(lines[index], "message") ?? "?") == true)
        }
    }
}

