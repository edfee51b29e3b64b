// `tsmctl assign --backend linux`: the host side of the assignment on a real Linux kernel, through
// the VMM library's Linux backend (iommufd and VFIO cdev ioctls, KVM, the DSM's sysfs connect).
// docs/assign.md "--backend linux".
import Kernel
import UAPI
import VMM

extension AssignFlow {
    /// The Appendix B host steps on the running kernel: open `/dev/iommu`, `KVM_CREATE_VM`, open
    /// the function's VFIO cdev (found through sysfs `vfio-dev/`), `KVM_DEV_VFIO_FILE_ADD`, bind,
    /// IOAS / HWPT / vIOMMU / vDEVICE, the DSM's sysfs `tsm/connect`, `IOMMU_VDEVICE_TSM_OP` BIND;
    /// then (unless `--keep`) UNBIND, teardown and `tsm/disconnect`. The guest's part (evidence,
    /// SET_TDI_STATE RUN) runs inside the TVM, which tsmctl does not start, so success here is the
    /// TDI bound (CONFIG_LOCKED) and released again.
    ///
    /// - Throws: ``AssignInputError`` — `--backend linux: <the failing step's VMMError>` followed by
    ///   the host's ``VMM/LinuxDiagnosis`` problems — for any failure before the TSM bind (nothing
    ///   stays assigned: every handle opened so far is closed when it goes out of scope).
    func runLinux(_ backend: LinuxBackend) throws(AssignInputError) -> AssignOutcome {
        let profile = request.profile
        let targetAddress = PCIFunctionAddress(target.bdf)
        let dsmAddress = PCIFunctionAddress(dsmFunction.bdf)
        /// The error, then the host's other problems (those about the same path are left out).
        func refuse(_ error: VMMError) -> AssignInputError {
            let problems = backend.diagnose().problems.filter { problem in
                let path = problem.prefix { $0 != " " }
                return !(path.hasPrefix("/") && error.reason.contains(path))
            }
            let others = problems.isEmpty ? "" : " — also: " + problems.joined(separator: "; ")
            return AssignInputError("--backend linux: \(error)\(others)")
        }
        let vmmPath = ["vmm", "kernel"]
        let tsmPath = ["vmm", "kernel", "tsm"]
        let tracing = TracingBackend(backend, sink: traceSink(profile: profile))
        var outcome = AssignOutcome(arch: request.arch.name, backend: "linux", profile: profile.name, function: "\(target.bdf)",
                                    dsm: "\(dsmFunction.bdf)", steps: [], reachedRun: false, evidenceVerified: false,
                                    failure: nil, refusal: nil, tornDown: false, finalState: nil)
        // 1-2. iommufd, VM, VFIO cdev, KVM association, DEVICE and the vDEVICE objects.
        let session: IOMMUFDSession
        do { session = try IOMMUFDSession(backend: tracing, profile: profile) } catch { throw refuse(error) }
        recordHostless(actor: "vmm", "open /dev/iommu", vmmPath, sent: "open(O_RDWR)", result: "iommufd (profile \(profile.name))")
        let vm: Int32
        do { vm = try backend.createVM() } catch { throw refuse(error) }
        defer { try? backend.close(vm) }
        recordHostless(actor: "vmm", "KVM_CREATE_VM", vmmPath, sent: "open \(backend.kvmPath), KVM_CREATE_VM", result: "VM fd \(vm)")
        let vfioPath: String
        do { vfioPath = try backend.vfioDevicePath(for: targetAddress) } catch { throw refuse(error) }
        let vfio: VFIODevice
        do { vfio = try VFIODevice.open(vfioPath, backend: tracing) } catch { throw refuse(error) }
        recordHostless(actor: "vmm", "open VFIO cdev", vmmPath, sent: vfioPath, result: "VFIO device open")
        let setup: VDeviceSetup
        do throws(VMMError) {
            try backend.addToVM(vm, vfio: vfio)
            recordHostless(actor: "vmm", "KVM_DEV_VFIO_FILE_ADD", vmmPath, sent: "associate \(vfioPath) with VM fd \(vm)", result: "ok")
            let device = try vfio.bind(to: session.iommufd)
            recordHostless(actor: "vmm", "VFIO_DEVICE_BIND_IOMMUFD", vmmPath, sent: "bind \(vfioPath)", result: "DEVICE id \(device.id)")
            setup = try session.iommufd.setUpVDevice(device: device, virtID: 0x10)
            recordHostless(actor: "vmm", "IOAS, HWPT, vIOMMU, vDEVICE", vmmPath, sent: "virt_id 0x10",
                           result: "vDEVICE id \(setup.vdevice.id)")
        } catch {
            throw refuse(error)
        }
        // 3. The host administrator connects the DSM (sysfs tsm/connect, kernel-uapi.md §6.5).
        do throws(VMMError) {
            try backend.connectDSM(dsmAddress)
            recordHostless(actor: "host-admin", "pci-tsm connect", ["kernel", "tsm", "device"],
                           sent: "write tsm0 to \(backend.sysfsDevicePath(dsmAddress))/tsm/connect", result: "DSM connected")
        } catch {
            try? session.iommufd.tearDown(setup, closing: vfio)
            throw refuse(error)
        }
        // 4. TSM bind; the guest's part is the TVM's.
        let tunnel = session.tunnel(for: setup.vdevice)
        var bound = false
        do throws(VMMError) {
            try tunnel.bind()
            bound = true
            recordHostless(actor: "vmm", "IOMMU_VDEVICE_TSM_OP BIND", tsmPath + ["device"], sent: "bind vDEVICE \(setup.vdevice.id) to the VM",
                           result: "TDI bound, interface locked")
            outcome.finalState = "CONFIG_LOCKED"
        } catch {
            recordHostless(actor: "vmm", "IOMMU_VDEVICE_TSM_OP BIND", tsmPath, sent: "bind vDEVICE \(setup.vdevice.id)",
                           result: failureText(error), status: "failed")
            outcome.failure = failureText(error)
        }
        if bound {
            recordHostless(actor: "guest", "GuestAgent.accept", [], sent: "-",
                           result: "runs inside the TVM (evidence checks, SET_TDI_STATE RUN); not started by tsmctl")
        }
        if request.keep {
            recordHostless(actor: "vmm", "keep", [], sent: "--keep", result: "left bound until tsmctl exits: vDEVICE \(setup.vdevice.id)")
            outcome.steps = steps
            outcome.succeeded = bound
            withExtendedLifetime(vfio) {}
            return outcome
        }
        // 5. Teardown.
        if bound {
            do throws(VMMError) {
                try tunnel.unbind()
                recordHostless(actor: "vmm", "IOMMU_VDEVICE_TSM_OP UNBIND", tsmPath + ["device"], sent: "unbind vDEVICE \(setup.vdevice.id)",
                               result: "TDI stopped, interface unlocked")
                outcome.finalState = "CONFIG_UNLOCKED"
            } catch {
                recordHostless(actor: "vmm", "IOMMU_VDEVICE_TSM_OP UNBIND", tsmPath, sent: "unbind", result: failureText(error), status: "failed")
            }
        }
        var tornDown = true
        do throws(VMMError) {
            try session.iommufd.tearDown(setup, closing: vfio)
            recordHostless(actor: "vmm", "teardown", vmmPath, sent: "destroy vDEVICE, vIOMMU, HWPT; close VFIO cdev; destroy IOAS", result: "ok")
        } catch {
            tornDown = false
            recordHostless(actor: "vmm", "teardown", vmmPath, sent: "destroy", result: failureText(error), status: "failed")
        }
        do throws(VMMError) {
            try backend.disconnectDSM(dsmAddress)
            recordHostless(actor: "host-admin", "pci-tsm disconnect", ["kernel", "tsm", "device"],
                           sent: "write tsm0 to \(backend.sysfsDevicePath(dsmAddress))/tsm/disconnect", result: "DSM disconnected")
        } catch {
            tornDown = false
            recordHostless(actor: "host-admin", "pci-tsm disconnect", ["kernel", "tsm"], sent: "tsm0", result: failureText(error), status: "failed")
        }
        outcome.tornDown = tornDown
        outcome.steps = steps
        outcome.succeeded = bound && tornDown
        return outcome
    }
}
