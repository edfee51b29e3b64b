import SystemPackage
import UAPI

/// The bridge from the UAPI module's data (profiles, layouts, errno names) to the engine's view.
extension ScriptStructLayout {
    /// The engine's view of a UAPI ``UAPI/StructLayout``: names, offsets, widths, and which
    /// fields the kernel writes (``UAPI/FieldDirection/out`` and `inout`).
    public init(_ layout: StructLayout) {
        self.init(
            name: layout.name, size: layout.size,
            fields: layout.fields.map {
                Field(name: $0.name, offset: $0.offset, size: $0.size, isOutput: $0.direction != .in)
            },
            sizeField: layout.fields.first { $0.role == .size }?.name)
    }
}

extension ScriptCommand {
    /// The engine's view of a profile's command row.
    public init(_ spec: CommandSpec) {
        self.init(name: spec.name, request: spec.request, layout: spec.layout.map(ScriptStructLayout.init))
    }
}

/// Errno names for scripts: the Linux names of ``UAPI/ErrnoName``.
public enum ScriptErrnoNames {
    /// `EINVAL` for `Errno.invalidArgument`, `E<n>` for unnamed values.
    public static func name(of errno: Errno) -> String { ErrnoName.name(of: errno) }
    /// The errno called `name`, or nil.
    public static func errno(named name: String) -> Errno? { ErrnoName.errno(named: name) }
}
