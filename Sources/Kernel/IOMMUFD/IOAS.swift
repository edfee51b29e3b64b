import SystemPackage
import UAPI

extension IOMMUFDHandlers {
    /// IOMMU_IOAS_ALLOC (spec 1.4; Linux drivers/iommu/iommufd/ioas.c): `flags != 0` →
    /// `EOPNOTSUPP`; allocate; write `out_ioas_id` back (`EFAULT`, the ID is released).
    static let ioasAlloc: IOMMUFDHandler = { kernel, context, ucmd throws(Errno) in
        var cmd = try ucmd.decode(IOMMUIOASAlloc.self)
        guard cmd.flags == 0 else { throw .notSupported }
        let id = try context.reserve()
        let ioas = IOASObject(id: id)
        cmd.outIOASID = id
        ucmd.store(cmd)
        do throws(Errno) {
            try ucmd.respond()
        } catch {
            context.abort(id)
            throw error
        }
        context.finalize(ioas)
        return 0
    }
}
