package smarthost

import "github.com/relayq/relayq/authinfo"

// The credential types are authinfo's (the contract), so that an
// *authinfo.Map or *authinfo.Store is a Credentials as it is.
type (
	// Secret is a password or token; Reveal returns the value.
	Secret = authinfo.Secret
	// Credential is one entry of the credentials map.
	Credential = authinfo.Credential
	// OAuth holds an OAuth 2.0 client registration and tokens.
	OAuth = authinfo.OAuth
	// Query asks for the credential of one connection.
	Query = authinfo.Query
)

// The credentials maps of the authinfo package are Credentials; its
// sender relay maps are SenderRelays, and authinfo.Routes, which pairs the
// two, is both.
var (
	_ Credentials  = (*authinfo.Map)(nil)
	_ Credentials  = (*authinfo.Store)(nil)
	_ Credentials  = authinfo.Routes{}
	_ SenderRelays = authinfo.Routes{}
	_ SenderRelays = (*authinfo.RelayMap)(nil)
	_ SenderRelays = (*authinfo.RelayStore)(nil)
)
