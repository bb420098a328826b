package main

import "fmt"

func runProbe(s stdio, args []string) int {
	fmt.Fprintln(s.err, "relayq: runProbe: not built yet")
	return exSoftware
}
