package bootstrap

// SetReplicaGate makes the replicas' listener call gate before each
// attempt to connect (0 the first, then each reconnection): a test holds
// a reconnection back while it writes what the listener must not miss.
func SetReplicaGate(c *ServerConfig, gate func(attempt int)) { c.replicaGate = gate }
