package main

import "fmt"

func runCheck(s stdio, args []string) int {
	fmt.Fprintln(s.err, "relayq: runCheck: not built yet")
	return exSoftware
}

func runAuthinfo(s stdio, args []string) int {
	fmt.Fprintln(s.err, "relayq: runAuthinfo: not built yet")
	return exSoftware
}
