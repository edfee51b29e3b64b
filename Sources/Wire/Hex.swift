/// Hexadecimal text to bytes and back, as the CLI, traces and test vectors use it.
public enum Hex {
    /// Lower-case hex of `bytes`, two digits a byte, no separators: `[0x10, 0xAB]` → `"10ab"`.
    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses hex text into bytes. Accepts an optional `0x` prefix, upper or lower case, and
    /// ignores spaces, tabs, `:` and `_` between digits. Throws ``WireError/invalidHex(position:)``
    /// on any other character or on an odd number of digits (position = the text's length).
    public static func decode(_ text: String) throws(WireError) -> [UInt8] {
        var scalars = Array(text.unicodeScalars)
        var start = 0
        if scalars.count >= 2, scalars[0] == "0", scalars[1] == "x" || scalars[1] == "X" { start = 2 }
        var out = [UInt8]()
        out.reserveCapacity(scalars.count / 2)
        var high: UInt8? = nil
        var index = start
        while index < scalars.count {
            let scalar = scalars[index]
            defer { index += 1 }
            if scalar == " " || scalar == "\t" || scalar == ":" || scalar == "_" { continue }
            guard let nibble = nibble(scalar) else { throw .invalidHex(position: index) }
            if let hi = high {
                out.append(hi << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        scalars.removeAll()
        guard high == nil else { throw .invalidHex(position: text.unicodeScalars.count) }
        return out
    }

    private static func nibble(_ scalar: Unicode.Scalar) -> UInt8? {
        switch scalar.value {
        case 0x30...0x39: return UInt8(scalar.value - 0x30)
        case 0x41...0x46: return UInt8(scalar.value - 0x41 + 10)
        case 0x61...0x66: return UInt8(scalar.value - 0x61 + 10)
        default: return nil
        }
    }
}
