package authinfo

// Routes answers both questions delivery asks of its credentials source:
// which credential a connection uses (Lookup) and whether a sender's mail
// goes to a relay host of its own (RelayHost, the smarthost package's
// optional SenderRelays) — Postfix's smtp_sasl_password_maps together with
// sender_dependent_relayhost_maps. Either part may be nil. The relay host
// a sender's mail goes to is the one its credential is then looked up for.
type Routes struct {
	// Credentials is a *Map or *Store; nil means no AUTH.
	Credentials interface {
		Lookup(q Query) (Credential, bool)
	}
	// Relays is a *RelayMap or *RelayStore; nil means the default relay
	// host for every sender.
	Relays interface {
		RelayHost(sender string) (relays string, ok bool)
	}
}

// Lookup is Credentials.Lookup; no credential when Credentials is nil.
func (r Routes) Lookup(q Query) (Credential, bool) {
	if r.Credentials == nil {
		return Credential{}, false
	}
	return r.Credentials.Lookup(q)
}

// RelayHost is Relays.RelayHost; no relay of its own when Relays is nil.
func (r Routes) RelayHost(sender string) (relays string, ok bool) {
	if r.Relays == nil {
		return "", false
	}
	return r.Relays.RelayHost(sender)
}
