package main

import "fmt"

func runQueue(s stdio, args []string) int {
	fmt.Fprintln(s.err, "relayq: runQueue: not built yet")
	return exSoftware
}

func runConfig(s stdio, args []string) int {
	fmt.Fprintln(s.err, "relayq: runConfig: not built yet")
	return exSoftware
}
