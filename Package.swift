// swift-tools-version:5.9
import PackageDescription

// Layers, each depending only on those below it:
//   swiftkvm (command line) -> Monitor -> Migration -> Machine -> Devices / KVM -> CKVM
// Leaves beside them, usable from any layer:
// - SystemSupport (on its C shim CSystemSupport): the one lock, thread type, monotonic clock,
//   errno/EINTR helper, file I/O (FileIO, HostFile, ReplacementFile) and the error-cause chain.
//   Every layer but Devices (which does no I/O) uses it.
// - Units (size parsing); Migration, Monitor and swiftkvm use it.
// - Sockets (addresses, the one listener, outgoing connects): Migration's transports and
//   Monitor's QMP, monitor and serial servers share it. It uses SystemSupport.
// - CZstd (libzstd): Migration's compressed RAM batches.
// - CXXHash (libxxhash): Migration's stream digest.
// - TLS (OpenSSL sessions over a socket, the -object credentials), over COpenSSL; Migration's
//   stream wraps it.
let package = Package(
    name: "swiftkvm",
    products: [
        .executable(name: "swiftkvm", targets: ["swiftkvm"]),
    ],
    targets: [
        .target(name: "CKVM"),
        .target(name: "CSystemSupport"),
        .target(name: "SystemSupport", dependencies: ["CSystemSupport"]),
        .target(name: "Units"),
        .target(name: "Sockets", dependencies: ["SystemSupport"]),
        .systemLibrary(name: "CReadline", path: "Sources/CReadline"),
        // OpenSSL 3 (libssl-dev): TLS for migration, with kernel TLS offload where the kernel has it.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        .target(name: "TLS", dependencies: ["COpenSSL", "SystemSupport", "Units"]),
        // libzstd (libzstd-dev): multifd-compression zstd for migration's RAM batches.
        .systemLibrary(name: "CZstd", path: "Sources/CZstd"),
        // libxxhash (libxxhash-dev): the migration stream's digest, XXH3 with runtime CPU dispatch.
        .systemLibrary(name: "CXXHash", path: "Sources/CXXHash"),
        .target(name: "KVM", dependencies: ["CKVM", "CSystemSupport", "SystemSupport"]),
        .target(name: "Devices"),
        .target(name: "Machine", dependencies: ["KVM", "Devices", "SystemSupport"]),
        .target(name: "Migration", dependencies: ["Machine", "Units", "Sockets", "TLS", "SystemSupport", "CZstd", "CXXHash"]),
        .target(name: "Monitor", dependencies: ["Migration", "Machine", "Units", "Sockets", "TLS", "SystemSupport", "CReadline"]),
        .executableTarget(name: "swiftkvm", dependencies: ["Monitor", "Migration", "Machine", "Units", "Sockets", "TLS", "SystemSupport"]),

        // Helpers shared by several test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "SystemSupportTests", dependencies: ["SystemSupport"]),
        .testTarget(name: "UnitsTests", dependencies: ["Units", "TestSupport"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices", "TestSupport"]),
        .testTarget(name: "KVMTests", dependencies: ["KVM", "SystemSupport"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS"]),
        .testTarget(name: "MachineTests", dependencies: ["Machine", "Devices", "KVM", "CKVM", "SystemSupport"]),
        .testTarget(name: "MigrationTests", dependencies: ["Migration", "Machine", "KVM", "SystemSupport", "CZstd"], exclude: ["Fixtures"]),
        .testTarget(name: "MonitorTests", dependencies: ["Monitor", "SystemSupport", "TestSupport"]),
        .testTarget(name: "CommandLineTests", dependencies: ["swiftkvm", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["swiftkvm", "TestSupport"]),
        // Linux guests in an emulated SVM host (scripts/emulated-host); runs the swiftkvm binary.
        .testTarget(name: "LinuxGuestTests", dependencies: ["swiftkvm"]),
    ]
)
