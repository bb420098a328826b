// Package authinfo reads the credentials relayq uses to authenticate to the
// smarthost, from a file in either of the two formats operators already
// have: sendmail's authinfo map source or Postfix's sasl_passwd. It picks
// the entry for a connection exactly as those programs do, and keeps the
// secrets out of every printed form. It also reads the sender relay map
// (Postfix's sender_dependent_relayhost_maps), which sends a sender's mail
// to a relay host of its own.
//
// # File format
//
// The file is a text map: one entry per logical line, a key, white space,
// and a value. As with Postfix's postmap(1) and sendmail's makemap(8):
//
//   - blank lines, and lines whose first non-blank character is '#', are
//     ignored ('#' elsewhere is part of the text);
//   - a line that starts with white space continues the previous logical
//     line (Postfix); a continuation with nothing above it is an error;
//   - keys are case-insensitive; the value keeps its case and inner white
//     space, leading and trailing white space is dropped;
//   - a key given twice is an error (Postfix and makemap warn and keep one).
//
// A file holds one syntax: the first entry decides, and an entry in the
// other syntax is an error naming both lines.
//
// # sendmail authinfo syntax
//
// Keys start with "AuthInfo:" and the value is a list of quoted fields
// (sendmail cf/README, FEATURE(`authinfo')):
//
//	AuthInfo:relay.example.com "U:user" "I:authid" "P:secret" "R:realm" "M:PLAIN LOGIN"
//	AuthInfo:192.0.2.1 "U:user" "P=c2VjcmV0"
//	AuthInfo:IPv6:2001:db8::1 "U:user" "P:secret"
//	AuthInfo: "U:fallback" "P:secret"
//
// Fields (sendmail cf/README; usersmtp.c getauth): U the authorization
// identity (user id), I the authentication identity; when only one of them
// is given it stands for both. P the password, required. R the realm. M
// the mechanisms allowed for this server, separated by spaces. "X=value"
// instead of "X:value" means the value is base64-encoded (usually "P=").
// Field letters may be lower case. Inside the quotes a backslash escapes
// the next character. An unknown field letter or an empty value is an
// error. The key's target is a host name or an IP
// address (IPv6 with or without sendmail's "IPv6:" prefix) and never has a
// port or brackets.
//
// Lookup follows sendmail's authinfo ruleset (cf/m4/proto.m4), at most three
// lookups, first hit wins:
//
//  1. AuthInfo:host — the name of the server connected to (Query.Host);
//  2. AuthInfo:address — its IP address (Query.Addr);
//  3. AuthInfo: — the default entry.
//
// The port, the next hop and the sender play no part.
//
// # Postfix sasl_passwd syntax
//
// The smtp_sasl_password_maps source (SASL_README), key then user:password:
//
//	[smtp.example.com]:587   user:password
//	smtp.example.com         user:password
//	user@example.com         user@example.com:password
//	@example.com             shared@example.com:password
//
// The value splits at the first ':', so passwords may contain ':'; an
// empty user or password is an error (Postfix would send an empty one).
// Host keys are host, host:port, [host] or [host]:port as in the relay
// host setting; sender keys are user@domain, user+ext@domain or @domain.
//
// Lookup follows Postfix's smtp_sasl_passwd_lookup (smtp_sasl_glue.c),
// first hit wins:
//
//  1. when the file has any sender key (relayq turns
//     smtp_sender_dependent_authentication on by having such keys) and the
//     envelope sender is not null: the sender as user+ext@domain, then
//     without the extension as user@domain (recipient delimiter '+', split
//     at the first '+', not for postmaster, mailer-daemon or a local part
//     that starts with '+'), then @domain — mail_addr_find(3) for a
//     non-local domain. A sender without '@' is not looked up;
//  2. the name of the server connected to, without brackets or port
//     (Query.Host), so a plain "smtp.example.com" entry matches any port;
//  3. the next hop exactly as written in RELAYQ_RELAYHOST, brackets and
//     port included (Query.NextHop), e.g. "[smtp.example.com]:587".
//
// No entry means no AUTH is attempted.
//
// # OAuth 2.0 credentials (relayq extension)
//
// XOAUTH2 and OAUTHBEARER take an OAuth client registration instead of a
// password. The options are a comma-separated name=value list; values are
// %-decoded, so write ',' as %2C and '%' as %25:
//
//	user=ADDR          the mailbox to authenticate as (sasl_passwd only)
//	token_url=URL      the token endpoint (https; http only to loopback)
//	client_id=ID       the OAuth client id
//	client_secret=S    the client secret (secret)
//	refresh_token=T    a refresh token (secret)
//	access_token=T     a fixed access token (secret)
//	scope=SCOPES       space-separated scopes to ask for
//	flow=FLOW          refresh_token, client_credentials or static
//	mech=MECHS         XOAUTH2 and/or OAUTHBEARER (sasl_passwd only)
//
// In sasl_passwd syntax the value starts with "oauth2:":
//
//	[smtp.gmail.com]:587 oauth2:user=me@gmail.com,client_id=123.apps.googleusercontent.com,client_secret=XYZ,refresh_token=1//0g,token_url=https://oauth2.googleapis.com/token
//
// (so a password that itself starts with "oauth2:" must be written in
// sendmail syntax). In sendmail syntax the options go in an "O:" field
// (or "O=" base64), the user in U:/I: and the mechanisms in M:, and P is
// left out:
//
//	AuthInfo:smtp.office365.com "U:me@example.com" "O:flow=refresh_token,client_id=abc,refresh_token=0.AX,token_url=https://login.microsoftonline.com/common/oauth2/v2.0/token" "M:XOAUTH2"
//
// Without flow= the flow is refresh_token when a refresh token is given,
// client_credentials when a client secret and token URL are, static when
// only an access token is. refresh_token needs token_url, client_id and
// refresh_token; client_credentials needs token_url, client_id and
// client_secret; static needs access_token.
//
// # Sender relay maps (Postfix sender_dependent_relayhost_maps)
//
// RELAYQ_SENDER_RELAYHOST_MAP names a text map in the same line format
// (comments, blank lines, continuation lines, case-insensitive keys, a key
// given twice is an error). The key is a sender, user@domain,
// user+ext@domain or @domain; the value one or more relay hosts in
// RELAYQ_RELAYHOST syntax, separated by commas or white space, tried in
// order:
//
//	alice@example.com     [smtp.example.com]:587
//	@example.org          [mail.example.org]:465, [backup.example.org]:465
//	bob@example.org       DUNNO
//
// Lookup is Postfix's for this map (mail_addr_find), first hit wins: the
// sender as user+ext@domain, then without the extension as user@domain
// (recipient delimiter '+', as for sasl_passwd sender keys), then
// @domain. The null sender and a sender without '@' are never looked up.
// DUNNO (Postfix 2.6 and later) ends the lookup: that sender's mail goes
// to RELAYQ_RELAYHOST, as it does when no entry matches. The credential is
// then looked up for the relay the mail goes to.
//
// The map holds no secrets and may be world-readable, but it decides where
// mail goes: ParseRelayMapFile refuses a file that is not a regular file,
// not owned by the reading user or root, or writable by its group or
// others. Parse errors name the file and the line and say what was
// expected; they quote the bad relay host.
//
// # Secrets
//
// ParseFile refuses a file that is not a regular file, not owned by the
// reading user or root (root also reads one owned by ServiceUser, as the
// package installs it), or accessible by group or others — except readable
// (only) by its group when that group is the process's own (root:relayq
// 0640 for a daemon running as relayq), as ssh does for keys and Postfix's
// SASL_README asks. Parse errors name the file, the line and what was
// expected, and never contain any text of the line. Secret masks itself in
// String, GoString, every fmt verb, JSON, text marshalling and slog.
//
// Secrets from *_FILE variables are the config package's business.
//
// # Where relayq is stricter than the originals
//
// A line with a key but no value, an empty user or password, a key given
// twice and a file mixing both syntaxes are errors here; Postfix warns and
// skips the line, or sends an empty password. Postfix's recipient
// delimiter is configurable; relayq's is '+'. Postfix also tries the bare
// local part for senders in its own local domains; relayq has no local
// domains, so it never does. Continuation lines apply to both syntaxes.
package authinfo
