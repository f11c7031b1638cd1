// Declared here, where the hub and the broker are composed: PubSub/ and Broker/ stay unaware of each other.
extension RedisBroker: Relay {}
