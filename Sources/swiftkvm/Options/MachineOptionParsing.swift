import TLS
import Units

/// Parsers for the options that shape the machine: memory, CPUs, drives, devices, name.
enum MachineOptionParsing {
    static func memorySize(_ text: String) throws -> UInt64 {
        var sizeText: String?
        for item in PropertyList(text).items {
            switch item.key {
            case nil, "size"?: sizeText = item.value
            case let key?: throw OptionError.unknownProperty(option: "-m", property: key, supported: ["size"])
            }
        }
        guard let sizeText else { throw OptionError.missingArgument(option: "-m") }
        let bytes: UInt64
        do {
            bytes = try parseSize(sizeText, defaultUnit: Configuration.mebibyte)
        } catch SizeParseError.tooLarge {
            throw OptionError.memoryTooLarge(text: sizeText)
        } catch let problem as SizeParseError {
            throw OptionError.invalidSize(option: "-m", text: sizeText, problem: problem)
        }
        guard bytes >= Configuration.minimumMemorySize else { throw OptionError.memoryTooSmall(text: sizeText) }
        guard bytes <= Configuration.maximumMemorySize else { throw OptionError.memoryTooLarge(text: sizeText) }
        let page: UInt64 = 4096
        return (bytes + page - 1) / page * page
    }

    /// Whether an `-object` is a memory backend (QEMU's `memory-backend-*` types); the others
    /// are TLS objects (`object`).
    static func isMemoryBackend(_ text: String) -> Bool {
        guard let first = PropertyList(text).items.first, first.key == nil || first.key == "qom-type" else { return false }
        return first.value.hasPrefix("memory-backend-")
    }

    /// `-object memory-backend-memfd,id=ID,size=SIZE[,share=on]`, the one memory backend there is.
    static func memoryBackend(_ text: String) throws -> Configuration.MemoryBackend {
        let items = PropertyList(text).items
        let option = "-object memory-backend-memfd"
        guard let first = items.first, first.value == "memory-backend-memfd" else {
            throw OptionError.unsupported(option: "-object \(items.first?.value ?? text)", reason: "of the memory backends only memory-backend-memfd is available")
        }
        var id: String?
        var size: UInt64?
        for item in items.dropFirst() {
            switch item.key {
            case "id"?: id = item.value
            case "size"?: size = try memorySize(item.value)
            case "share"?:
                guard item.value == "on" || item.value == "true" else {
                    throw OptionError.invalidValue(option: option, value: "share=\(item.value)",
                                                   expected: "a memfd backend is always shared (share=on); leave out -object for private RAM")
                }
            default:
                throw OptionError.unknownProperty(option: option, property: item.key ?? item.value, supported: ["id", "size", "share"])
            }
        }
        guard let id, !id.isEmpty else { throw OptionError.missingProperty(option: option, property: "id") }
        guard let size else { throw OptionError.missingProperty(option: option, property: "size") }
        return Configuration.MemoryBackend(id: id, size: size)
    }

    /// `-machine memory-backend=ID`.
    static func machine(_ text: String) throws -> String {
        var backend: String?
        for item in PropertyList(text).items {
            switch item.key {
            case "memory-backend"?: backend = item.value
            default:
                throw OptionError.unknownProperty(option: "-machine", property: item.key ?? item.value, supported: ["memory-backend"])
            }
        }
        guard let backend, !backend.isEmpty else { throw OptionError.missingProperty(option: "-machine", property: "memory-backend") }
        return backend
    }

    static func drive(_ text: String, warnings: inout [String]) throws -> Configuration.Drive {
        let supported = ["file", "format", "if"]
        var file: String?
        var format: String?
        for item in PropertyList(text).items {
            switch item.key {
            case "file"?: file = item.value
            case "format"?: format = item.value
            case "if"?: break  // one disk controller only; QEMU users write if=ide or if=none out of habit
            default:
                throw OptionError.unknownProperty(option: "-drive", property: item.key ?? item.value, supported: supported)
            }
        }
        guard let file else { throw OptionError.missingProperty(option: "-drive", property: "file") }
        guard !file.isEmpty else {
            throw OptionError.invalidValue(option: "-drive", value: "file=", expected: "give the image's path")
        }
        switch format {
        case "raw"?:
            break
        case nil:
            warnings.append("-drive file=\(file): no format given; using raw (add format=raw to silence this)")
        case let other?:
            throw OptionError.unsupportedFormat(other)
        }
        return Configuration.Drive(file: file, format: "raw")
    }

    static func device(_ text: String) throws -> Configuration.DebugExitDevice {
        let items = PropertyList(text).items
        guard let first = items.first, first.key == nil || first.key == "driver" else {
            throw OptionError.unsupportedDevice(text)
        }
        guard first.value == "isa-debug-exit" else { throw OptionError.unsupportedDevice(first.value) }
        var device = Configuration.DebugExitDevice()
        for item in items.dropFirst() {
            switch item.key {
            case "iobase"?: device.iobase = try portNumber(item.value, property: "iobase", range: 0...0xffff)
            case "iosize"?: device.iosize = try portNumber(item.value, property: "iosize", range: 1...0xffff)
            default:
                throw OptionError.unknownProperty(option: "-device isa-debug-exit", property: item.key ?? item.value,
                                                  supported: ["iobase", "iosize"])
            }
        }
        guard Int(device.iobase) + Int(device.iosize) <= 0x10000 else {
            throw OptionError.invalidValue(option: "-device isa-debug-exit", value: "iosize=\(device.iosize)",
                                           expected: "the ports must end at or below 0xffff")
        }
        return device
    }

    static func name(_ text: String) throws -> String {
        var name: String?
        for item in PropertyList(text).items {
            switch item.key {
            case nil, "guest"?: name = item.value
            case let key?: throw OptionError.unknownProperty(option: "-name", property: key, supported: ["guest"])
            }
        }
        guard let name, !name.isEmpty else {
            throw OptionError.invalidValue(option: "-name", value: text, expected: "give a non-empty name")
        }
        return name
    }

    /// Decimal or 0x-prefixed hexadecimal, as QEMU's integer properties accept.
    private static func portNumber(_ text: String, property: String, range: ClosedRange<Int>) throws -> UInt16 {
        let lowered = text.lowercased()
        let value = lowered.hasPrefix("0x") ? Int(lowered.dropFirst(2), radix: 16) : Int(lowered)
        guard let value, range.contains(value), !lowered.hasPrefix("0x-"), !lowered.hasPrefix("0x+") else {
            throw OptionError.invalidValue(option: "-device isa-debug-exit", value: "\(property)=\(text)",
                                           expected: "use a number from \(range.lowerBound) to 0x\(String(range.upperBound, radix: 16))")
        }
        return UInt16(value)
    }

    /// `-object TYPE,id=ID,...` (the type may also be written `qom-type=TYPE`). Credentials
    /// files are read when the object is added, in `main`, so that the error names the file.
    static func object(_ text: String) throws -> TLSObject {
        do {
            return try TLSObject.parse(text)
        } catch TLSObject.SpecError.missingType {
            throw OptionError.missingProperty(option: "-object", property: "qom-type")
        } catch {
            throw OptionError.invalidValue(option: "-object", value: text, expected: "\(error)")
        }
    }
}
