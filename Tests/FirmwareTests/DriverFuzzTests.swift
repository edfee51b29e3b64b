import Firmware
import SystemPackage
import Testing

/// The errno values the spec tables allow a driver's guest_req to return, per architecture
/// (arch-backends.md §1.2, §2.2, §3.3, §6; docs/firmware.md).
private let allowed: [TSMArch: Set<Errno>] = [
    .cca: [.invalidArgument, .argListTooLong, .ioError, .noSuchAddressOrDevice, .noMemory, .protocolError, .badAddress],
    .sev: [.invalidArgument, .badAddress, .ioError, .noSuchAddressOrDevice],
    .tdx: [.invalidArgument, .argListTooLong, .ioError, .resourceBusy, .notPermitted, .badAddress, .noSuchAddressOrDevice],
]

@Suite("guest_req under seeded random requests")
struct DriverFuzzTests {
    private func run<P: LinkTSMDriver>(_ h: Harness<P>, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<300 {
            let op = UInt32(generator.next() % 9)
            let length = Int(generator.next() % 200)
            var payload = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if generator.next() % 3 == 0, payload.count >= 4 { payload[0] = UInt8(generator.next() % 5) }
            let responseLength = Int(generator.next() % 512)
            let arch = TSMArch.allCases[Int(generator.next() % 3)]
            let outcome = h.send(rawOp: op, payload, responseLength: responseLength, arch: arch)
            if let errno = outcome.errno {
                #expect(allowed[h.platform.arch]?.contains(errno) == true, "\(errno) for op \(op)")
            } else {
                #expect(outcome.residue >= 0 && outcome.residue <= responseLength)
            }
            if h.platform.arch == .cca { #expect(outcome.tsmCode == 0) }
            if arch != h.platform.arch { #expect(outcome.errno == .invalidArgument) }
        }
        // Whatever happened, the firmware's view and the DSM's view of the TDI agree or the
        // firmware recorded an ERROR the device has not seen.
        let firmware = h.platform.tdispState(function: h.function)
        #expect(firmware == h.deviceState || firmware == .error)
    }

    @Test("CCA", arguments: [UInt64(3), 77])
    func cca(seed: UInt64) throws { run(try Harness(CCAPlatform()), seed: seed) }

    @Test("SEV", arguments: [UInt64(3), 77])
    func sev(seed: UInt64) throws { run(try Harness(SEVPlatform()), seed: seed) }

    @Test("TDX", arguments: [UInt64(3), 77])
    func tdx(seed: UInt64) throws { run(try Harness(TDXPlatform()), seed: seed) }
}
