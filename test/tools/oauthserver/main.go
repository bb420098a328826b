// Command oauthserver is the local OAuth 2.0 authorization server of the
// end-to-end tests (internal/testlib.OAuthServer): the device grant (the
// first poll is pending, then approved), the code grant with PKCE, refresh
// with rotation, RFC 7662 introspection for Dovecot's oauth2 passdb, and
// POST /admin/revoke. It listens on loopback, prints "URL=http://…" on a
// line of its own once it serves, and runs until it is killed.
//
// Usage: oauthserver [-listen 127.0.0.1:0] [-user NAME]
package main

import (
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/relayq/relayq/internal/testlib"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	user := flag.String("user", "relayq", "the user a valid access token belongs to (introspection)")
	flag.Parse()
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "oauthserver: -listen must be a loopback address")
		os.Exit(64)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "oauthserver: %v\n", err)
		os.Exit(71)
	}
	s := testlib.NewOAuthServerOn(l)
	s.Username = *user
	fmt.Printf("URL=%s\nCLIENT_ID=%s\nCLIENT_SECRET=%s\n", s.URL, s.ClientID, s.ClientSecret)
	select {}
}
