// Package config is relayq's configuration: one envconfig struct read from
// RELAYQ_* environment variables, after the same keys have been read from an
// env file (RELAYQ_CONFIG, default /etc/relayq/relayq.env, systemd
// EnvironmentFile syntax). The environment wins over the file. A key tagged
// secret:"true" may instead be given as KEY_FILE naming a file that holds the
// value (Docker and Kubernetes secrets).
//
// Each area of relayq keeps its keys in its own embedded struct in this
// package (core.go, delivery.go, …); all of them share the RELAYQ_ prefix.
package config

// Config is the whole configuration. Sub-structs are embedded so that their
// keys carry no extra prefix.
type Config struct {
	Core
}
