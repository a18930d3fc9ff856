import Machine
import Monitor
import Sockets

/// Turns parsed options into what the lower layers take.
extension Configuration {
    enum WiringError: Error, CustomStringConvertible {
        case appendWithoutKernel
        case initrdWithoutKernel
        case noDefaultGuest
        case unsupportedSerial(String)
        case unknownMemoryBackend(String)
        case memorySizeDiffers(given: UInt64, backend: String, size: UInt64)

        var description: String {
            switch self {
            case .appendWithoutKernel: return "-append only allowed with -kernel option"
            case .initrdWithoutKernel: return "-initrd only allowed with -kernel option"
            case .unsupportedSerial(let kind):
                return "-serial \(kind): not supported yet; use stdio, null, file:PATH, pty, unix:PATH,server[,nowait] or tcp:HOST:PORT,server[,nowait]"
            case .unknownMemoryBackend(let id):
                return "-machine memory-backend=\(id): no -object memory-backend-memfd with id=\(id)"
            case .memorySizeDiffers(let given, let backend, let size):
                return "-m \(given >> 20)M differs from the size of memory-backend \(backend) (\(size >> 20)M); leave out -m or make them equal"
            case .noDefaultGuest:
                return "no guest given and the default guest (guests/build/hello.elf) was not found; pass -kernel FILE or -drive file=IMG,format=raw, or set SWIFTKVM_GUESTS to the folder of built guests"
            }
        }
    }

    func machineConfiguration(defaultKernel: () -> String?) throws -> MachineConfiguration {
        let boot: BootSource
        if let kernel {
            boot = .kernel(path: kernel, commandLine: append ?? "", initrd: initrd)
        } else if append != nil {
            throw WiringError.appendWithoutKernel
        } else if initrd != nil {
            throw WiringError.initrdWithoutKernel
        } else if let drive = drives.first {
            boot = .bootSector(path: drive.file)
        } else if let hello = defaultKernel() {
            boot = .kernel(path: hello, commandLine: "")
        } else {
            throw WiringError.noDefaultGuest
        }
        var ramSize = memorySize
        var memfd = false
        if let id = machineMemoryBackend {
            guard let backend = memoryBackends.last(where: { $0.id == id }) else { throw WiringError.unknownMemoryBackend(id) }
            if memorySizeGiven && memorySize != backend.size {
                throw WiringError.memorySizeDiffers(given: memorySize, backend: id, size: backend.size)
            }
            ramSize = backend.size
            memfd = true
        }
        var configuration = MachineConfiguration(
            memorySize: ramSize, boot: boot,
            debugExit: debugExit.map { .init(base: $0.iobase, count: $0.iosize) },
            incoming: incoming != nil, vcpuCount: cpuCount)
        configuration.memfdRAM = memfd
        configuration.preallocateRAM = preallocateMemory
        return configuration
    }

    /// QEMU's defaults: whatever -serial and -monitor do not redirect stays on stdio, shared.
    func serialSpec() throws -> SerialBackendSpec {
        switch serial {
        case nil, .stdio?: return .stdio
        case .null?: return .null
        case .file(let path)?: return .file(path: path)
        case .unixSocket(let path, _, let wait)?: return .unixServer(path: path, wait: wait)
        case .pty?: return .pty
        case .tcp(let host, let port, true, let wait)?: return .tcpServer(host: host, port: port, wait: wait)
        case .tcp?: throw WiringError.unsupportedSerial("tcp without server")
        }
    }

    var qmpSpecs: [QMPServerSpec] {
        qmp.map { endpoint in
            switch endpoint {
            case .unixSocket(let path, _, let wait): return .unix(path: path, wait: wait)
            case .tcp(let host, let port, _, let wait, let tls): return .tcp(host: host, port: port, wait: wait, tls: tls)
            }
        }
    }

    var monitorSpec: MonitorBackendSpec {
        switch monitor {
        case nil, .stdio?: return .stdio
        case .none?: return .none
        case .unixSocket(let path, _, let wait)?: return .unixServer(path: path, wait: wait)
        case .tcp(let host, let port, _, let wait, let tls)?: return .tcpServer(host: host, port: port, wait: wait, tls: tls)
        }
    }

    /// Anyone who can connect to QMP or the monitor controls this process (`migrate exec:`
    /// runs a shell command): said for each TCP one that listens beyond this machine without TLS.
    var plainNetworkWarnings: [String] {
        var sockets: [(option: String, host: String, port: UInt16)] = []
        if case .tcp(let host, let port, _, _, nil)? = monitor { sockets.append(("-monitor", host, port)) }
        for case .tcp(let host, let port, _, _, nil) in qmp { sockets.append(("-qmp", host, port)) }
        return sockets.filter { !HostPort.isLoopback($0.host) }.map { socket in
            "\(socket.option) tcp:\(HostPort.text(host: socket.host, port: String(socket.port))) listens beyond this machine without TLS: anyone who can reach it controls swiftkvm and can run commands as this user (migrate exec:); bind it to 127.0.0.1, use a unix: socket or add tls-creds="
        }
    }
}
