/// Errors keep their cause as they cross layers: a `MigrationError` holds the `MachineError`
/// that holds the `KVMError` with its errno, and each description adds its own context to the
/// cause's. These let a caller several layers up ask for what is underneath.

/// An error that wraps the error that caused it.
public protocol WrappingError: Error {
    var underlying: (any Error)? { get }
}

/// An error that comes from a failed host call and knows its errno.
public protocol ErrnoCarrying: Error {
    /// nil for the cases that are not a failed call.
    var errnoCode: Int32? { get }
}

extension Error {
    /// This error, then its cause, then that one's cause, down to the first.
    public var causeChain: [any Error] {
        var chain: [any Error] = [self]
        while chain.count < 32, let next = (chain[chain.count - 1] as? WrappingError)?.underlying {
            chain.append(next)
        }
        return chain
    }

    /// The first error of type `E` in the cause chain (this error included).
    public func cause<E: Error>(_ type: E.Type) -> E? {
        causeChain.lazy.compactMap { $0 as? E }.first
    }

    /// The errno of the host call at the bottom of the chain, if a host call failed.
    public var underlyingErrno: Int32? {
        causeChain.lazy.compactMap { ($0 as? ErrnoCarrying)?.errnoCode }.first
    }
}

/// Any error, kept as the cause inside an `Equatable` error enum: two are equal when they are
/// of the same type and say the same thing. The error itself stays reachable as `error`.
public struct ErrorCause: Error, Equatable, CustomStringConvertible, WrappingError {
    public let error: any Error

    public init(_ error: any Error) {
        // Not a cause of a cause: unwrap so the chain has no empty links.
        self.error = (error as? ErrorCause)?.error ?? error
    }

    public var underlying: (any Error)? { error }
    public var description: String { String(describing: error) }

    public static func == (a: ErrorCause, b: ErrorCause) -> Bool {
        type(of: a.error) == type(of: b.error) && a.description == b.description
    }
}
