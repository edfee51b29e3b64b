import Foundation
import Kernel
import PCI
import SystemPackage
import Testing
import UAPI

@Suite("Devices from real lspci dumps (PCI module → kernel)")
struct DumpTests {
    static func dump(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Examples/devices/\(name)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    @Test("the TEE-IO endpoint with SR-IOV: fn0 is a DSM; connect probes its 4 VFs; a VF binds and tunnels")
    func teeIODump() throws {
        let topology = try PCITopology(lspci: Self.dump("tee-io-endpoint-sriov.lspci"))
        let functions = KernelPCIFunction.fromTopology(topology)
        let pf = try #require(functions.first { !$0.isVirtualFunction })
        #expect(pf.canBeDSM)
        #expect(pf.teeIO && pf.hasIDE && pf.hasCMAMailbox)
        let vfs = functions.filter { $0.physicalFunction == pf.address }
        #expect(vfs.count == 4)
        let kernel = try SimulatedKernel(functions: functions)
        let sample = SampleLinkTSM()
        _ = try kernel.pciTSM.register(link: sample)
        try kernel.pciTSM.connect(pf.address, "tsm0")
        #expect(sample.statistics.liveContexts == 5)
        for vf in vfs { #expect(kernel.pciTSM.state(vf.address)?.dsm == pf.address) }
        // A VF through the whole Appendix B path.
        let iommufd = kernel.openIOMMUFD()
        let vmFD = kernel.createVM()
        let vfio = try kernel.openVFIODevice(vfs[0].address)
        try kernel.kvmVFIOFileAdd(vm: vmFD, vfio: vfio)
        let dev = try kernel.vfioBindIOMMUFD(vfio, iommufd: iommufd)
        func run<T: UAPIStruct>(_ id: CommandID, _ value: T) throws -> T {
            let address = try kernel.memory.map(bytes: value.encode())
            _ = try kernel.ioctl(iommufd, kernel.profile.command(id)!.request, address)
            return try T(bytes: kernel.memory.read(address, count: T.layout.size))
        }
        let ioas = try run(.ioasAlloc, IOMMUIOASAlloc()).outIOASID
        let hwpt = try run(.hwptAlloc, IOMMUHWPTAlloc(flags: 1, devID: dev, ptID: ioas)).outHWPTID
        let viommu = try run(.viommuAlloc, IOMMUVIOMMUAlloc(type: 1, devID: dev, hwptID: hwpt)).outVIOMMUID
        let vdev = try run(.vdeviceAlloc, IOMMUVDeviceAlloc(viommuID: viommu, devID: dev, virtID: 0x10)).outVDeviceID
        _ = try run(.vdeviceTSMOp, IOMMUVDeviceTSMOp(type: 1, vdeviceID: vdev))
        #expect(kernel.tdi(vfs[0].address)?.tdiID == 0x10)
        try kernel.pciTSM.disconnect(pf.address, "tsm0")
        #expect(kernel.pciTSM.boundTDIs.isEmpty)
        #expect(sample.statistics.shape == [0, 0, 0])
    }
}
