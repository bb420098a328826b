package main

import "fmt"

func runSendmail(s stdio, args []string) int {
	fmt.Fprintln(s.err, "relayq: runSendmail: not built yet")
	return exSoftware
}

func runMailq(s stdio, args []string) int {
	fmt.Fprintln(s.err, "relayq: runMailq: not built yet")
	return exSoftware
}

func runNewaliases(s stdio, args []string) int {
	fmt.Fprintln(s.err, "relayq: runNewaliases: not built yet")
	return exSoftware
}
