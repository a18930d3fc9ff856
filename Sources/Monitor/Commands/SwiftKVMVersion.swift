/// The version `info version` reports.
public enum SwiftKVMVersion {
    public static let string = "0.1.0"
}
