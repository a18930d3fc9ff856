/// QEMU's comma-separated option values: `first,key=value,flag`. A literal comma inside a
/// value is written twice (`file=a,,b` names the file `a,b`), as in QEMU.
public struct PropertyList {
    public struct Item: Equatable {
        /// nil for an element without `=` (an implied value like `isa-debug-exit`, or a flag like `server`).
        public var key: String?
        public var value: String

        public init(key: String?, value: String) {
            self.key = key
            self.value = value
        }
    }

    public var items: [Item]

    public init(_ text: String) {
        items = Self.split(text).map { element in
            guard let equals = element.firstIndex(of: "=") else { return Item(key: nil, value: element) }
            return Item(key: String(element[..<equals]), value: String(element[element.index(after: equals)...]))
        }
    }

    /// Splits at single commas; a doubled comma stands for one literal comma.
    private static func split(_ text: String) -> [String] {
        var elements: [String] = []
        var current = ""
        var characters = text.makeIterator()
        var pending = characters.next()
        while let character = pending {
            pending = characters.next()
            if character == "," {
                if pending == "," {
                    current.append(",")
                    pending = characters.next()
                } else {
                    elements.append(current)
                    current = ""
                }
            } else {
                current.append(character)
            }
        }
        elements.append(current)
        return elements
    }
}
