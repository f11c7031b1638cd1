/// Where `philote health` finds the server on this host, from the HOST the server was given. A wildcard
/// address is reached over loopback, and over whichever loopback works: Docker gives containers no IPv6 by
/// default, so with HOST=:: the server (listening on both families) answers on 127.0.0.1 while [::1] does not
/// exist. A specific address is asked as it is.
enum HealthTargets {
    static func hosts(forListenHost host: String?) -> [String] {
        let bare = host.map { $0.hasPrefix("[") && $0.hasSuffix("]") ? String($0.dropFirst().dropLast()) : $0 }
        switch bare {
        case nil, "", "::", "::0", "0:0:0:0:0:0:0:0": return ["127.0.0.1", "::1"]
        case "0.0.0.0": return ["127.0.0.1"]
        case let address?: return [address]
        }
    }
}
