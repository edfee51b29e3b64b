import SystemPackage

/// Builds ``ScriptTarget``s over the simulated kernel. (Placeholder until the Kernel module's
/// `SimulatedKernel` lands on this branch.)
public struct SimulatedKernelHost: ScriptHost {
    public init() {}

    public func makeTarget(_ platform: PlatformSpec, baseDirectory: String?) throws(ScriptRunError) -> any ScriptTarget {
        throw ScriptRunError("the simulated kernel is not available in this build")
    }

    public func name(of errno: Errno) -> String { ScriptErrnoNames.name(of: errno) }

    public func errno(named name: String) -> Errno? { ScriptErrnoNames.errno(named: name) }
}
