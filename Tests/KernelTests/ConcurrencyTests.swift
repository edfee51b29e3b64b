import Kernel
import Sync
import SystemPackage
import Testing
import UAPI

@Suite("Concurrency: guest requests racing unbind, rebind, disconnect and destroy (deliverable 9)")
struct ConcurrencyTests {
    /// Counts outcomes by name, and anything the spec does not allow.
    final class Tally: Sendable {
        let counts = Locked<[String: Int]>([:])
        func add(_ name: String) { counts.withLock { $0[name, default: 0] += 1 } }
        var snapshot: [String: Int] { counts.withLock { $0 } }
    }

    /// One requester: its own buffers, a 64-byte request with a per-task pattern, 64-byte response.
    static func request(_ kernel: SimulatedKernel, iommufd: Int32, vdevice: UInt32, pattern: UInt8,
                        signalPending: Bool, tally: Tally) {
        do {
            let payload = (0..<64).map { UInt8(truncatingIfNeeded: $0) ^ pattern }
            let req = try kernel.memory.map(bytes: payload)
            let resp = try kernel.memory.map(size: 64)
            let arg = try kernel.memory.map(bytes: IOMMUVDeviceTSMReq(
                vdeviceID: vdevice, op: 4, tvmArch: 1, reqLen: 64, respLen: 64, reqUptr: req, respUptr: resp).encode())
            defer { for a in [req, resp, arg] { try? kernel.memory.unmap(a) } }
            do {
                let rc = try kernel.ioctl(iommufd, kernel.profile.tsmReq.request, arg, signalPending: signalPending)
                let echoed = try kernel.memory.read(resp, count: 64)
                tally.add(rc == 0 && echoed == payload ? "ok" : "bad-success")
            } catch {
                switch error {
                case Errno(rawValue: 6): tally.add("ENXIO")
                case Errno(rawValue: 2): tally.add("ENOENT")
                case Errno(rawValue: 4): tally.add("EINTR")
                default: tally.add("unexpected-\(error.linuxName)")
                }
            }
        } catch {
            tally.add("memory-\(error.linuxName)")
        }
    }

    @Test("every request succeeds against a bound TDI or fails ENXIO/ENOENT/EINTR; nothing left after teardown")
    func racingTeardown() async throws {
        let f = try Fixture()
        try f.setUp()
        #expect(f.bind() == .value(0))
        let kernel = f.kernel
        let iommufd = f.iommufd
        let vdevice = f.vdeviceID
        let viommu = f.viommuID
        let devID = f.devID
        let tsmOpRequest = f.request(.vdeviceTSMOp)
        let vdevAllocRequest = f.request(.vdeviceAlloc)
        let destroyRequest = f.request(.destroy)
        let tally = Tally()
        let control = Tally()

        func issue(_ request: UInt32, _ bytes: [UInt8]) -> String {
            do {
                let address = try kernel.memory.map(bytes: bytes)
                defer { try? kernel.memory.unmap(address) }
                _ = try kernel.ioctl(iommufd, request, address)
                return "ok"
            } catch {
                return error.linuxName
            }
        }

        await withTaskGroup(of: Void.self) { group in
            for task in 0..<6 {
                group.addTask {
                    for i in 0..<300 {
                        Self.request(kernel, iommufd: iommufd, vdevice: vdevice, pattern: UInt8(task),
                                     signalPending: task == 5 && i % 2 == 0, tally: tally)
                    }
                }
            }
            group.addTask {  // unbind / rebind
                for _ in 0..<100 {
                    control.add("unbind-" + issue(tsmOpRequest, IOMMUVDeviceTSMOp(type: 2, vdeviceID: vdevice).encode()))
                    control.add("bind-" + issue(tsmOpRequest, IOMMUVDeviceTSMOp(type: 1, vdeviceID: vdevice).encode()))
                }
            }
            group.addTask {  // disconnect / connect
                for _ in 0..<40 {
                    do throws(Errno) { try kernel.pciTSM.disconnect(Fixture.dsm, "tsm0"); control.add("disconnect-ok") } catch { control.add("disconnect-\(error.linuxName)") }
                    do throws(Errno) { try kernel.pciTSM.connect(Fixture.dsm, "tsm0"); control.add("connect-ok") } catch { control.add("connect-\(error.linuxName)") }
                }
            }
            group.addTask {  // destroy / re-allocate the vDEVICE (same lowest-free ID comes back)
                for _ in 0..<40 {
                    control.add("destroy-" + issue(destroyRequest, IOMMUDestroy(id: vdevice).encode()))
                    control.add("alloc-" + issue(vdevAllocRequest, IOMMUVDeviceAlloc(viommuID: viommu, devID: devID, virtID: 0x0108).encode()))
                }
            }
        }

        let results = tally.snapshot
        let allowed: Set<String> = ["ok", "ENXIO", "ENOENT", "EINTR"]
        #expect(Set(results.keys).isSubset(of: allowed), "unexpected outcomes: \(results)")
        #expect(results.values.reduce(0, +) == 6 * 300)
        // Control operations fail only in the ways the spec allows.
        let controlAllowed: Set<String> = [
            "unbind-ok", "unbind-ENOENT", "bind-ok", "bind-ENOENT", "bind-EINVAL",
            "disconnect-ok", "connect-ok", "destroy-ok", "destroy-EBUSY", "destroy-ENOENT", "alloc-ok", "alloc-EEXIST",
        ]
        #expect(Set(control.snapshot.keys).isSubset(of: controlAllowed), "unexpected control outcomes: \(control.snapshot)")

        // Teardown: VFIO close, iommufd close, disconnect, unregister → nothing left.
        try kernel.close(f.vfio)
        try kernel.close(iommufd)
        if (try? kernel.pciTSM.connectShow(Fixture.dsm)) == "tsm0\n" {
            try kernel.pciTSM.disconnect(Fixture.dsm, "tsm0")
        }
        try kernel.pciTSM.unregister(f.tsm)
        #expect(kernel.pciTSM.boundTDIs.isEmpty)
        #expect(f.sample.statistics.shape == [0, 0, 0])
        #expect(kernel.memory.mappings.isEmpty)
        #expect(kernel.openDescriptors == [f.vmFD])
    }

    @Test("a cancelled task waiting on a held DSM mutex gets EINTR")
    func cancellation() async throws {
        let f = try Fixture()
        try f.setUp()
        #expect(f.bind() == .value(0))
        let hold = try f.kernel.pciTSM.holdDSMLock(Fixture.dsm)
        let kernel = f.kernel
        let iommufd = f.iommufd
        let vdevice = f.vdeviceID
        let tally = Tally()
        let task = Task.detached {
            Self.request(kernel, iommufd: iommufd, vdevice: vdevice, pattern: 1, signalPending: false, tally: tally)
        }
        task.cancel()
        await task.value
        hold.release()
        #expect(tally.snapshot == ["EINTR": 1])
    }
}
