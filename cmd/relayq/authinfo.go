package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/relayq/relayq/authinfo"
	"github.com/relayq/relayq/internal/sysexits"
	"github.com/relayq/relayq/smarthost"
)

// runAuthinfo is `relayq authinfo lookup [-f FILE] [-relay-map FILE]
// [-server NAME] [-addr IP] RELAY [SENDER]`: show which entry of the
// credentials file matches a connection and why (authinfo Explain),
// secrets masked, and, with a sender relay map, whether SENDER's mail goes
// to another relay host. RELAY is written as in RELAYQ_RELAYHOST
// ([host]:port, host:port or host). Exit 0 when an entry matches, 1 when
// none does (as postmap -q), 64 usage, 66/77/78 when a file is missing,
// cannot be read, or is unsafe or bad.
func runAuthinfo(s stdio, args []string) int {
	if len(args) == 0 || args[0] != "lookup" {
		fmt.Fprintf(s.err, "%s\n", authinfoUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "help" || args[0] == "--help") {
			return exOK
		}
		return exUsage
	}
	fl := flag.NewFlagSet("authinfo lookup", flag.ContinueOnError)
	fl.SetOutput(s.err)
	file := fl.String("f", "", "credentials file (default RELAYQ_AUTHINFO)")
	relayMap := fl.String("relay-map", "", "sender relay map (default RELAYQ_SENDER_RELAYHOST_MAP; -relay-map= for none)")
	server := fl.String("server", "", "name of the server connected to, when it differs from RELAY's host (an MX host)")
	addr := fl.String("addr", "", "IP address of the server (sendmail AuthInfo:address entries; default: resolved when the file has such entries)")
	fl.Usage = func() {
		fmt.Fprintf(s.err, "%s\n\n"+
			"Shows which credentials entry delivery through RELAY (written as in RELAYQ_RELAYHOST,\n"+
			"e.g. [smtp.example.com]:587) uses for SENDER (default: the null sender), and why, and\n"+
			"whether the sender relay map sends SENDER's mail to another relay host instead.\n"+
			"Secrets are masked. Exit 0 when an entry matches, 1 when none does.\n", authinfoUsage)
		fl.PrintDefaults()
	}
	if err := fl.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exOK
		}
		return exUsage
	}
	if fl.NArg() < 1 || fl.NArg() > 2 {
		fl.Usage()
		return exUsage
	}
	rs, err := smarthost.ParseRelays(fl.Arg(0))
	if err != nil || len(rs) != 1 {
		fmt.Fprintf(s.err, "relayq authinfo lookup: RELAY: want one relay as in RELAYQ_RELAYHOST ([host]:port, host:port or host): %v\n", err)
		return exUsage
	}
	r := rs[0]
	mapSet := false
	fl.Visit(func(f *flag.Flag) { mapSet = mapSet || f.Name == "relay-map" })
	m, rm, code := lookupFiles(s, *file, *relayMap, mapSet)
	if m == nil {
		return code
	}
	q := authinfo.Query{Host: r.Host, Port: r.Port, NextHop: r.Spec, Addr: *addr}
	if fl.NArg() == 2 {
		q.Sender = strings.TrimSuffix(strings.TrimPrefix(fl.Arg(1), "<"), ">")
	}
	if *server != "" {
		q.Host = *server
	}
	if q.Addr == "" {
		if a, err := netip.ParseAddr(q.Host); err == nil {
			q.Addr = a.String()
		} else if m.HasAddressKeys() {
			q.Addr = resolveFirst(q.Host)
		}
	}
	explainLookup(s.out, m, rm, q, r, *server != "")
	if _, ok := m.Lookup(q); !ok {
		return 1
	}
	return exOK
}

// lookupFiles reads the credentials file and the sender relay map for
// `authinfo lookup`: those a flag names, else the configuration's (mapSet:
// -relay-map was given, even empty). A nil map comes with the exit code.
func lookupFiles(s stdio, path, mapPath string, mapSet bool) (*authinfo.Map, *authinfo.RelayMap, int) {
	if path == "" || !mapSet {
		cfg, code := loadConfig(s)
		if cfg == nil {
			return nil, nil, code
		}
		if path == "" {
			path = cfg.AuthInfo
		}
		if !mapSet {
			mapPath = cfg.SenderRelayHostMap
		}
	}
	m, err := authinfo.ParseFile(path)
	if err != nil {
		fmt.Fprintf(s.err, "relayq authinfo lookup: %v\n", err)
		return nil, nil, fileExit(err)
	}
	var rm *authinfo.RelayMap
	if mapPath != "" {
		if rm, err = authinfo.ParseRelayMapFile(mapPath); err != nil {
			fmt.Fprintf(s.err, "relayq authinfo lookup: %v\n", err)
			return nil, nil, fileExit(err)
		}
	}
	return m, rm, exOK
}

// explainLookup prints the query, why each entry matches or not, and what
// the sender relay map (rm, may be nil) does with the sender.
func explainLookup(w io.Writer, m *authinfo.Map, rm *authinfo.RelayMap, q authinfo.Query, r smarthost.Relay, serverGiven bool) {
	sender := q.Sender
	if sender == "" {
		sender = "<> (null sender)"
	}
	fmt.Fprintf(w, "query: server name %s, address %s, port %d, next hop %s, sender %s\n",
		orNone(q.Host), orNone(q.Addr), q.Port, q.NextHop, sender)
	if r.MX && !serverGiven {
		fmt.Fprintf(w, "note: %s is looked up in DNS (MX) at delivery; pass -server MXHOST to see the MX host's entry\n", r.Host)
	}
	for _, l := range m.Explain(q) {
		fmt.Fprintln(w, l)
	}
	if rm == nil {
		return
	}
	fmt.Fprintf(w, "sender relay map:\n")
	for _, l := range rm.Explain(q.Sender) {
		fmt.Fprintf(w, "  %s\n", l)
	}
	if own, ok := rm.RelayHost(q.Sender); ok && !relayListed(own, r) {
		first := strings.SplitN(own, ",", 2)[0]
		fmt.Fprintf(w, "note: mail from %s goes to a different relay host, %s, not to %s; for its credential there run: relayq authinfo lookup %s %s\n",
			sender, own, r.Spec, first, q.Sender)
	}
}

const authinfoUsage = "usage: relayq authinfo lookup [-f FILE] [-relay-map FILE] [-server NAME] [-addr IP] RELAY [SENDER]"

// fileExit is the exit code for a map file that cannot be used: 66
// missing, 77 not readable, 78 unsafe or bad.
func fileExit(err error) int { return sysexits.FileCode(err, exConfig) }

// relayListed reports whether r is one of the relays in list (RELAYQ_RELAYHOST
// syntax): the same host, port and MX lookup.
func relayListed(list string, r smarthost.Relay) bool {
	rs, _ := smarthost.ParseRelays(list)
	for _, x := range rs {
		if x.Host == r.Host && x.Port == r.Port && x.MX == r.MX {
			return true
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
