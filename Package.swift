// swift-tools-version:6.1
// TSMKit: confidential PCIe device assignment (iommufd vDevice TSM uAPI, TSM firmware,
// TDISP devices, TVM agent) in Swift, with an embedded simulated kernel.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "TSMKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TSMKit", targets: ["Wire", "UAPI", "PCI", "TDISP", "Device", "Firmware", "Kernel", "KernelScript", "VMM", "Guest"]),
        .executable(name: "tsmctl", targets: ["tsmctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        // Layer 0: the uAPI subset as a C header (the one source of truth for layout) + ioctl shim.
        .target(name: "CIOMMUFD"),
        // Little-endian byte readers/writers and hex, shared by every codec.
        .target(name: "Wire", swiftSettings: strict),
        // POSIX-thread locks the thread sanitizer understands (docs/kernel.md), shared by every
        // module whose state is guarded on the concurrency path.
        .target(name: "Sync", swiftSettings: strict),
        .target(
            name: "UAPI",
            dependencies: ["CIOMMUFD", "Wire", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict),
        .target(name: "PCI", dependencies: ["Wire"], swiftSettings: strict),
        .target(name: "TDISP", dependencies: ["Wire"], swiftSettings: strict),
        .target(
            name: "Device",
            dependencies: [
                "PCI", "TDISP", "Wire", "Sync",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict),
        .target(
            name: "Firmware",
            dependencies: [
                "UAPI", "TDISP", "Device", "PCI", "Wire", "Sync",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),
        .target(
            name: "Kernel",
            dependencies: [
                "UAPI", "PCI", "TDISP", "Device", "Firmware", "Wire", "Sync",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),
        // The JSON Lines step language of `tsmctl script` (docs/script-format.md), run against a
        // fresh simulated kernel; the conformance suite is written in it.
        .target(
            name: "KernelScript",
            dependencies: [
                "Kernel", "UAPI", "PCI", "TDISP", "Device", "Firmware", "Wire",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),
        .target(
            name: "VMM",
            dependencies: [
                "UAPI", "Kernel", "CIOMMUFD", "Wire", "Sync",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict),
        .target(
            name: "Guest",
            dependencies: [
                "UAPI", "TDISP", "Wire", "Firmware", "Sync",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "tsmctl",
            dependencies: [
                "UAPI", "PCI", "TDISP", "Device", "Firmware", "Kernel", "KernelScript", "VMM", "Guest", "Wire", "Sync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        .testTarget(name: "WireTests", dependencies: ["Wire"], swiftSettings: strict),
        .testTarget(name: "UAPITests", dependencies: ["UAPI", "CIOMMUFD", "Wire"], swiftSettings: strict),
        .testTarget(name: "PCITests", dependencies: ["PCI"], swiftSettings: strict),
        .testTarget(name: "TDISPTests", dependencies: ["TDISP", "Wire"], swiftSettings: strict),
        .testTarget(name: "DeviceTests", dependencies: ["Device", "PCI", "TDISP", "Wire"], swiftSettings: strict),
        .testTarget(name: "KernelTests", dependencies: ["Kernel", "UAPI", "PCI", "TDISP", "Device", "Firmware", "Wire", "Sync"], swiftSettings: strict),
        .testTarget(name: "ConformanceTests", dependencies: ["KernelScript", "Kernel", "UAPI"], swiftSettings: strict),
        .testTarget(
            name: "FirmwareTests",
            dependencies: ["Firmware", "Device", "TDISP", "PCI", "UAPI", "Wire", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict),
        .testTarget(name: "VMMTests", dependencies: ["VMM", "UAPI", "Kernel"], swiftSettings: strict),
        .testTarget(
            name: "GuestTests",
            dependencies: ["Guest", "Device", "TDISP", "Wire", "Firmware", "PCI", "UAPI", "Kernel", "VMM", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict),
        .testTarget(name: "TsmctlTests", dependencies: ["tsmctl"], swiftSettings: strict),
    ]
)
