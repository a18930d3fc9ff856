// swift-tools-version:5.9
import PackageDescription

// Layers, each depending only on those below it:
//   swiftkvm (command line) -> Monitor -> Migration -> Machine -> Devices / KVM -> CKVM
// Units (size parsing) is a leaf with no dependencies; Migration, Monitor and swiftkvm use it.
// Sockets (addresses, the one listener, outgoing connects) is a leaf too: Migration's
// transports and Monitor's QMP, monitor and serial servers share it. TLS (OpenSSL sessions over a
// socket, the -object credentials) is a leaf over COpenSSL; Migration's stream wraps it.
let package = Package(
    name: "swiftkvm",
    products: [
        .executable(name: "swiftkvm", targets: ["swiftkvm"]),
    ],
    targets: [
        .target(name: "CKVM"),
        .target(name: "Units"),
        .target(name: "Sockets"),
        .systemLibrary(name: "CReadline", path: "Sources/CReadline"),
        // OpenSSL 3 (libssl-dev): TLS for migration, with kernel TLS offload where the kernel has it.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        .target(name: "TLS", dependencies: ["COpenSSL"]),
        .target(name: "KVM", dependencies: ["CKVM"]),
        .target(name: "Devices"),
        .target(name: "Machine", dependencies: ["KVM", "Devices"]),
        .target(name: "Migration", dependencies: ["Machine", "Units", "Sockets", "TLS"]),
        .target(name: "Monitor", dependencies: ["Migration", "Machine", "Units", "Sockets", "TLS", "CReadline"]),
        .executableTarget(name: "swiftkvm", dependencies: ["Monitor", "Migration", "Machine", "Units", "Sockets", "TLS"]),

        // Helpers shared by several test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "UnitsTests", dependencies: ["Units", "TestSupport"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices", "TestSupport"]),
        .testTarget(name: "KVMTests", dependencies: ["KVM"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS"]),
        .testTarget(name: "MachineTests", dependencies: ["Machine", "CKVM"]),
        .testTarget(name: "MigrationTests", dependencies: ["Migration"], exclude: ["Fixtures"]),
        .testTarget(name: "MonitorTests", dependencies: ["Monitor", "TestSupport"]),
        .testTarget(name: "CommandLineTests", dependencies: ["swiftkvm", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["swiftkvm", "TestSupport"]),
        // Linux guests in an emulated SVM host (scripts/emulated-host); runs the swiftkvm binary.
        .testTarget(name: "LinuxGuestTests", dependencies: ["swiftkvm"]),
    ]
)
