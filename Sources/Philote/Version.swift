/// The release this build reports in logs and `/api/info`.
public enum PhiloteVersion {
    public static let string = "0.1.0"
}
