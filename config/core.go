package config

// Core holds the keys every part of relayq uses.
type Core struct {
	// Config is the env file read before the environment.
	Config string `envconfig:"CONFIG" default:"/etc/relayq/relayq.env" desc:"env file read before the environment (the environment wins)"`
	// RelayHost is the smarthost list in Postfix relayhost syntax.
	RelayHost string `envconfig:"RELAYHOST" desc:"smarthost(s), Postfix syntax ([host]:port, host:port, host), comma-separated for failover"`
	// AuthInfo is the credentials file.
	AuthInfo string `envconfig:"AUTHINFO" default:"/etc/relayq/authinfo" desc:"credentials file (sendmail authinfo or Postfix sasl_passwd lines)"`
	// SenderRelayHostMap is the sender relay map (Postfix
	// sender_dependent_relayhost_maps); "" is off.
	SenderRelayHostMap string `envconfig:"SENDER_RELAYHOST_MAP" desc:"per-sender relay hosts (Postfix sender_dependent_relayhost_maps lines: user@domain or @domain, then relay host(s)); empty: off"`
	// TLS is the TLS policy towards the smarthost.
	TLS string `envconfig:"TLS" default:"verify" desc:"TLS policy: verify, encrypt, may, none"`
	// Spool is the bbolt spool file.
	Spool string `envconfig:"SPOOL" default:"/var/spool/relayq/queue.db" desc:"bbolt spool file"`
	// Socket is the daemon's unix submission socket.
	Socket string `envconfig:"SOCKET" default:"/run/relayq/submit.sock" desc:"unix submission socket of the daemon"`
	// Listen is the local SMTP listener address list.
	Listen string `envconfig:"LISTEN" desc:"local SMTP listener address(es), comma-separated; empty: off"`
	// Aliases is the aliases file.
	Aliases string `envconfig:"ALIASES" default:"/etc/aliases" desc:"aliases file (/etc/aliases syntax); ignored when missing"`
	// Domain qualifies bare local names and default senders.
	Domain string `envconfig:"DOMAIN" desc:"domain for bare local names and default senders (default: the host's FQDN)"`
	// LogFormat selects the log output.
	LogFormat string `envconfig:"LOG_FORMAT" default:"text" desc:"log format: text or json"`
	// LogLevel selects the minimum log level.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info" desc:"log level: debug, info, warn, error"`
	// LogFile is where the daemon and delivery runs append their logs.
	LogFile string `envconfig:"LOG_FILE" desc:"file that relayq serve and the delivery runs (also the one sendmail starts without a daemon) append their logs to, reopened on SIGHUP; empty: standard error (serve); for the detached run syslog, or relayq.log in the spool directory when there is no syslog"`
}
