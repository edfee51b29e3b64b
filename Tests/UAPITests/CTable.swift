import CIOMMUFD

/// The C compiler's view of ciommufd.h (sizeof, _Alignof, offsetof, signedness, _IO), read
/// through the tables in Sources/CIOMMUFD/shim.c. Tests compare every Swift descriptor with it.
enum CTable {
    struct Struct: Sendable, Equatable {
        let name: String
        let size: Int
        let alignment: Int
    }

    struct Field: Sendable, Equatable {
        let structName: String
        let name: String
        let offset: Int
        let size: Int
        let isSigned: Bool
    }

    struct Command: Sendable, Equatable {
        let name: String
        let numbering: String
        let nr: UInt8
        let request: UInt
        let structName: String
        let minimumSize: Int
    }

    static let structs: [Struct] = (0..<ciommufd_struct_count()).compactMap { index in
        guard let info = ciommufd_struct_at(index)?.pointee, let name = info.name else { return nil }
        return Struct(name: String(cString: name), size: info.size, alignment: info.alignment)
    }

    static let fields: [Field] = (0..<ciommufd_field_count()).compactMap { index in
        guard let info = ciommufd_field_at(index)?.pointee,
              let structName = info.struct_name, let name = info.field_name else { return nil }
        return Field(structName: String(cString: structName), name: String(cString: name),
                     offset: info.offset, size: info.size, isSigned: info.is_signed != 0)
    }

    static let commands: [Command] = (0..<ciommufd_command_count()).compactMap { index in
        guard let info = ciommufd_command_at(index)?.pointee, let name = info.name,
              let numbering = info.numbering, let structName = info.struct_name else { return nil }
        return Command(name: String(cString: name), numbering: String(cString: numbering),
                       nr: UInt8(truncatingIfNeeded: info.nr), request: UInt(info.request),
                       structName: String(cString: structName), minimumSize: info.minimum_size)
    }

    static func fields(of structName: String) -> [Field] {
        fields.filter { $0.structName == structName }
    }
}
