package smarthost

// Credential types as the authinfo contract defines them. Until the
// authinfo package lands these are local mirrors; then they become aliases
// of authinfo's types (type Query = authinfo.Query, …) so that an
// *authinfo.Store satisfies Credentials unchanged.

// Secret is a password or token; Reveal returns the value.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String masks the secret.
func (s Secret) String() string { return "<secret>" }

// Credential is one entry of the credentials map.
type Credential struct {
	User     string   // authorization identity
	AuthID   string   // authentication identity, = User when empty
	Password Secret   // password (PLAIN, LOGIN, CRAM-MD5, SCRAM)
	Realm    string   // realm (unused by the mechanisms relayq speaks)
	Mechs    []string // allowed mechanisms (authinfo M:), nil = any
	OAuth    *OAuth   // non-nil for XOAUTH2/OAUTHBEARER credentials
	Source   string   // "file:line" of the entry
	Key      string   // the key that matched
}

// OAuth holds an OAuth 2.0 client registration and tokens.
type OAuth struct {
	TokenURL, ClientID, Scope, Flow         string
	ClientSecret, RefreshToken, AccessToken Secret
}

// Query asks for the credential of one connection.
type Query struct {
	Sender  string // envelope sender ("" = null sender)
	Host    string // server name being connected to (no brackets, no port)
	Addr    string // server IP address
	Port    int
	NextHop string // relay as written in RELAYQ_RELAYHOST
}
