// Package config is relayq's configuration: one envconfig-tagged struct read
// from RELAYQ_* environment variables, after the same keys have been read
// from an env file (RELAYQ_CONFIG, default /etc/relayq/relayq.env, systemd
// EnvironmentFile syntax, see ParseEnvFile). The environment wins over the
// file. A key tagged secret:"true" may instead be given as KEY_FILE naming a
// file that holds the value (Docker and Kubernetes secrets).
//
// Each area of relayq keeps its keys in its own embedded struct in this
// package (core.go, delivery.go, …); all of them share the RELAYQ_ prefix.
// Tags on each field:
//
//	envconfig:"KEY"   the key without the RELAYQ_ prefix
//	default:"..."     the value when the key is not set
//	desc:"..."        one line for `relayq config` (docs come from code)
//	secret:"true"     value masked in `relayq config`; KEY_FILE accepted
//	required:"true"   Load fails when the key is not set
//
// An area struct may have a method `Validate() error` (on its pointer or
// value); Load calls it after the values are set and reports its error. The
// error should name the key (e.g. "RELAYQ_MAX_SIZE: must be > 0").
package config

// Config is the whole configuration. Sub-structs are embedded so that their
// keys carry no extra prefix. To add an area, add its struct on its own line
// below (the only shared lines of this file).
type Config struct {
	Core
	Control
	Intake
	Listener
	Delivery
	Queue

	loaded *loadInfo // set by Load; unexported, so not a key
}
